import type { TensorScheme } from '../formats/targets.ts';
import type { Histogram, TensorRange } from './histogram.ts';
import { DEFAULT_SMOOTHING, klRange } from './kl-divergence.ts';
import { type IfmrSearch, mseRange } from './mse.ts';

/** Statistics of one activation tensor over the calibration samples (merged over shards). */
export interface TensorStats {
  range: TensorRange;
  histogram: Histogram;
}

/** The clip interval a calibration method chooses; the format turns it into scale/offset. */
export interface ClipRange {
  lo: number;
  hi: number;
}

/**
 * Names of the calibration methods:
 * - `max`: the observed range;
 * - `percentile`: both tails clipped at a percentile of the merged histogram;
 * - `kl`: TensorRT's entropy calibration (KL divergence threshold search, kl-divergence.ts);
 * - `kl-smooth`: the same with ORT/MXNet's smoothing of zero-probability bins;
 * - `mse`: AMCT IFMR-style search minimising the quantization MSE for the scheme (mse.ts).
 */
export type MethodName = 'max' | 'percentile' | 'kl' | 'kl-smooth' | 'mse';

/** Every method name, in the order reports list them. */
export const METHOD_NAMES: readonly MethodName[] = ['max', 'percentile', 'kl', 'kl-smooth', 'mse'];

/** Method options. */
export interface MethodOptions {
  /** Percentile kept by `percentile`, in percent (default 99.99). */
  percentile?: number;
  /**
   * The scheme the range will be used with: `kl` takes its number of quantized bins from it,
   * `mse` its grid. Default int8 symmetric per-tensor (TensorRT). `max` and `percentile` ignore it.
   */
  scheme?: TensorScheme;
  /** `kl`/`kl-smooth`: quantized bins over [0, T] (default from the scheme: 128 for int8). */
  bins?: number;
  /** `kl-smooth`: eps of the zero-bin smoothing, in counts (default 1e-4, ORT/MXNet). */
  smoothing?: number;
  /** `mse`: IFMR search parameters (default AMCT's: 0.999999 percentiles, [0.7, 1.3] by 0.01). */
  search?: Partial<IfmrSearch>;
}

/** max: the observed range itself. */
export function maxRange(stats: TensorStats): ClipRange {
  return { lo: Math.min(0, stats.range.min), hi: Math.max(0, stats.range.max) };
}

/**
 * percentile: clips each tail at the given percentile of all values, read off the merged
 * histogram (bin edges, never beyond the observed range). 99.99 keeps all but 1 in 10,000.
 */
export function percentileRange(stats: TensorStats, percentile = 99.99): ClipRange {
  if (!(percentile > 50 && percentile <= 100))
    throw new RangeError(`percentile must be in (50, 100], got ${percentile}`);
  const { counts, limit } = stats.histogram;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return { lo: 0, hi: 0 };
  const half = counts.length / 2;
  const width = limit / half;
  const tail = (total * (100 - percentile)) / 100;
  // Upper tail: walk down from the top until more than `tail` values are above the edge.
  let above = 0;
  let hiBin = counts.length - 1;
  while (hiBin > half && above + counts[hiBin]! <= tail) above += counts[hiBin--]!;
  let below = 0;
  let loBin = 0;
  while (loBin < half - 1 && below + counts[loBin]! <= tail) below += counts[loBin++]!;
  const hi = Math.min(stats.range.max, -limit + (hiBin + 1) * width);
  const lo = Math.max(stats.range.min, -limit + loBin * width);
  return { lo: Math.min(0, lo), hi: Math.max(0, hi) };
}

/** Runs a method by name. */
export function clipRange(
  method: MethodName,
  stats: TensorStats,
  options: MethodOptions = {},
): ClipRange {
  switch (method) {
    case 'max':
      return maxRange(stats);
    case 'percentile':
      return percentileRange(stats, options.percentile);
    case 'kl':
    case 'kl-smooth':
      return klRange(stats, {
        ...(options.scheme ? { scheme: options.scheme } : {}),
        ...(options.bins !== undefined ? { levels: options.bins } : {}),
        smoothing: method === 'kl' ? 0 : (options.smoothing ?? DEFAULT_SMOOTHING),
      });
    case 'mse':
      return mseRange(stats, {
        ...(options.scheme ? { scheme: options.scheme } : {}),
        ...(options.search ? { search: options.search } : {}),
      });
  }
}
