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
import { constant, DT, emit, emitCast, type LoweringContext } from './context.ts';

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

/**
 * Largest |accumulator + bias| any input can produce, per output channel:
 * sum_k |w[c,k] - zw| * max|q - zx| + |bias[c]|, with q over the activation type's full range.
 * Every partial sum of the accumulation is bounded by the same figure.
 */
export function accumulatorBounds(layer: QuantizedLayer, ops: AccumulationOperands): number[] {
  const shift = ops.weightShift ?? 0;
  const [lo, hi] = ops.actType === 'uint8' ? [0, 255] : [-128, 127];
  const maxX = Math.max(Math.abs(lo - ops.actZeroPoint), Math.abs(hi - ops.actZeroPoint));
  const d = layer.weight.dims;
  const q = layer.weight.q;
  const channels = layer.bias.length;
  const sums = new Array<number>(channels).fill(0);
  const add = (c: number, v: number) => {
    sums[c]! += Math.abs(v + shift - ops.weightZeroPoint);
  };
  if (layer.kind === 'matmul' && (layer.weightSide ?? 'right') === 'right') {
    // [K, N]: channel = column
    const n = d[1]!;
    for (let i = 0; i < q.length; i++) add(i % n, q[i]!);
  } else {
    // conv OIHW, gemm [N, K], matmul left [M, K]: channel = row
    const per = q.length / channels;
    for (let i = 0; i < q.length; i++) add(Math.floor(i / per), q[i]!);
  }
  return sums.map((s, c) => s * maxX + Math.abs(layer.bias[c]!));
}

/** 2^24: every integer of magnitude <= 2^24 is exact in float32. */
const FLOAT32_EXACT_INT = 2 ** 24;

/**
 * The accumulation of a convolution in float32 operators, when it is exact: appends
 * DequantizeLinear(q, 1, zx) (the integer q - zx as float), a float Conv with the integer
 * weights w - zw as float and the int32 bias cast to float as its bias input, and Relu when
 * `relu`, and returns the float32 accumulator's name; returns undefined (nothing appended) when
 * the layer's {@link accumulatorBounds} exceed 2^24 or the layer is not a convolution.
 *
 * Why it is exact: every product (q - zx)(w - zw) is an integer and every partial sum, in any
 * order or blocking, is an integer of magnitude <= the bound <= 2^24, so each float32 operation
 * (multiply, add or fused multiply-add) has an exactly representable result: the float Conv
 * equals the int32 accumulation (which cannot wrap under the bound). Padded taps read 0, the
 * value of the zero point, as with ConvInteger's zero-point padding. The bias is always added,
 * so a zero accumulator is +0 as on the integer path, and Relu(+0) = +0.
 *
 * Why: ORT-web's ConvInteger is 2-4x slower than its float Conv on depthwise (grouped)
 * convolutions (measured on fmnist-mobilenet, bench/RESULTS.md), while it is faster on dense ones.
 */
export function lowerFloatAccumulation(
  ctx: LoweringContext,
  layer: QuantizedLayer,
  ops: AccumulationOperands,
  prefix: string,
  relu: boolean,
): string | undefined {
  const c = layer.conv;
  const dims = layer.weight.dims;
  if (layer.kind !== 'conv' || !c || dims.length !== 4) return undefined;
  const bounds = accumulatorBounds(layer, ops);
  if (!bounds.every((b) => b <= FLOAT32_EXACT_INT)) return undefined;
  const shift = ops.weightShift ?? 0;
  const wf = Float32Array.from(layer.weight.q, (v) => v + shift - ops.weightZeroPoint);
  const one = constant(ctx, `${prefix}/one`, 'float32', [], new Float32Array([1]));
  const zx =
    ops.actType === 'uint8'
      ? constant(ctx, `${prefix}/x_zp`, 'uint8', [], new Uint8Array([ops.actZeroPoint]))
      : constant(ctx, `${prefix}/x_zp`, 'int8', [], new Int8Array([ops.actZeroPoint]));
  const x = emit(ctx, 'DequantizeLinear', [ops.q, one, zx], `${prefix}/xf`);
  const w = constant(ctx, `${prefix}/weight_f`, 'float32', dims, wf);
  // The bias goes in as int32 and is cast in the graph: float32 constants of an fp16 emulation
  // graph are rounded to fp16, which would alter biases above 2048 (the weights, |w - zw| <=
  // 255, are fp16 values already).
  const bias = emitCast(
    ctx,
    constant(ctx, `${prefix}/bias_i`, 'int32', [layer.bias.length], Int32Array.from(layer.bias)),
    DT.FLOAT,
    `${prefix}/bias_f`,
  );
  let acc = emit(ctx, 'Conv', [x, w, bias], `${prefix}/conv_f`, [
    makeAttrInts('kernel_shape', dims.slice(2)),
    makeAttrInts('strides', c.strides),
    makeAttrInts('pads', c.pads),
    makeAttrInts('dilations', c.dilations),
    makeAttrInt('group', c.group),
  ]);
  if (relu) acc = emit(ctx, 'Relu', [acc], `${prefix}/relu_f`);
  return acc;
}
