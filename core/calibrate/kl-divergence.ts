/**
 * KL-divergence ("entropy") calibration: the threshold search of TensorRT's entropy calibrator
 * (Szymon Migacz, "8-bit Inference with TensorRT", GTC 2017, s7310), implemented as NVIDIA's own
 * public code does it: `_compute_amax_entropy` in TensorRT/tools/pytorch-quantization
 * (`pytorch_quantization/calib/histogram.py`). The smoothed variant adds the zero-bin smoothing
 * of `smooth_distribution` (onnxruntime `python/tools/quantization/quant_utils.py`, from MXNet
 * `contrib/quantization.py`), which ONNX Runtime and MXNet apply in `get_entropy_threshold`.
 *
 * Algorithm (per tensor, on the histogram of |x| folded exactly out of the signed histogram):
 * 1. `bins[0] = bins[1]` (pytorch-quantization: the first bin holds the exact zeros, a spike
 *    after ReLU that would otherwise dominate both distributions).
 * 2. For every candidate `i` from `levels` to `H` (the number of |x| bins; pytorch-quantization
 *    starts at `start_bin = 128`, which equals `levels` for int8; we start at `levels` for every
 *    scheme, as MXNet does, since a candidate narrower than the quantized grid is lossless):
 *    - reference P: `bins[0..i)`, with the count of everything beyond (`bins[i..H)`) added to
 *      the last kept bin (outliers clipped to the threshold);
 *    - quantized Q: `bins[0..i)` merged into `levels` groups, source bin `j` going to group
 *      `floor(j * levels / i)` (what `np.digitize(range(i), np.linspace(0, i, levels + 1)) - 1`
 *      computes, done here in exact integer arithmetic); each group's total is spread evenly over
 *      its non-zero source bins, zero source bins stay zero (the outlier count is not in Q);
 *    - both normalised; `KL(P || Q) = sum P log(P / Q)` (scipy `entropy`), terms with P = 0 are 0,
 *      and a term with P > 0, Q = 0 (the last kept bin is empty but outliers were folded into it)
 *      makes the candidate infinite.
 * 3. The threshold is the upper edge of bin `i` with the smallest divergence; ties go to the
 *    largest `i` (pytorch-quantization takes the last argmin).
 *
 * Smoothed variant (`kl-smooth`): before the divergence, P and Q (as counts) each get
 * `smooth_distribution(p, eps)`: every zero entry becomes `eps` and every non-zero entry loses
 * `eps * zeros / nonzeros`, so the total is unchanged and a zero Q bin no longer makes the
 * divergence infinite. Zero bins of P and Q coincide except possibly the last one, so where a
 * candidate has no empty bin the smoothing is the identity and both variants give the same value.
 * ORT's own loop differs in details we do not copy: it merges `floor(i / levels)` source bins per
 * group with the remainder in the last group, takes Q's non-zero mask from P after the outlier
 * fold, truncates the expanded Q to integers (`q` is an int64 array) and smooths in float32; we
 * keep pytorch-quantization's even merge, its mask (kept bins before the fold) and exact float64
 * averages, and only add the smoothing on top.
 *
 * The search is O(H * levels) with prefix sums: per candidate only the `levels` groups are
 * visited (the smoothed variant uses a Taylor series of the shifted terms, see `smoothedKl`).
 */
import type { TensorScheme } from '../formats/targets.ts';
import { integerRange } from '../quantize/params.ts';
import { foldAbs } from './histogram.ts';
import type { ClipRange, TensorStats } from './methods.ts';

/** Default `eps` of `smooth_distribution` (onnxruntime, MXNet): in units of counts. */
export const DEFAULT_SMOOTHING = 1e-4;

/** The scheme assumed when a caller gives none: TensorRT's int8 symmetric per-tensor. */
export const DEFAULT_SCHEME: TensorScheme = {
  type: 'int8',
  symmetric: true,
  granularity: 'per-tensor',
};

/**
 * Number of quantized bins over [0, T] for a tensor under a scheme: the integer grid points the
 * scheme has on one side of zero.
 * - symmetric: `qmax + 1` (128 for int8 [-127, 127], as TensorRT: "128 values + sign");
 * - asymmetric and the tensor is one-sided (min >= 0, e.g. post-ReLU, or max <= 0): the whole
 *   grid `qmax - qmin + 1` (256 for int8/uint8) covers [0, T], pytorch-quantization's
 *   `1 << (num_bits - 1 + unsigned)` with `unsigned`;
 * - asymmetric and two-sided: half the grid (128), as for a signed tensor in TensorRT; the
 *   clip is the symmetric threshold cut to the observed range (ORT does the same clamping).
 */
export function klLevels(scheme: TensorScheme, oneSided: boolean): number {
  const { qmin, qmax } = integerRange(scheme);
  if (scheme.symmetric) return qmax - (scheme.type === 'uint8' ? 128 : 0) + 1;
  const grid = qmax - qmin + 1;
  return oneSided ? grid : grid / 2;
}

/** Options of the KL search. */
export interface KlOptions {
  /** Quantized bins over [0, T] (default from the scheme, see {@link klLevels}). */
  levels?: number;
  /** `eps` of the zero-bin smoothing; 0 (or undefined) = plain TensorRT KL. */
  smoothing?: number;
}

/** Result of a KL search on a |x| histogram. */
export interface KlSearch {
  /** Number of |x| bins kept by the chosen threshold. */
  bins: number;
  /** First candidate (divergences[k] belongs to candidate `start + k`). */
  start: number;
  /** Divergence of every candidate (Infinity where undefined). */
  divergences: Float64Array;
}

/**
 * KL divergence of every candidate threshold on a |x| histogram (counts of equal-width bins
 * starting at 0), and the chosen number of bins. Pure function of the counts: histograms merged
 * from shards give exactly the same result as a single pass.
 */
export function klSearch(absCounts: ArrayLike<number>, options: KlOptions = {}): KlSearch {
  const H = absCounts.length;
  const levels = Math.max(1, Math.floor(options.levels ?? 128));
  const eps = options.smoothing ?? 0;
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new RangeError(`klSearch: bad smoothing ${eps}`);
  const bins = new Float64Array(H);
  for (let j = 0; j < H; j++) bins[j] = absCounts[j]!;
  if (H > 1) bins[0] = bins[1]!;
  const pre = prefixSums(bins);
  const start = Math.min(levels, H);
  const divergences = new Float64Array(H - start + 1);
  for (let i = start; i <= H; i++) {
    divergences[i - start] = eps > 0 ? smoothedKl(pre, i, levels, eps) : plainKl(pre, i, levels);
  }
  // Last argmin over finite values (pytorch-quantization: `len - 1 - argmin(reversed)`).
  let best = -1;
  for (let k = 0; k < divergences.length; k++) {
    const d = divergences[k]!;
    if (Number.isFinite(d) && (best < 0 || d <= divergences[best]!)) best = k;
  }
  return { bins: best < 0 ? H : start + best, start, divergences };
}

function prefixSums(bins: Float64Array): Prefix {
  const H = bins.length;
  const cum = new Float64Array(H + 1);
  const nz = new Int32Array(H + 1);
  const xlx = new Float64Array(H + 1);
  const logc = new Float64Array(H + 1);
  const r1 = new Float64Array(H + 1);
  const r2 = new Float64Array(H + 1);
  const r3 = new Float64Array(H + 1);
  for (let j = 0; j < H; j++) {
    const c = bins[j]!;
    const l = c > 0 ? Math.log(c) : 0;
    const inv = c > 0 ? 1 / c : 0;
    cum[j + 1] = cum[j]! + c;
    nz[j + 1] = nz[j]! + (c > 0 ? 1 : 0);
    xlx[j + 1] = xlx[j]! + c * l;
    logc[j + 1] = logc[j]! + l;
    r1[j + 1] = r1[j]! + inv;
    r2[j + 1] = r2[j]! + inv * inv;
    r3[j + 1] = r3[j]! + inv * inv * inv;
  }
  return { bins, cum, nz, xlx, logc, r1, r2, r3, total: cum[H]! };
}

/** First source bin of group k when i bins are merged into `levels` groups: ceil(k * i / levels). */
function groupStart(k: number, i: number, levels: number): number {
  return Math.floor((k * i + levels - 1) / levels);
}

/**
 * KL(P || Q) of candidate i without smoothing, from prefix sums:
 * KL = (1/N) sum p log p + log(S / N) - (1/N) sum p log q, with p, q in counts (N = total,
 * S = kept counts), q = group total / non-zero bins of the group on non-zero bins.
 */
function plainKl(pre: Prefix, i: number, levels: number): number {
  const { bins, cum, nz, xlx, total } = pre;
  const S = cum[i]!;
  if (!(S > 0)) return Number.POSITIVE_INFINITY;
  const out = total - S;
  const last = bins[i - 1]!;
  if (out > 0 && last === 0) return Number.POSITIVE_INFINITY;
  const pLast = last + out;
  const sumPlogP = xlx[i - 1]! + (pLast > 0 ? pLast * Math.log(pLast) : 0);
  let sumPlogQ = 0;
  let lastQ = 0;
  for (let k = 0; k < levels; k++) {
    const a = groupStart(k, i, levels);
    const b = groupStart(k + 1, i, levels);
    if (b <= a) continue;
    const n = nz[b]! - nz[a]!;
    if (n === 0) continue;
    const G = cum[b]! - cum[a]!;
    const logQ = Math.log(G / n);
    sumPlogQ += G * logQ;
    if (b === i) lastQ = logQ;
  }
  if (out > 0) sumPlogQ += out * lastQ;
  return sumPlogP / total + Math.log(S / total) - sumPlogQ / total;
}

/** Prefix sums over the |x| bins (after `bins[0] = bins[1]`), shared by every candidate. */
interface Prefix {
  bins: Float64Array;
  /** Sum of counts of bins [0, j). */
  cum: Float64Array;
  /** Number of non-zero bins in [0, j). */
  nz: Int32Array;
  /** Sums over the non-zero bins of c log c, log c, 1/c, 1/c^2, 1/c^3. */
  xlx: Float64Array;
  logc: Float64Array;
  r1: Float64Array;
  r2: Float64Array;
  r3: Float64Array;
  total: number;
}

/** Largest smoothing shift for which the series of `(c - e) log(c - e)` is used (see below). */
const SERIES_MAX_SHIFT = 1e-3;

/** Series of (c - e) log(c - e) for c >= 1, |e| <= 1e-3: remainder below e^5 / (20 c^4). */
function shiftedXlogX(c: number, e: number): number {
  const l = Math.log(c);
  return (
    c * l - e * (l + 1) + (e * e) / (2 * c) + (e * e * e) / (6 * c * c) + e ** 4 / (12 * c ** 3)
  );
}

/**
 * KL(P || Q) of candidate i with `smooth_distribution(eps)` applied to P and Q (as counts).
 * Zero entries become eps in both P and Q (they coincide, except P's last bin when outliers were
 * folded into an empty one), so they add eps log eps - eps log eps = 0; non-zero entries are
 * shifted by eps1 = eps * zeros / nonzeros. The sum of (p - eps1) log(p - eps1) over the kept
 * non-zero bins comes from prefix sums of its Taylor series in eps1 (exact to ~1e-16 per bin for
 * eps1 <= 1e-3, which the default eps = 1e-4 gives unless empty bins outnumber non-empty ones
 * tenfold); larger shifts are summed bin by bin.
 */
function smoothedKl(pre: Prefix, i: number, levels: number, eps: number): number {
  const { bins, cum, nz, total } = pre;
  const S = cum[i]!;
  if (!(S > 0)) return Number.POSITIVE_INFINITY;
  const out = total - S;
  const zerosQ = i - nz[i]!;
  const last = bins[i - 1]!;
  const lastFolded = last === 0 && out > 0;
  const zerosP = zerosQ - (lastFolded ? 1 : 0);
  // No empty bin: smoothing is the identity, same value (same arithmetic) as plain KL.
  if (zerosP === 0 && zerosQ === 0) return plainKl(pre, i, levels);
  const eP = (eps * zerosP) / (i - zerosP);
  const eQ = (eps * zerosQ) / (i - zerosQ);
  const logEps = Math.log(eps);
  let sumP = 0; // sum p'' log p''
  let sumQ = 0; // sum p'' log q''
  let lastLogQ = logEps;
  for (let k = 0; k < levels; k++) {
    const a = groupStart(k, i, levels);
    const b = groupStart(k + 1, i, levels);
    if (b <= a) continue;
    const n = nz[b]! - nz[a]!;
    if (n === 0) continue;
    const qs = (cum[b]! - cum[a]!) / n - eQ;
    if (!(qs > 0)) return Number.POSITIVE_INFINITY; // ORT asserts every entry > 0
    const logQ = Math.log(qs);
    sumQ += (cum[b]! - cum[a]! - n * eP) * logQ;
    if (b === i && last > 0) lastLogQ = logQ;
  }
  if (eP <= SERIES_MAX_SHIFT) {
    sumP =
      pre.xlx[i]! -
      eP * (pre.logc[i]! + nz[i]!) +
      ((eP * eP) / 2) * pre.r1[i]! +
      ((eP * eP * eP) / 6) * pre.r2[i]! +
      (eP ** 4 / 12) * pre.r3[i]!;
    if (last > 0 && out > 0) sumP -= shiftedXlogX(last, eP);
  } else {
    const upto = last > 0 && out > 0 ? i - 1 : i;
    for (let j = 0; j < upto; j++) {
      const c = bins[j]!;
      if (c === 0) continue;
      if (!(c - eP > 0)) return Number.POSITIVE_INFINITY;
      sumP += (c - eP) * Math.log(c - eP);
    }
  }
  if (out > 0) {
    // The last kept bin of P carries the outliers: exact term.
    const p = last + out - eP;
    if (!(p > 0)) return Number.POSITIVE_INFINITY;
    sumP += p * Math.log(p);
    sumQ += (lastFolded ? p : out) * lastLogQ;
  }
  return sumP / total + Math.log(S / total) - sumQ / total;
}

/** Options of {@link klRange}. */
export interface KlRangeOptions {
  scheme?: TensorScheme;
  /** Overrides the quantized bins (default from the scheme). */
  levels?: number;
  /** Smoothing eps (0: plain KL). */
  smoothing?: number;
}

/**
 * KL clip range of a tensor: the threshold T from {@link klSearch} on the |x| histogram, as
 * `[max(min, -T), min(max, T)]` widened to include 0. For a one-sided tensor (post-ReLU) the
 * negative half of the signed histogram is empty, so the folded histogram is the positive half.
 */
export function klRange(stats: TensorStats, options: KlRangeOptions = {}): ClipRange {
  const { range, histogram } = stats;
  const total = histogram.counts.reduce((a, b) => a + b, 0);
  if (total === 0 || !(histogram.limit > 0))
    return { lo: Math.min(0, range.min), hi: Math.max(0, range.max) };
  const scheme = options.scheme ?? DEFAULT_SCHEME;
  const oneSided = range.min >= 0 || range.max <= 0;
  const levels = options.levels ?? klLevels(scheme, oneSided);
  const abs = foldAbs(histogram);
  const { bins } = klSearch(abs, { levels, smoothing: options.smoothing ?? 0 });
  const T = (bins * histogram.limit) / abs.length;
  return { lo: Math.min(0, Math.max(range.min, -T)), hi: Math.max(0, Math.min(range.max, T)) };
}
