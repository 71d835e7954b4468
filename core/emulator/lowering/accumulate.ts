/**
 * int8 x int8 -> int32 accumulation of a layer in onnxruntime-web operators: one ConvInteger or
 * MatMulInteger (zero points as inputs), then the int32 bias (Add, broadcast on the output
 * channel axis), then optionally ReLU on the accumulator (Max with 0).
 *
 * The Ascend activation offset is compensated exactly as the reference does: ConvInteger /
 * MatMulInteger with x_zero_point = offset compute sum((q - offset) * w) and ORT pads the conv
 * input with the zero point (padded taps contribute 0), which is the reference's
 * `conv2dInt8(q, w, bias - offset * sum(w), padValue = offset)` (both wrap modulo 2^32).
 *
 * ReLU on the accumulator is exact for every target: the dequantisation scale is >= 0 and each
 * rounding preserves sign, so relu(deq(acc)) = deq(max(acc, 0)), and it yields +0 (never -0).
 */

import { makeAttrInt, makeAttrInts } from '../../onnx/builder.ts';
import type { QuantizedLayer } from '../../quantize/layer.ts';
import { constant, emit, type LoweringContext } from './context.ts';

/** Integer element type of an operand. */
export type IntegerType = 'int8' | 'uint8';

/** Inputs of {@link lowerAccumulation}. */
export interface AccumulationOperands {
  /** Name of the quantized activation tensor. */
  q: string;
  /** Its element type and zero point (0: no zero point input). */
  actType: IntegerType;
  actZeroPoint: number;
  /** Element type of the weight constant and its per-tensor zero point (after the shift). */
  weightType: IntegerType;
  weightZeroPoint: number;
  /** Added to every weight value of the layer (128 turns int8 weights into uint8, exactly). */
  weightShift?: number;
}

function intConst(
  ctx: LoweringContext,
  prefix: string,
  type: IntegerType,
  dims: readonly number[],
  values: ArrayLike<number>,
): string {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const ok = type === 'int8' ? v >= -128 && v <= 127 : v >= 0 && v <= 255;
    if (!Number.isInteger(v) || !ok) throw new RangeError(`${prefix}: ${v} is not ${type}`);
  }
  return type === 'int8'
    ? constant(ctx, prefix, 'int8', dims, Int8Array.from(values))
    : constant(ctx, prefix, 'uint8', dims, Uint8Array.from(values));
}

/** Shape of a per-output-channel constant that broadcasts against the layer's output. */
export function channelShape(layer: QuantizedLayer, channels: number): number[] {
  if (layer.kind === 'conv') return [channels, 1, 1];
  if (layer.kind === 'matmul' && layer.weightSide === 'left') return [channels, 1];
  return [channels];
}

/**
 * Appends the layer's integer accumulation (+ bias, + ReLU when `relu`) and returns the int32
 * accumulator's name. Weight layouts follow the `QuantizedLayer` contract (Gemm [N, K] is
 * transposed here to [K, N] once, as a constant).
 */
export function lowerAccumulation(
  ctx: LoweringContext,
  layer: QuantizedLayer,
  ops: AccumulationOperands,
  prefix: string,
  relu: boolean,
): string {
  const shift = ops.weightShift ?? 0;
  const w = { dims: layer.weight.dims, q: layer.weight.q.map((v) => v + shift) };
  const zpx =
    ops.actZeroPoint !== 0
      ? intConst(ctx, `${prefix}/x_zp`, ops.actType, [], [ops.actZeroPoint])
      : '';
  const zpw =
    ops.weightZeroPoint !== 0
      ? intConst(ctx, `${prefix}/w_zp`, ops.weightType, [], [ops.weightZeroPoint])
      : '';
  let acc: string;
  if (layer.kind === 'conv') {
    const c = layer.conv;
    if (!c || w.dims.length !== 4)
      throw new RangeError(`layer '${layer.name}': conv needs OIHW weights and attributes`);
    const wt = intConst(ctx, `${prefix}/weight`, ops.weightType, w.dims, w.q);
    const inputs = zpw ? [ops.q, wt, zpx, zpw] : zpx ? [ops.q, wt, zpx] : [ops.q, wt];
    acc = emit(ctx, 'ConvInteger', inputs, `${prefix}/conv`, [
      makeAttrInts('kernel_shape', w.dims.slice(2)),
      makeAttrInts('strides', c.strides),
      makeAttrInts('pads', c.pads),
      makeAttrInts('dilations', c.dilations),
      makeAttrInt('group', c.group),
    ]);
  } else {
    let b: string;
    if (layer.kind === 'gemm') {
      const [n, k] = w.dims as [number, number];
      const t = new Int32Array(k * n);
      for (let i = 0; i < n; i++) for (let p = 0; p < k; p++) t[p * n + i] = w.q[i * k + p]!;
      b = intConst(ctx, `${prefix}/weight`, ops.weightType, [k, n], t);
    } else {
      b = intConst(ctx, `${prefix}/weight`, ops.weightType, w.dims, w.q);
    }
    if (layer.kind === 'matmul' && layer.weightSide === 'left') {
      const inputs = zpx ? [b, ops.q, zpw, zpx] : zpw ? [b, ops.q, zpw] : [b, ops.q];
      acc = emit(ctx, 'MatMulInteger', inputs, `${prefix}/matmul`);
    } else {
      const inputs = zpw ? [ops.q, b, zpx, zpw] : zpx ? [ops.q, b, zpx] : [ops.q, b];
      acc = emit(ctx, 'MatMulInteger', inputs, `${prefix}/matmul`);
    }
  }
  if (layer.bias.some((v) => v !== 0)) {
    const bias = constant(
      ctx,
      `${prefix}/bias`,
      'int32',
      channelShape(layer, layer.bias.length),
      Int32Array.from(layer.bias),
    );
    acc = emit(ctx, 'Add', [acc, bias], `${prefix}/acc`);
  }
  if (relu) {
    const zero = constant(ctx, `${prefix}/relu0`, 'int32', [], new Int32Array([0]));
    acc = emit(ctx, 'Max', [acc, zero], `${prefix}/relu`);
  }
  return acc;
}
