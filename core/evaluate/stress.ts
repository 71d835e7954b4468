/**
 * Robustness stress tests (pillar 4: "an accuracy guard, robustness stress tests"): the FP32 and
 * the INT8 model evaluated again on perturbed copies of the evaluation split. INT8 has a failure
 * mode FP32 does not: inputs that push activations past the ranges calibrated on clean data are
 * clipped (saturated) at every quantized layer. A recipe whose loss is small on clean data can
 * lose much more on noisy, brighter or higher-contrast inputs, and the clean evaluation never
 * shows it. The stress test shows it: the INT8 loss against FP32 under each perturbation, beside
 * the clean loss.
 *
 * Perturbations (deterministic: each sample's randomness is seeded by the seed and the sample's
 * index in the split, so a sample is perturbed the same way whatever the batches):
 * - float inputs (images, normalised): Gaussian noise of `level` x the sample's own standard
 *   deviation; contrast (deviations from the sample's mean scaled by `level`); brightness (the
 *   sample shifted by `level` x its standard deviation). The results are clamped to the clean
 *   split's range of values ({@link valueRange}: for normalised images, the normalised pixel
 *   range), as a sensor saturates: no perturbation makes a pixel darker than black or brighter
 *   than white. Without the clamp, contrast x1.5 drove fmnist-resnet's FP32 accuracy from 91.1%
 *   to 31.7% on pixels no camera gives, while the INT8 model, whose input quantizer clamps to the
 *   calibrated range, kept 89.8%: a comparison of input handling, not of quantization;
 * - integer inputs (token ids, the zoo's convention: position 0 a class token, id 0 padding, both
 *   left in place): adjacent tokens swapped with probability `level` (word order), or tokens
 *   dropped with probability `level` (the rest moved up, padding appended).
 */
import { seededPrng } from '../random.ts';
import { type TensorData, tensor } from '../tensor/index.ts';
import type { BatchSource } from './predict.ts';

export type StressKind = 'noise' | 'contrast' | 'brightness' | 'token-swap' | 'token-drop';

export interface Stress {
  /** Stable name, e.g. `noise-0.3`. */
  id: string;
  kind: StressKind;
  level: number;
  /** What it does, for reports. */
  label: string;
}

const LABELS: Record<StressKind, (level: number) => string> = {
  noise: (l) => `Gaussian noise, sigma ${l} x the sample's std`,
  contrast: (l) => `contrast x${l} around the sample's mean`,
  brightness: (l) => `brightness +${l} x the sample's std`,
  'token-swap': (l) => `adjacent tokens swapped with probability ${l}`,
  'token-drop': (l) => `tokens dropped with probability ${l}`,
};

export function stress(kind: StressKind, level: number): Stress {
  if (!Number.isFinite(level) || level < 0)
    throw new RangeError(`stress ${kind}: level must be a finite number >= 0, got ${level}`);
  if ((kind === 'token-swap' || kind === 'token-drop') && level > 1)
    throw new RangeError(`stress ${kind}: level is a probability (0..1), got ${level}`);
  return { id: `${kind}-${level}`, kind, level, label: LABELS[kind](level) };
}

/** The default set for a model's inputs: float (images) or integer (token ids). */
export function defaultStresses(inputs: Record<string, TensorData>): Stress[] {
  const types = new Set(Object.values(inputs).map((t) => t.type));
  if (types.size === 1 && types.has('float32'))
    return [
      stress('noise', 0.1),
      stress('noise', 0.3),
      stress('contrast', 1.5),
      stress('brightness', 0.5),
    ];
  if ([...types].every((t) => t === 'int64' || t === 'int32'))
    return [stress('token-swap', 0.1), stress('token-drop', 0.1), stress('token-drop', 0.3)];
  throw new TypeError(
    `stress: no perturbations for inputs of types ${[...types].join(', ')} (float32 images or integer token ids)`,
  );
}

/** Smallest and largest value of each float input over the whole split (batches of `batch`). */
export async function valueRange(
  source: BatchSource,
  batch = 500,
): Promise<Record<string, [number, number]>> {
  const range: Record<string, [number, number]> = {};
  for (let start = 0; start < source.size; start += batch) {
    const b = await source.batch(start, Math.min(source.size, start + batch));
    for (const [name, t] of Object.entries(b)) {
      if (t.type !== 'float32') continue;
      const r = range[name] ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      range[name] = r;
      for (const v of t.data as Float32Array) {
        if (v < r[0]) r[0] = v;
        if (v > r[1]) r[1] = v;
      }
    }
  }
  return range;
}

/**
 * The split with every batch perturbed by `s` (see the module comment); float inputs clamped to
 * `range[input]` when given (the caller's {@link valueRange} of the clean split).
 */
export function stressedSource(
  source: BatchSource,
  s: Stress,
  seed = 0,
  range: Record<string, [number, number]> = {},
): BatchSource {
  return {
    size: source.size,
    async batch(start, end) {
      const clean = await source.batch(start, end);
      const out: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(clean))
        out[name] = perturb(t, s, seed, start, range[name]);
      return out;
    },
  };
}

/** A per-sample generator: the same numbers for sample `index` whatever the batch. */
function sampleRng(seed: number, index: number): () => number {
  // mix the two so that neighbouring samples and seeds get unrelated streams
  return seededPrng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

/** Standard normal variates (Box-Muller, both values used). */
function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const u = 1 - rand(); // (0, 1]
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * rand();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

/**
 * `t` (a batch: first dimension = samples, the first of them sample `first`) perturbed by `s`,
 * float values clamped to `range` when given.
 */
export function perturb(
  t: TensorData,
  s: Stress,
  seed: number,
  first: number,
  range?: readonly [number, number],
): TensorData {
  const n = t.dims[0] ?? 0;
  const per = n === 0 ? 0 : t.data.length / n;
  if (s.kind === 'token-swap' || s.kind === 'token-drop') {
    if (t.type !== 'int64' && t.type !== 'int32')
      throw new TypeError(`stress ${s.id}: wants integer token ids, got ${t.type}`);
    const src = t.data as BigInt64Array | Int32Array;
    const data = src.slice();
    for (let i = 0; i < n; i++) {
      const row = data.subarray(i * per, (i + 1) * per) as BigInt64Array | Int32Array;
      const rand = sampleRng(seed, first + i);
      if (s.kind === 'token-swap') swapTokens(row, s.level, rand);
      else dropTokens(row, s.level, rand);
    }
    return tensor(t.type, t.dims, data as never);
  }
  if (t.type !== 'float32')
    throw new TypeError(`stress ${s.id}: wants float32 inputs, got ${t.type}`);
  const src = t.data as Float32Array;
  const data = new Float32Array(src.length);
  for (let i = 0; i < n; i++) {
    const x = src.subarray(i * per, (i + 1) * per);
    const y = data.subarray(i * per, (i + 1) * per);
    let mean = 0;
    for (const v of x) mean += v;
    mean /= per;
    let sq = 0;
    for (const v of x) sq += (v - mean) ** 2;
    const std = Math.sqrt(sq / per);
    if (s.kind === 'contrast') for (let j = 0; j < per; j++) y[j] = mean + s.level * (x[j]! - mean);
    else if (s.kind === 'brightness') for (let j = 0; j < per; j++) y[j] = x[j]! + s.level * std;
    else {
      const g = gaussian(sampleRng(seed, first + i));
      for (let j = 0; j < per; j++) y[j] = x[j]! + s.level * std * g();
    }
  }
  if (range)
    for (let j = 0; j < data.length; j++)
      data[j] = Math.min(range[1], Math.max(range[0], data[j]!));
  return tensor('float32', t.dims, data);
}

/** The tokens of a row that may move: after the class token, up to the first padding (0). */
function tokenEnd(row: BigInt64Array | Int32Array): number {
  let end = 1;
  while (end < row.length && Number(row[end]) !== 0) end++;
  return end;
}

/** Left to right, each adjacent pair (j, j+1) of movable tokens swapped with probability p; a swapped pair is skipped past. */
function swapTokens(row: BigInt64Array | Int32Array, p: number, rand: () => number): void {
  const end = tokenEnd(row);
  for (let j = 1; j + 1 < end; j++) {
    if (rand() < p) {
      const a = row[j]!;
      row[j] = row[j + 1]!;
      row[j + 1] = a as never;
      j++;
    }
  }
}

/** Each movable token dropped with probability p; the kept ones move up, padding fills the end. */
function dropTokens(row: BigInt64Array | Int32Array, p: number, rand: () => number): void {
  const end = tokenEnd(row);
  let w = 1;
  for (let j = 1; j < end; j++) if (rand() >= p) row[w++] = row[j]!;
  for (let j = w; j < end; j++) row[j] = (typeof row[j] === 'bigint' ? 0n : 0) as never;
}

/** One stress's outcome, in points of the task's primary metric. */
export interface StressRow {
  id: string;
  label: string;
  fp32: number;
  int8: number;
  /** FP32 minus INT8 under this stress (points). */
  loss_points: number;
  /** `loss_points` minus the clean loss: what the stress adds to quantization's cost. */
  extra_loss_points: number;
  /** `extra_loss_points` within the threshold. */
  pass: boolean;
  /**
   * Standard error of `extra_loss_points` over the evaluation samples (delete-a-group
   * jackknife, {@link extraLossErrors}), when the per-sample predictions were at hand.
   */
  extra_se_points?: number;
  /** The extra loss is above 0 beyond sampling noise: extra - 1.96 se > 0. */
  significant?: boolean;
}

export interface StressReport {
  metric: string;
  /** The extra loss a stress may add before it is flagged (points). */
  threshold_points: number;
  clean: { fp32: number; int8: number; loss_points: number };
  rows: StressRow[];
  pass: boolean;
}

const points = (x: number) => Math.round(x * 100 * 1e6) / 1e6;

/** Groups of the delete-a-group jackknife in {@link extraLossErrors}. */
export const JACKKNIFE_GROUPS = 10;

/** Both models' per-sample predictions on one copy of the evaluation split. */
export interface PairedPredictions<P> {
  fp32: readonly P[];
  int8: readonly P[];
}

/** The labels of the given samples, in the container the task's labels come in. */
function pickLabels<L>(labels: L, indices: readonly number[]): L {
  if (Array.isArray(labels)) return indices.map((i) => labels[i]) as L;
  if (ArrayBuffer.isView(labels) && !(labels instanceof DataView)) {
    const typed = labels as unknown as { [i: number]: number; constructor: new (n: number) => L };
    const out = new typed.constructor(indices.length) as unknown as { [i: number]: number };
    indices.forEach((i, k) => {
      out[k] = typed[i]!;
    });
    return out as L;
  }
  throw new TypeError('stress: labels are neither an array nor a typed array');
}

/**
 * Standard error (points) of each stress's extra loss, (FP32 - INT8) stressed minus (FP32 - INT8)
 * clean, over the evaluation samples: a delete-a-group jackknife (Efron and Tibshirani, "An
 * Introduction to the Bootstrap", section 11.5). Sample i belongs to group i mod
 * {@link JACKKNIFE_GROUPS}; each group is left out once and the statistic recomputed on the rest
 * with the task's own metric (mAP is not a mean over samples, so no per-sample shortcut), all four
 * prediction sets on the same samples, which keeps the comparison paired;
 * se^2 = (G - 1) / G * sum_g (theta_g - mean theta)^2. Deterministic; costs (2 + 2 x stresses)
 * x G metric evaluations.
 */
export function extraLossErrors<L, P>(
  score: (predictions: P[], labels: L) => number,
  labels: L,
  clean: PairedPredictions<P>,
  stressed: readonly PairedPredictions<P>[],
): number[] {
  const n = clean.fp32.length;
  for (const set of [clean, ...stressed])
    if (set.fp32.length !== n || set.int8.length !== n)
      throw new RangeError('stress: every prediction set must cover the same samples');
  const G = Math.min(JACKKNIFE_GROUPS, n);
  if (G < 2) return stressed.map(() => Number.NaN);
  const thetas = stressed.map(() => new Float64Array(G));
  for (let g = 0; g < G; g++) {
    const keep: number[] = [];
    for (let i = 0; i < n; i++) if (i % G !== g) keep.push(i);
    const sub = pickLabels(labels, keep);
    const metric = (preds: readonly P[]) =>
      score(
        keep.map((i) => preds[i]!),
        sub,
      );
    const cleanLoss = metric(clean.fp32) - metric(clean.int8);
    stressed.forEach((s, k) => {
      thetas[k]![g] = 100 * (metric(s.fp32) - metric(s.int8) - cleanLoss);
    });
  }
  return thetas.map((t) => {
    const mean = t.reduce((a, b) => a + b, 0) / G;
    const ss = t.reduce((a, b) => a + (b - mean) ** 2, 0);
    return Math.sqrt(((G - 1) / G) * ss);
  });
}

/**
 * The report from the clean and stressed metric values (fractions, e.g. 0.885), with each extra
 * loss's standard error when `errors` (points, {@link extraLossErrors}) is given.
 */
export function stressReport(
  metric: string,
  clean: { fp32: number; int8: number },
  stressed: readonly { stress: Stress; fp32: number; int8: number }[],
  thresholdPoints: number,
  errors?: readonly number[],
): StressReport {
  const cleanLoss = points(clean.fp32 - clean.int8);
  const rows = stressed.map(({ stress: s, fp32, int8 }, k) => {
    const loss = points(fp32 - int8);
    const extra = Math.round((loss - cleanLoss) * 1e6) / 1e6;
    const se = errors?.[k];
    return {
      id: s.id,
      label: s.label,
      fp32,
      int8,
      loss_points: loss,
      extra_loss_points: extra,
      pass: extra <= thresholdPoints,
      ...(se !== undefined && Number.isFinite(se)
        ? {
            extra_se_points: Math.round(se * 1e6) / 1e6,
            significant: extra - 1.96 * se > 0,
          }
        : {}),
    };
  });
  return {
    metric,
    threshold_points: thresholdPoints,
    clean: { fp32: clean.fp32, int8: clean.int8, loss_points: cleanLoss },
    rows,
    pass: rows.every((r) => r.pass),
  };
}

/**
 * The report from per-sample predictions: the clean and each stressed set scored with the task's
 * primary `metric`, and each extra loss's standard error ({@link extraLossErrors}). What the CLI's
 * `validate --stress` and the pipeline's stress phase both reduce to.
 */
export function stressReportOf<L, P>(
  metricName: string,
  metric: (predictions: P[], labels: L) => number,
  labels: L,
  clean: PairedPredictions<P>,
  stresses: readonly Stress[],
  stressed: readonly PairedPredictions<P>[],
  thresholdPoints: number,
): StressReport {
  const score = (p: readonly P[]) => metric(p as P[], labels);
  return stressReport(
    metricName,
    { fp32: score(clean.fp32), int8: score(clean.int8) },
    stresses.map((s, k) => ({
      stress: s,
      fp32: score(stressed[k]!.fp32),
      int8: score(stressed[k]!.int8),
    })),
    thresholdPoints,
    extraLossErrors(metric, labels, clean, stressed),
  );
}
