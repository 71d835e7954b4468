/**
 * Per-channel clip ranges for weights, with the same methods as activations.
 *
 * Weights are quantized per output channel (symmetric int8 on every target but Snapdragon, which
 * is uint8 asymmetric per tensor). The quantizer (core/quantize/weights.ts) currently uses the
 * channel's max; these helpers give the clip range of each channel under a method so that a
 * caller can turn it into a scale with {@link activationParams} (the same formula the weight
 * quantizer applies to max/min: symmetric scale = max(-lo, hi) / qmax, asymmetric scale =
 * (hi - lo) / (qmax - qmin) with zero point qmin - round(lo / scale)).
 *
 * Usage:
 * ```ts
 * const clips = weightClip(channelValues(w), 'mse', { scheme: target.weights });
 * const params = clips.map((c) => activationParams(c, target.weights));
 * ```
 * For a per-tensor scheme pass all values as one channel: `weightClip([w.data], method, ...)`.
 *
 * Methods: `max` (the channel's [min, max] widened to include 0, exactly what quantizeWeight
 * uses) and `mse` (IFMR on the channel's values, see {@link mseRangeOfValues}: initial clips at
 * the 0.999999 empirical percentiles, which for channels of fewer than 10^6 weights are the
 * extreme values, then factors 0.70..1.30 of them, minimising the exact squared error of the
 * channel's weights on the scheme's grid). AMCT's own weight algorithm (ARQ) is not reproduced
 * here.
 */
import type { TensorScheme } from '../formats/targets.ts';
import type { FloatWeight } from '../quantize/weights.ts';
import type { ClipRange } from './methods.ts';
import { type IfmrSearch, mseRangeOfValues } from './mse.ts';

/** Weight calibration methods. */
export type WeightMethod = 'max' | 'mse';

/** Options of {@link weightClip}. */
export interface WeightClipOptions {
  /** Scheme of the weights (default int8 symmetric per-channel). */
  scheme?: TensorScheme;
  /** `mse`: IFMR search parameters (default AMCT's). */
  search?: Partial<IfmrSearch>;
}

const DEFAULT_WEIGHT_SCHEME: TensorScheme = {
  type: 'int8',
  symmetric: true,
  granularity: 'per-channel',
};

/**
 * Splits a weight tensor into the values of each channel along `w.axis` (0 for Conv OIHW and
 * Gemm with transB; the values of a channel keep their flat order).
 */
export function channelValues(w: FloatWeight): Float32Array[] {
  const channels = w.dims[w.axis]!;
  let inner = 1;
  for (let i = w.axis + 1; i < w.dims.length; i++) inner *= w.dims[i]!;
  const outer = w.data.length / (channels * inner);
  return Array.from({ length: channels }, (_, c) => {
    const out = new Float32Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      const from = (o * channels + c) * inner;
      out.set(w.data.subarray(from, from + inner), o * inner);
    }
    return out;
  });
}

/** The [min, max] of values widened to include 0 (the `max` method). */
function maxClip(values: ArrayLike<number>): ClipRange {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) throw new RangeError('weightClip: NaN weight');
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { lo, hi };
}

/** Clip range of each channel under a method, chosen for `options.scheme`. */
export function weightClip(
  channels: readonly ArrayLike<number>[],
  method: WeightMethod,
  options: WeightClipOptions = {},
): ClipRange[] {
  const scheme = options.scheme ?? DEFAULT_WEIGHT_SCHEME;
  return channels.map((values) => {
    const max = maxClip(values); // also rejects NaN
    if (method === 'max') return max;
    return mseRangeOfValues(values, {
      scheme,
      ...(options.search ? { search: options.search } : {}),
    });
  });
}
