/**
 * Constant tensors of a graph, wherever they are stored: initializers and Constant nodes
 * (`value`, `value_float(s)`, `value_int(s)`, `value_string(s)`) are looked up alike.
 */
import { create } from '@bufbuild/protobuf';
import type { TensorData } from '../tensor/index.ts';
import {
  AttributeProto_AttributeType as A,
  TensorProto_DataType as DT,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  TensorProtoSchema,
} from './gen/onnx_pb.ts';
import { isDefaultDomain } from './opset.ts';
import { tensorFromProto } from './tensor.ts';

/** Options of {@link constantTensors} / {@link constantLookup}. */
export interface ConstantOptions {
  /**
   * Include initializers that are also graph inputs (default true). ONNX lets a feed
   * override such an initializer; IR 3 exporters (old PyTorch) list every weight as an
   * input, so excluding them would hide all weights of such models.
   */
  includeOverridable?: boolean;
}

/** True for a Constant node of the default domain. */
export function isConstantNode(node: NodeProto): boolean {
  return node.opType === 'Constant' && isDefaultDomain(node.domain);
}

/**
 * The tensor a Constant node produces, named after its output, or `undefined` for forms
 * that are not dense tensors (`sparse_value`) or a malformed node without a value.
 */
export function constantNodeTensor(node: NodeProto): TensorProto | undefined {
  const name = node.output[0] ?? '';
  for (const a of node.attribute) {
    switch (a.name) {
      case 'value':
        if (a.t === undefined) return undefined;
        if (a.t.name === name) return a.t;
        return Object.assign(Object.create(Object.getPrototypeOf(a.t)), a.t, { name });
      case 'value_float':
        return create(TensorProtoSchema, { name, dataType: DT.FLOAT, floatData: [a.f] });
      case 'value_floats':
        return create(TensorProtoSchema, {
          name,
          dataType: DT.FLOAT,
          dims: [BigInt(a.floats.length)],
          floatData: [...a.floats],
        });
      case 'value_int':
        return create(TensorProtoSchema, { name, dataType: DT.INT64, int64Data: [a.i] });
      case 'value_ints':
        return create(TensorProtoSchema, {
          name,
          dataType: DT.INT64,
          dims: [BigInt(a.ints.length)],
          int64Data: [...a.ints],
        });
      case 'value_string':
        return create(TensorProtoSchema, { name, dataType: DT.STRING, stringData: [a.s] });
      case 'value_strings':
        return create(TensorProtoSchema, {
          name,
          dataType: DT.STRING,
          dims: [BigInt(a.strings.length)],
          stringData: [...a.strings],
        });
      default:
        if (a.type === A.SPARSE_TENSOR) return undefined;
    }
  }
  return undefined;
}

/**
 * Every constant tensor of `graph` (not of its subgraphs) by name: initializers first, then
 * Constant node outputs. Returned TensorProtos are shared with the graph: do not mutate.
 */
export function constantTensors(
  graph: GraphProto,
  options: ConstantOptions = {},
): Map<string, TensorProto> {
  const out = new Map<string, TensorProto>();
  const inputs = new Set(graph.input.map((v) => v.name));
  for (const t of graph.initializer) {
    if (options.includeOverridable === false && inputs.has(t.name)) continue;
    out.set(t.name, t);
  }
  for (const n of graph.node) {
    if (!isConstantNode(n)) continue;
    const t = constantNodeTensor(n);
    if (t !== undefined && t.name !== '') out.set(t.name, t);
  }
  return out;
}

/** Cached constant lookup over one graph (see {@link constantLookup}). */
export interface ConstantLookup {
  /** True when `name` is a constant (initializer or Constant node output). */
  has(name: string): boolean;
  /** The constant's TensorProto, or `undefined`. */
  proto(name: string): TensorProto | undefined;
  /**
   * The constant as `TensorData` (converted once and cached), or `undefined` when `name`
   * is not a constant. Throws what {@link tensorFromProto} throws for unsupported tensors.
   */
  value(name: string): TensorData | undefined;
  /** Names of all constants. */
  names(): string[];
}

/**
 * Lookup of the constants of a graph, treating initializers and Constant nodes alike.
 * @example const w = constantLookup(model.graph!).value(conv.input[1]!);
 */
export function constantLookup(graph: GraphProto, options: ConstantOptions = {}): ConstantLookup {
  const protos = constantTensors(graph, options);
  const cache = new Map<string, TensorData>();
  return {
    has: (name) => protos.has(name),
    proto: (name) => protos.get(name),
    value: (name) => {
      const hit = cache.get(name);
      if (hit !== undefined) return hit;
      const p = protos.get(name);
      if (p === undefined) return undefined;
      const v = tensorFromProto(p);
      cache.set(name, v);
      return v;
    },
    names: () => [...protos.keys()],
  };
}
