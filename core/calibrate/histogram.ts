/**
 * Activation statistics that merge exactly across shards.
 *
 * Calibration runs in two passes over the chosen samples: a range pass (min/max per tensor,
 * merged with min/max) fixes the histogram edges, then a histogram pass counts |x| into
 * `bins` equal-width bins over [0, absMax] (integer counts, merged by addition). Both merges
 * are associative and exact, so any sharding of the samples gives the same statistics.
 */

/** Per-tensor value range. */
export interface TensorRange {
  min: number;
  max: number;
  /** Number of values seen. */
  count: number;
}

/** An empty range (identity of {@link mergeRanges}). */
export function emptyRange(): TensorRange {
  return { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, count: 0 };
}

/**
 * Folds values into a range. NaN values are rejected: a NaN activation is a broken model (or
 * broken input data); `name` (the tensor's) goes into the error so that the user can find it.
 */
export function observeRange(
  range: TensorRange,
  values: ArrayLike<number>,
  name?: string,
): TensorRange {
  let { min, max } = range;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    if (Number.isNaN(v))
      throw new RangeError(
        name === undefined
          ? 'observeRange: NaN activation'
          : `the FP32 model computes NaN in tensor '${name}' on the calibration samples; it cannot be calibrated`,
      );
  }
  return { min, max, count: range.count + values.length };
}

/** Merges two ranges (exact, associative, commutative). */
export function mergeRanges(a: TensorRange, b: TensorRange): TensorRange {
  return { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), count: a.count + b.count };
}

/**
 * A signed histogram with fixed equal-width bins over [-limit, limit]; 0 is a bin edge, so the
 * histogram of |x| (used by symmetric methods) folds out of it exactly.
 */
export interface Histogram {
  limit: number;
  /** 2 * half bins: bin i covers [-limit + i * w, -limit + (i + 1) * w), w = limit / half. */
  counts: number[];
}

/** Default bins per sign (TensorRT's entropy calibrator uses 2048 bins of |x|). */
export const DEFAULT_HALF_BINS = 2048;

/** An empty histogram over [-limit, limit]; `limit` = max(|min|, |max|) of the merged range pass. */
export function emptyHistogram(limit: number, halfBins = DEFAULT_HALF_BINS): Histogram {
  if (!(limit >= 0) || !Number.isFinite(limit))
    throw new RangeError(`emptyHistogram: bad limit ${limit}`);
  return { limit, counts: new Array<number>(2 * halfBins).fill(0) };
}

/** Bin index of v (values beyond the limit go to the outermost bins; 0 to the first positive bin). */
export function binOf(h: Histogram, v: number): number {
  const bins = h.counts.length;
  const half = bins / 2;
  if (h.limit === 0) return half;
  const i = half + Math.floor((v / h.limit) * half);
  return i < 0 ? 0 : i >= bins ? bins - 1 : i;
}

/** Counts values into a histogram (mutates and returns it). */
export function observeHistogram(h: Histogram, values: ArrayLike<number>): Histogram {
  for (let i = 0; i < values.length; i++) h.counts[binOf(h, values[i]!)]!++;
  return h;
}

/** Merges two histograms with identical edges (exact integer addition). */
export function mergeHistograms(a: Histogram, b: Histogram): Histogram {
  if (a.limit !== b.limit || a.counts.length !== b.counts.length) {
    throw new RangeError(
      `mergeHistograms: edges differ (${a.limit}/${a.counts.length} vs ${b.limit}/${b.counts.length})`,
    );
  }
  return { limit: a.limit, counts: a.counts.map((c, i) => c + b.counts[i]!) };
}

/** The histogram of |x| over [0, limit] with `half` bins, folded exactly from a signed one. */
export function foldAbs(h: Histogram): number[] {
  const half = h.counts.length / 2;
  return Array.from({ length: half }, (_, i) => h.counts[half + i]! + h.counts[half - 1 - i]!);
}
