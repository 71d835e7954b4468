/**
 * MSE clip search in the manner of AMCT's IFMR ("input feature map reconstruction"), the
 * default activation calibration of Huawei's AMCT. Sources: the IFMR TBE kernel
 * (`opp/built-in/op_impl/ai_core/tbe/impl/dynamic/ifmr.py`, CANN toolkit) and the numpy golden
 * model the torch_npu test of `npu_ifmr` checks it against (`test/test_network_ops/test_ifmr.py`).
 *
 * IFMR, as that code does it:
 * 1. Initial clips from the cumulative histogram: `max_init` is the left edge of the first bin
 *    whose cdf reaches `max_percentile` (0.999999), `min_init` the left edge of the first bin
 *    whose cdf reaches `1 - min_percentile`.
 * 2. Candidates: factors `search_start + k * search_step`, k = 0 .. (end - start) // step
 *    (0.70, 0.71, ..., 1.30: 61 factors with the defaults).
 *    - with offset (asymmetric): `max_init = max(max_init, 0)`, `min_init = min(min_init, 0)`;
 *      only the upper clip is scaled, `clip_max = max_init * f`, the lower clip stays `min_init`
 *      for every candidate (the kernel fills `min_list` with `min_init`). scale = (max - min) /
 *      255, offset = -(round(min / scale) + 128).
 *    - without offset (symmetric): `T = max(|max_init|, |min_init|) * f`, scale = T / 127.
 * 3. Loss: sum of squared quantize-dequantize errors; the candidate with the smallest loss wins,
 *    the first (smallest factor) on ties (`np.argmin`, `vec_reduce_min`).
 *
 * What we change, and why:
 * - The scheme decides the grid: the loss quantizes with {@link activationParams} and the
 *   scheme's integer range (int8 asymmetric [-128, 127] with offset, int8 symmetric [-127, 127],
 *   uint8 [0, 255]...), i.e. exactly what the quantizer will do, rounding half to even. (The
 *   kernel clips symmetric values to [-128, 127]; our symmetric int8 grid is [-127, 127].)
 * - Activations: AMCT computes the loss on the raw data; calibration here keeps only the merged
 *   histogram, so the loss is the expected error of values spread uniformly inside each bin
 *   (exact integral of (x - dequant(quant(x)))^2 per bin and quantization cell). Bin centres
 *   alone (TensorRT's `_compute_amax_mse`) mis-estimate the rounding error once the quantization
 *   step is comparable to the bin width, which is the case when outliers stretch the histogram.
 *   The percentile initialisation reads the same fixed-edge signed histogram.
 * - Weights ({@link mseRangeOfValues}): all values are at hand, so the loss is computed on the
 *   values themselves, as IFMR does, and the percentiles are empirical.
 *
 * Limits inherited from IFMR: the search never goes below 0.7x the initial clip, and with fewer
 * than 1 / (1 - 0.999999) = 10^6 values in a tail the percentile is the extreme value itself, so
 * isolated outliers can at most be clipped to 0.7x their magnitude; and with an offset the lower
 * clip is never searched (only percentile-clipped).
 */
import type { TensorScheme } from '../formats/targets.ts';
import { type ActivationParams, activationParams, roundHalfEven } from '../quantize/params.ts';
import type { ClipRange, TensorStats } from './methods.ts';

/** IFMR search parameters (AMCT names in comments). */
export interface IfmrSearch {
  /** `max_percentile`: cdf level of the initial upper clip. */
  maxPercentile: number;
  /** `min_percentile`: the initial lower clip is at cdf level 1 - minPercentile. */
  minPercentile: number;
  /** `search_range[0]`. */
  start: number;
  /** `search_range[1]` (inclusive, as the kernel counts `(end - start) // step + 1` steps). */
  end: number;
  /** `search_step`. */
  step: number;
}

/** AMCT's IFMR defaults. */
export const IFMR_DEFAULTS: Readonly<IfmrSearch> = {
  maxPercentile: 0.999999,
  minPercentile: 0.999999,
  start: 0.7,
  end: 1.3,
  step: 0.01,
};

/** The default scheme when none is given: int8 symmetric (TensorRT-like). */
const DEFAULT_SCHEME: TensorScheme = { type: 'int8', symmetric: true, granularity: 'per-tensor' };

/** The search factors, start + k * step (rounded to 1e-9 so that 1.0 is exactly 1). */
export function ifmrFactors(search: Partial<IfmrSearch> = {}): number[] {
  const { start, end, step } = { ...IFMR_DEFAULTS, ...search };
  if (!(step > 0) || !(end >= start) || !(start > 0))
    throw new RangeError(`ifmrFactors: bad search [${start}, ${end}] step ${step}`);
  const n = Math.floor((end - start) / step + 1e-9) + 1;
  return Array.from({ length: n }, (_, k) => Math.round((start + k * step) * 1e9) / 1e9);
}

/** One IFMR candidate: its clip range and the parameters the scheme gives it. */
export interface IfmrCandidate {
  factor: number;
  clip: ClipRange;
  params: ActivationParams;
}

/**
 * The candidate clip ranges of IFMR for initial clips [loInit, hiInit] under a scheme.
 * Symmetric: [-T, T] with T = max(|loInit|, |hiInit|) * f, the side without values reported as 0
 * (the scale max(-lo, hi) / qmax is unchanged). Asymmetric: [min(loInit, 0), max(hiInit, 0) * f].
 */
export function ifmrCandidates(
  init: ClipRange,
  scheme: TensorScheme,
  search: Partial<IfmrSearch> = {},
): IfmrCandidate[] {
  return ifmrFactors(search).map((factor) => {
    let clip: ClipRange;
    if (scheme.symmetric) {
      const T = Math.max(Math.abs(init.lo), Math.abs(init.hi)) * factor;
      clip = { lo: init.lo < 0 ? -T : 0, hi: init.hi > 0 || init.lo >= 0 ? T : 0 };
    } else {
      clip = { lo: Math.min(init.lo, 0), hi: Math.max(init.hi, 0) * factor };
    }
    return { factor, clip, params: activationParams(clip, scheme) };
  });
}

/** Index of the smallest loss, the first (smallest factor) on ties. */
function argmin(losses: readonly number[]): number {
  let best = 0;
  for (let k = 1; k < losses.length; k++) if (losses[k]! < losses[best]!) best = k;
  return best;
}

/**
 * IFMR's initial clips from a signed fixed-edge histogram: left edges of the first bins whose cdf
 * reaches `1 - minPercentile` and `maxPercentile`.
 */
export function ifmrInit(stats: TensorStats, search: Partial<IfmrSearch> = {}): ClipRange {
  const { maxPercentile, minPercentile } = { ...IFMR_DEFAULTS, ...search };
  const { counts, limit } = stats.histogram;
  const total = counts.reduce((a, b) => a + b, 0);
  const width = (2 * limit) / counts.length;
  const pMin = 1 - minPercentile;
  let cum = 0;
  let minIndex = -1;
  let maxIndex = -1;
  for (let j = 0; j < counts.length; j++) {
    cum += counts[j]!;
    const cdf = cum / total;
    if (minIndex < 0 && cdf >= pMin) minIndex = j;
    if (maxIndex < 0 && cdf >= maxPercentile) maxIndex = j;
  }
  if (minIndex < 0) minIndex = counts.length;
  if (maxIndex < 0) maxIndex = counts.length;
  return { lo: -limit + minIndex * width, hi: -limit + maxIndex * width };
}

/**
 * Expected squared quantization error (sum over the histogram, in value^2 x count) of values
 * spread uniformly inside each bin, for a quantizer `q = clamp(round(x / s) + z)`.
 */
export function histogramQuantError(stats: TensorStats, p: ActivationParams): number {
  const { counts, limit } = stats.histogram;
  const width = (2 * limit) / counts.length;
  const { scale: s, zeroPoint: z, qmin, qmax } = p;
  let err = 0;
  for (let j = 0; j < counts.length; j++) {
    const n = counts[j]!;
    if (n === 0) continue;
    const a = -limit + j * width;
    const b = a + width;
    let q = Math.min(qmax, Math.max(qmin, Math.round(a / s) + z));
    let x0 = a;
    let sum = 0;
    while (x0 < b) {
      const boundary = q >= qmax ? b : (q - z + 0.5) * s;
      const x1 = Math.max(x0, Math.min(b, boundary));
      const v = (q - z) * s;
      const A = x0 - v;
      const B = x1 - v;
      sum += ((x1 - x0) * (A * A + A * B + B * B)) / 3;
      x0 = x1;
      if (q >= qmax) break;
      q++;
    }
    err += (n / width) * sum;
  }
  return err;
}

/** Squared quantize-dequantize error of values (rounding half to even, saturating). */
export function valuesQuantError(values: ArrayLike<number>, p: ActivationParams): number {
  const { scale: s, zeroPoint: z, qmin, qmax } = p;
  let err = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    let q = roundHalfEven(x / s) + z;
    q = Math.min(qmax, Math.max(qmin, q));
    const d = (q - z) * s - x;
    err += d * d;
  }
  return err;
}

/** Options of the MSE search. */
export interface MseOptions {
  /** The scheme the range will be used with (default int8 symmetric). */
  scheme?: TensorScheme;
  /** IFMR parameters (default AMCT's). */
  search?: Partial<IfmrSearch>;
}

/** Result of an MSE search: the chosen candidate and the loss of every candidate. */
export interface MseSearch {
  best: IfmrCandidate;
  candidates: IfmrCandidate[];
  /** Mean squared error of each candidate (per value). */
  losses: number[];
}

/** IFMR on a tensor's merged histogram, with every candidate's loss (for reports and tests). */
export function mseSearch(stats: TensorStats, options: MseOptions = {}): MseSearch {
  const scheme = options.scheme ?? DEFAULT_SCHEME;
  const total = stats.histogram.counts.reduce((a, b) => a + b, 0);
  const init = ifmrInit(stats, options.search);
  const candidates = ifmrCandidates(init, scheme, options.search);
  const losses = candidates.map((c) =>
    total > 0 ? histogramQuantError(stats, c.params) / total : 0,
  );
  return { best: candidates[argmin(losses)]!, candidates, losses };
}

/** MSE (IFMR) clip range of an activation tensor from its merged statistics. */
export function mseRange(stats: TensorStats, options: MseOptions = {}): ClipRange {
  const total = stats.histogram.counts.reduce((a, b) => a + b, 0);
  if (total === 0 || !(stats.histogram.limit > 0))
    return { lo: Math.min(0, stats.range.min), hi: Math.max(0, stats.range.max) };
  return mseSearch(stats, options).best.clip;
}

/**
 * IFMR on raw values (used per weight channel): empirical percentiles (the smallest value whose
 * empirical cdf reaches the level), loss on the values themselves.
 */
export function mseRangeOfValues(values: ArrayLike<number>, options: MseOptions = {}): ClipRange {
  const n = values.length;
  if (n === 0) return { lo: 0, hi: 0 };
  const scheme = options.scheme ?? DEFAULT_SCHEME;
  const { maxPercentile, minPercentile } = { ...IFMR_DEFAULTS, ...options.search };
  const sorted = Float64Array.from(values).sort();
  const at = (level: number) =>
    sorted[Math.min(n - 1, Math.max(0, Math.ceil(level * n - 1e-9) - 1))]!;
  const init = { lo: at(1 - minPercentile), hi: at(maxPercentile) };
  if (init.lo === 0 && init.hi === 0) return { lo: 0, hi: 0 };
  const candidates = ifmrCandidates(init, scheme, options.search);
  const losses = candidates.map((c) => valuesQuantError(values, c.params));
  return candidates[argmin(losses)]!.clip;
}
