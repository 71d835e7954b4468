/**
 * What a graph declares about its tensors' element types and shapes, gathered from
 * initializers, Constant nodes, graph inputs, value_info and graph outputs.
 */
import type { TensorType } from '../tensor/index.ts';
import { constantNodeTensor, isConstantNode } from './constants.ts';
import type { GraphProto, TensorShapeProto, TypeProto, ValueInfoProto } from './gen/onnx_pb.ts';
import { tensorTypeOf } from './tensor.ts';

/** One dimension: a size, a symbolic name (`'batch'`), or `null` when unknown. */
export type Dim = number | string | null;

/** Known element type and shape of one tensor. */
export interface TensorInfo {
  /** Tensor name. */
  name: string;
  /** ONNX `TensorProto.DataType` number (1 = FLOAT, 7 = INT64, ...). */
  elemType: number;
  /** Pipeline element type, or `undefined` when `TensorData` has none for `elemType`. */
  type: TensorType | undefined;
  /** Dimensions, or `undefined` when even the rank is unknown. */
  dims: Dim[] | undefined;
}

/** Dimensions of a TensorShapeProto (`undefined` shape = unknown rank). */
export function shapeDims(shape: TensorShapeProto | undefined): Dim[] | undefined {
  if (shape === undefined) return undefined;
  return shape.dim.map((d) => {
    if (d.value.case === 'dimValue') return Number(d.value.value);
    if (d.value.case === 'dimParam') return d.value.value;
    return null;
  });
}

/** Element type and shape of a tensor TypeProto, or `undefined` for non-tensor types. */
export function tensorTypeInfo(
  type: TypeProto | undefined,
): { elemType: number; dims: Dim[] | undefined } | undefined {
  if (type?.value.case !== 'tensorType') return undefined;
  const t = type.value.value;
  return { elemType: t.elemType, dims: shapeDims(t.shape) };
}

function fromValueInfo(v: ValueInfoProto): TensorInfo | undefined {
  const info = tensorTypeInfo(v.type);
  if (info === undefined || v.name === '') return undefined;
  return {
    name: v.name,
    elemType: info.elemType,
    type: tensorTypeOf(info.elemType),
    dims: info.dims,
  };
}

/**
 * Known element types and shapes of the tensors of `graph`, by name. Precedence when a
 * name appears several times: initializer / Constant node (exact) > graph input >
 * value_info > graph output. Tensors that nothing describes are absent.
 */
export function tensorInfos(graph: GraphProto): Map<string, TensorInfo> {
  const out = new Map<string, TensorInfo>();
  const add = (info: TensorInfo | undefined) => {
    if (info !== undefined && !out.has(info.name)) out.set(info.name, info);
  };
  for (const t of graph.initializer) {
    add({
      name: t.name,
      elemType: t.dataType,
      type: tensorTypeOf(t.dataType),
      dims: t.dims.map(Number),
    });
  }
  for (const n of graph.node) {
    if (!isConstantNode(n)) continue;
    const t = constantNodeTensor(n);
    if (t !== undefined && t.name !== '') {
      add({
        name: t.name,
        elemType: t.dataType,
        type: tensorTypeOf(t.dataType),
        dims: t.dims.map(Number),
      });
    }
  }
  for (const v of graph.input) add(fromValueInfo(v));
  for (const v of graph.valueInfo) add(fromValueInfo(v));
  for (const v of graph.output) add(fromValueInfo(v));
  return out;
}
