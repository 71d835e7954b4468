/**
 * The lowering context: where lowered nodes and constants go, and how fresh tensor names are
 * made. Plus small helpers that append one node or one constant.
 */

import { create } from '@bufbuild/protobuf';
import { makeAttrInt, makeNode } from '../../onnx/builder.ts';
import {
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  TensorProto_DataType,
  TensorProtoSchema,
} from '../../onnx/gen/onnx_pb.ts';
import { tensorToProto } from '../../onnx/tensor.ts';
import { type TensorArrays, type TensorType, tensor } from '../../tensor/index.ts';

/**
 * Where a lowering writes: `nodes` (appended in topological order) and `initializers`
 * (constants), and `name(prefix)`, which must return a tensor name unused anywhere in the
 * graph being built (the caller owns the naming scheme, e.g. `${prefix}__q${n}`).
 */
export interface LoweringContext {
  nodes: NodeProto[];
  initializers: TensorProto[];
  name(prefix: string): string;
}

/**
 * A fresh context whose names are `prefix`, or `prefix_2`, `prefix_3`... when taken, never one
 * of `reserved` (e.g. the names already in the graph).
 */
export function createLoweringContext(reserved: Iterable<string> = []): LoweringContext {
  const taken = new Set(reserved);
  return {
    nodes: [],
    initializers: [],
    name(prefix: string): string {
      let n = prefix;
      for (let k = 2; taken.has(n); k++) n = `${prefix}_${k}`;
      taken.add(n);
      return n;
    },
  };
}

/** ONNX element type numbers used by the lowering (`Cast` `to`). */
export const DT = {
  FLOAT: TensorProto_DataType.FLOAT,
  FLOAT16: TensorProto_DataType.FLOAT16,
  DOUBLE: TensorProto_DataType.DOUBLE,
  INT32: TensorProto_DataType.INT32,
  INT8: TensorProto_DataType.INT8,
  UINT8: TensorProto_DataType.UINT8,
} as const;

/**
 * Appends one node with a single output and returns the output name: `out` when given (e.g.
 * the layer's output tensor), else a fresh name derived from `prefix`.
 */
export function emit(
  ctx: LoweringContext,
  opType: string,
  inputs: readonly string[],
  prefix: string,
  attrs: readonly AttributeProto[] = [],
  out?: string,
): string {
  const output = out ?? ctx.name(prefix);
  ctx.nodes.push(
    makeNode(opType, inputs, [output], attrs, { name: ctx.name(`${prefix}/${opType}`) }),
  );
  return output;
}

/** Appends `Cast(input, to)` and returns its output name. */
export function emitCast(
  ctx: LoweringContext,
  input: string,
  to: number,
  prefix: string,
  out?: string,
): string {
  return emit(ctx, 'Cast', [input], prefix, [makeAttrInt('to', to)], out);
}

/** Adds a constant initializer (float32, float16 bits, int32, int8, uint8) and returns its name. */
export function constant<T extends TensorType>(
  ctx: LoweringContext,
  prefix: string,
  type: T,
  dims: readonly number[],
  data: TensorArrays[T],
): string {
  const name = ctx.name(prefix);
  ctx.initializers.push(tensorToProto(name, tensor(type, dims, data)));
  return name;
}

/**
 * Adds a float64 (DOUBLE) constant initializer (the project's `TensorData` has no float64, so
 * it is written here with little-endian raw data) and returns its name.
 */
export function constantDouble(
  ctx: LoweringContext,
  prefix: string,
  dims: readonly number[],
  values: ArrayLike<number>,
): string {
  const name = ctx.name(prefix);
  const view = new DataView(new ArrayBuffer(values.length * 8));
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i]!, true);
  ctx.initializers.push(
    create(TensorProtoSchema, {
      name,
      dims: dims.map((d) => BigInt(d)),
      dataType: TensorProto_DataType.DOUBLE,
      rawData: new Uint8Array(view.buffer),
    }),
  );
  return name;
}
