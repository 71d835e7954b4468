import { channelValues, type WeightMethod, weightClip } from '../calibrate/weights.ts';
import type { TensorScheme } from '../formats/targets.ts';
import { integerRange, MIN_SCALE, roundHalfEven } from './params.ts';

/** A float weight tensor with its output-channel axis (0 for Conv OIHW and Gemm transB). */
export interface FloatWeight {
  dims: readonly number[];
  data: Float32Array;
  /** Axis that indexes output channels. */
  axis: number;
}

/** A quantized weight: integers, one scale (and zero point) per channel or one per tensor. */
export interface QuantizedWeight {
  dims: readonly number[];
  axis: number;
  /** Integer values (int8, uint8 or int4 values held in an Int32Array for uniformity). */
  q: Int32Array;
  scales: Float64Array;
  zeroPoints: Int32Array;
  qmin: number;
  qmax: number;
}

/** Iterates (channel, flat index) pairs of a tensor along `axis`. */
function channelOf(dims: readonly number[], axis: number): (flat: number) => number {
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const channels = dims[axis]!;
  return (flat) => Math.floor(flat / inner) % channels;
}

/**
 * Quantizes a weight tensor. Symmetric schemes: scale = max|w| / qmax per channel (or per
 * tensor), zero point 0. Asymmetric (e.g. SNPE uint8): scale = (max - min) / (qmax - qmin)
 * over a range widened to include 0. Values are rounded half to even and saturated.
 * `clip` 'mse' replaces each channel's [min, max] by the IFMR clip range that minimises the
 * channel's squared quantization error on the scheme's grid (weights beyond it saturate);
 * it matters most for int4 weights (W4A8 targets).
 */
export function quantizeWeight(
  w: FloatWeight,
  scheme: TensorScheme,
  clip: WeightMethod = 'max',
): QuantizedWeight {
  const { qmin, qmax } = integerRange(scheme);
  const perChannel = scheme.granularity === 'per-channel';
  const channels = perChannel ? w.dims[w.axis]! : 1;
  const chan = perChannel ? channelOf(w.dims, w.axis) : () => 0;
  const lo = new Float64Array(channels);
  const hi = new Float64Array(channels);
  if (clip === 'mse') {
    // IFMR clip search per channel on the scheme's grid (core/calibrate/weights.ts)
    const ranges = weightClip(perChannel ? channelValues(w) : [w.data], 'mse', { scheme });
    ranges.forEach((r, c) => {
      lo[c] = Math.min(0, r.lo);
      hi[c] = Math.max(0, r.hi);
    });
  } else {
    for (let i = 0; i < w.data.length; i++) {
      const c = chan(i);
      const v = w.data[i]!;
      if (v < lo[c]!) lo[c] = v;
      if (v > hi[c]!) hi[c] = v;
    }
  }
  const scales = new Float64Array(channels);
  const zeroPoints = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    if (scheme.symmetric) {
      scales[c] = Math.max(MIN_SCALE, Math.max(-lo[c]!, hi[c]!) / qmax);
      zeroPoints[c] = scheme.type === 'uint8' ? 128 : 0;
    } else {
      const s = Math.max(MIN_SCALE, (hi[c]! - lo[c]!) / (qmax - qmin));
      scales[c] = s;
      zeroPoints[c] = Math.min(qmax, Math.max(qmin, qmin - Math.round(lo[c]! / s)));
    }
  }
  const q = new Int32Array(w.data.length);
  for (let i = 0; i < w.data.length; i++) {
    const c = chan(i);
    const v = roundHalfEven(w.data[i]! / scales[c]!) + zeroPoints[c]!;
    q[i] = v < qmin ? qmin : Math.min(v, qmax);
  }
  return { dims: [...w.dims], axis: w.axis, q, scales, zeroPoints, qmin, qmax };
}

/** Dequantizes a weight back to float64 values (for error reports and bias correction). */
export function dequantizeWeight(qw: QuantizedWeight): Float64Array {
  const chan = qw.scales.length > 1 ? channelOf(qw.dims, qw.axis) : () => 0;
  const out = new Float64Array(qw.q.length);
  for (let i = 0; i < qw.q.length; i++) {
    const c = chan(i);
    out[i] = (qw.q[i]! - qw.zeroPoints[c]!) * qw.scales[c]!;
  }
  return out;
}

/**
 * Folds an inference-mode BatchNormalization into the preceding Conv/Gemm:
 * w' = w * gamma / sqrt(var + eps) (per output channel), b' = (b - mean) * gamma / sqrt(var + eps) + beta.
 * Computed in float64, stored as float32.
 */
export function foldBatchNorm(
  weight: FloatWeight,
  bias: Float32Array | undefined,
  bn: {
    scale: Float32Array;
    bias: Float32Array;
    mean: Float32Array;
    variance: Float32Array;
    epsilon: number;
  },
): { weight: Float32Array; bias: Float32Array } {
  const channels = weight.dims[weight.axis]!;
  if (bn.scale.length !== channels)
    throw new RangeError(
      `foldBatchNorm: ${bn.scale.length} BN channels for ${channels} weight channels`,
    );
  const chan = channelOf(weight.dims, weight.axis);
  const factor = new Float64Array(channels);
  for (let c = 0; c < channels; c++)
    factor[c] = bn.scale[c]! / Math.sqrt(bn.variance[c]! + bn.epsilon);
  const w = new Float32Array(weight.data.length);
  for (let i = 0; i < w.length; i++) w[i] = weight.data[i]! * factor[chan(i)]!;
  const b = new Float32Array(channels);
  for (let c = 0; c < channels; c++)
    b[c] = ((bias?.[c] ?? 0) - bn.mean[c]!) * factor[c]! + bn.bias[c]!;
  return { weight: w, bias: b };
}
