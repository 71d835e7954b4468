/**
 * Test support for the lowering tests: a seeded PRNG, running a small ONNX model in
 * onnxruntime-web (Node loader), random quantized layers and adversarial inputs.
 * Not used by production code.
 */

import { TARGETS } from '../../formats/targets.ts';
import { encodeModel } from '../../onnx/codec.ts';
import type { ModelProto } from '../../onnx/gen/onnx_pb.ts';
import type { QuantizedLayer } from '../../quantize/layer.ts';
import { activationParams } from '../../quantize/params.ts';
import { quantizeWeight } from '../../quantize/weights.ts';
import { createSession } from '../../runtime/index.ts';
import type { TensorData } from '../../tensor/index.ts';
import { fp16BitsToNumber } from '../fp16.ts';
import type { LoweredTargetId } from './scales.ts';

export { seededPrng as rng } from '../../random.ts';

/** Standard normal sample (Box-Muller). */
export function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Runs `model` once in onnxruntime-web and returns every output. */
export async function runModel(
  model: ModelProto,
  feeds: Record<string, TensorData>,
): Promise<Record<string, TensorData>> {
  const session = await createSession(encodeModel(model));
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Index of the first element whose bits differ (sign of zero and NaN payload included), or -1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** Shape of a random layer. */
export type LayerShape =
  | {
      kind: 'conv';
      n: number;
      cin: number;
      cout: number;
      h: number;
      w: number;
      k: number;
      strides: number[];
      pads: number[];
      dilations: number[];
      group: number;
    }
  | { kind: 'gemm'; m: number; k: number; n: number }
  | { kind: 'matmul-right'; batch: number; l: number; k: number; n: number }
  | { kind: 'matmul-left'; batch: number; m: number; k: number; n: number };

/** Options of {@link randomLayer}. */
export interface RandomLayerOptions {
  /** Activation clip range (default [-3, 5]; symmetric schemes use max |.|). */
  clip?: { lo: number; hi: number };
  /** Weight standard deviation (default 0.1). */
  weightStd?: number;
  /** Force the activation scale (e.g. a power of two for exact quantization ties). */
  actScale?: number;
  fusedRelu?: boolean;
  /** Weights all of one sign per channel with maximal magnitude (large accumulators). */
  extremeWeights?: boolean;
}

/** A random quantized layer of `target` with the target's scheme, and its input dims. */
export function randomLayer(
  r: () => number,
  target: LoweredTargetId,
  shape: LayerShape,
  opts: RandomLayerOptions = {},
): { layer: QuantizedLayer; inputDims: number[] } {
  const t = TARGETS[target];
  let wDims: number[];
  let axis: number;
  let inputDims: number[];
  let kind: QuantizedLayer['kind'];
  let weightSide: QuantizedLayer['weightSide'];
  switch (shape.kind) {
    case 'conv':
      wDims = [shape.cout, shape.cin / shape.group, shape.k, shape.k];
      axis = 0;
      inputDims = [shape.n, shape.cin, shape.h, shape.w];
      kind = 'conv';
      break;
    case 'gemm':
      wDims = [shape.n, shape.k];
      axis = 0;
      inputDims = [shape.m, shape.k];
      kind = 'gemm';
      break;
    case 'matmul-right':
      wDims = [shape.k, shape.n];
      axis = 1;
      inputDims = shape.batch > 0 ? [shape.batch, shape.l, shape.k] : [shape.l, shape.k];
      kind = 'matmul';
      weightSide = 'right';
      break;
    case 'matmul-left':
      wDims = [shape.m, shape.k];
      axis = 0;
      inputDims = shape.batch > 0 ? [shape.batch, shape.k, shape.n] : [shape.k, shape.n];
      kind = 'matmul';
      weightSide = 'left';
      break;
  }
  const count = wDims.reduce((a, b) => a * b, 1);
  const std = opts.weightStd ?? 0.1;
  const channels = wDims[axis]!;
  let inner = 1;
  for (let i = axis + 1; i < wDims.length; i++) inner *= wDims[i]!;
  const data = Float32Array.from({ length: count }, (_, i) => {
    if (opts.extremeWeights) {
      const c = Math.floor(i / inner) % channels;
      return (c % 2 === 0 ? 1 : -1) * std * (0.98 + 0.02 * r());
    }
    return normal(r) * std * (0.5 + r());
  });
  const weight = quantizeWeight({ dims: wDims, data, axis }, t.weights);
  const clip = opts.clip ?? { lo: -3, hi: 5 };
  const act = activationParams(clip, t.activations);
  if (opts.actScale !== undefined) act.scale = opts.actScale;
  const deqScale = Float64Array.from({ length: channels }, (_, c) => {
    const s = weight.scales.length === 1 ? weight.scales[0]! : weight.scales[c]!;
    return act.scale * s;
  });
  const bias = Int32Array.from({ length: channels }, () => Math.round(normal(r) * 2000));
  const layer: QuantizedLayer = {
    name: `${target}_${shape.kind}`,
    kind,
    input: 'x',
    output: 'y',
    act,
    weight,
    bias,
    deqScale,
    fusedRelu: opts.fusedRelu ?? false,
    target,
  };
  if (weightSide) layer.weightSide = weightSide;
  if (shape.kind === 'conv') {
    layer.conv = {
      strides: shape.strides,
      pads: shape.pads,
      dilations: shape.dilations,
      group: shape.group,
    };
  }
  return { layer, inputDims };
}

/**
 * Adversarial float32 inputs for a layer: a mix of ordinary values, fp16 midpoints and their
 * float neighbours, values beyond the fp16 range (and ±Inf, NaN), exact and near quantization
 * ties (k + 0.5) * scale, and saturating values.
 */
export function adversarialInput(r: () => number, layer: QuantizedLayer, n: number): Float32Array {
  const x = new Float32Array(n);
  const s = layer.act.scale;
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < n; i++) {
    const pick = r();
    let v: number;
    if (pick < 0.35) {
      v = normal(r) * 2;
    } else if (pick < 0.55) {
      // fp16 midpoint (exact in float32), possibly nudged by one float ulp
      const bits = Math.floor(r() * 0x7bff);
      const a = fp16BitsToNumber(bits);
      const b = fp16BitsToNumber(bits + 1);
      f32[0] = (a + b) / 2;
      const nudge = Math.floor(r() * 3) - 1;
      u32[0] = u32[0]! + nudge;
      v = f32[0]! * (r() < 0.5 ? -1 : 1) * (r() < 0.7 ? 2 ** -Math.floor(r() * 12) : 1);
      v = Math.fround(v);
    } else if (pick < 0.75) {
      // quantization ties (k + 0.5) * scale and neighbours
      const k = Math.floor(r() * 300) - 150;
      v = Math.fround((k + 0.5) * s);
      if (r() < 0.3) {
        f32[0] = v;
        u32[0] = u32[0]! + (r() < 0.5 ? 1 : -1);
        v = f32[0]!;
      }
    } else if (pick < 0.85) {
      const big = [65504, 65519, 65520, 65536, 70000, 1e6, 3.4e38, Number.POSITIVE_INFINITY];
      v = big[Math.floor(r() * big.length)]! * (r() < 0.5 ? -1 : 1);
    } else if (pick < 0.87) {
      v = Number.NaN;
    } else if (pick < 0.9) {
      v = r() < 0.5 ? -0 : 0;
    } else {
      // saturating: beyond the quantization range
      v = (r() < 0.5 ? -1 : 1) * s * (130 + r() * 200);
    }
    x[i] = v;
  }
  return x;
}
