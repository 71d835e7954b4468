/**
 * Predicts the INT8 metric loss at calibration time, before any labelled evaluation, from the
 * unlabelled calibration split alone: the FP32 model and the quantized (emulation) model run
 * over up to {@link DEFAULT_ESTIMATE_SAMPLES} calibration samples ({@link runPair}, shardable by
 * sample range, {@link mergePairs} concatenates), and a pseudo-label estimator turns their
 * disagreement into points of the task metric ({@link estimateLoss}). The only other input is
 * the FP32 model's published reference metric (task manifest), a property of the float model.
 *
 * Estimators (all "treat the FP32 model as the label source"):
 *
 * - Classifiers, top-1 (`accuracy`) and binary F1 (`f1`): SOFT pseudo-labels. The FP32 softmax
 *   with a temperature T is taken as the distribution of the unknown true label of each sample;
 *   T is fitted (bisection on log T) so that the expected metric of the FP32 predictions under
 *   those labels equals the published FP32 reference (for top-1: mean top-1 probability = a).
 *   The estimated loss is the expected metric of the FP32 predictions minus that of the INT8
 *   predictions, both under the same soft labels. For top-1 this is mean_i (p_i[fp32_i] -
 *   p_i[int8_i]): a flip away from a confident FP32 class costs nearly a full sample, a flip
 *   between two near-tied classes costs almost nothing (and may gain). It refines the naive
 *   `disagreement x (2a - 1)` (reported as `naiveLossPoints`), which assumes flips hit samples
 *   whose FP32 accuracy is the average `a` and that a flip from a wrong FP32 answer is always
 *   right, whereas flips concentrate on low-margin samples, where both assumptions fail.
 *   F1 uses expected TP/FP/FN counts (ratio of expectations).
 * - Detection (`map`): HARD pseudo-labels. FP32 detections with score >= `pseudoScore` (0.3)
 *   are the ground truth; the task's mAP50 of the INT8 detections against them (the FP32 ones
 *   score 1 by construction whenever they match themselves) measures the relative damage, mapped
 *   onto the metric as loss = (pseudo mAP(FP32) - pseudo mAP(INT8)) x reference mAP. This is a
 *   cruder, upper-bound-leaning estimate: it also counts changes among detections that were
 *   wrong anyway.
 *
 * - Models without labels or a published metric (user models, `cann-quant calibrate --model`):
 *   `agreement`: predictions are class indices, the loss is the top-1 disagreement between the
 *   FP32 and the INT8 model in points (an upper bound on the top-1 accuracy change: each flip
 *   moves the accuracy by at most one sample); `relative-error`: predictions are each sample's
 *   output values, the loss is the relative RMS error of the INT8 outputs, 100 x sqrt(sum
 *   (fp32 - int8)^2 / sum fp32^2) (SQNR -20 log10 of it / 100), reported with `sqnrDb`.
 *
 * Sampling noise: the measured loss itself is a difference on a finite evaluation split (1,000
 * samples: one sample = 0.1 point), so an estimate cannot be closer to it than that noise.
 */
import { type BatchSource, DEFAULT_BATCH_SIZE } from '../evaluate/predict.ts';
import { type Detection, detectionMetrics } from '../metrics/detection.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { createSession, type ModelSession } from '../runtime/index.ts';
import { concatFloat32, type TensorData } from '../tensor/index.ts';

/** Calibration samples the estimate uses by default (at most; fewer when the split is smaller). */
export const DEFAULT_ESTIMATE_SAMPLES = 2_000;

/** Predictions of the FP32 and the INT8 model over samples [start, start + count). */
export interface PairedPredictions<P> {
  start: number;
  count: number;
  fp32: P[];
  int8: P[];
  /** FP32 logits [count, classes] of the first output, when it is 2-D (classifiers). */
  fp32Logits?: Float32Array;
  classes?: number;
}

/** Options of {@link runPair}. */
export interface PairOptions {
  start?: number;
  /** Default: min(split size, start + DEFAULT_ESTIMATE_SAMPLES). */
  end?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Runs the FP32 and INT8 models over a range of the calibration split (both sessions open). */
export async function runPair<P>(
  fp32: ModelProto,
  int8: ModelProto,
  source: BatchSource,
  predict: (outputs: Record<string, TensorData>, batchSize: number) => P[],
  options: PairOptions = {},
): Promise<PairedPredictions<P>> {
  const start = options.start ?? 0;
  const end = options.end ?? Math.min(source.size, start + DEFAULT_ESTIMATE_SAMPLES);
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end))
    throw new RangeError(`runPair: bad range [${start}, ${end})`);
  if (end > source.size) throw new RangeError(`runPair: end ${end} beyond split ${source.size}`);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const sessions: ModelSession[] = [];
  const out: PairedPredictions<P> = { start, count: end - start, fp32: [], int8: [] };
  const logits: Float32Array[] = [];
  try {
    sessions.push(await createSession(encodeModel(fp32)));
    sessions.push(await createSession(encodeModel(int8)));
    const first = sessions[0]!.outputNames[0]!;
    for (let s = start; s < end; s += batchSize) {
      const e = Math.min(end, s + batchSize);
      const feeds = await source.batch(s, e);
      const a = await sessions[0]!.run(feeds);
      const b = await sessions[1]!.run(feeds);
      out.fp32.push(...predict(a, e - s));
      out.int8.push(...predict(b, e - s));
      const l = a[first];
      if (l?.type === 'float32' && l.dims.length === 2) {
        out.classes = l.dims[1]!;
        logits.push((l.data as Float32Array).slice());
      }
      options.onProgress?.(e - start, end - start);
    }
  } finally {
    for (const s of sessions) await s.release();
  }
  if (out.classes !== undefined) out.fp32Logits = concatFloat32(logits);
  return out;
}

/** Concatenates shards in index order (ranges must tile). */
export function mergePairs<P>(parts: readonly PairedPredictions<P>[]): PairedPredictions<P> {
  const sorted = [...parts].sort((a, b) => a.start - b.start);
  const first = sorted[0];
  if (!first) throw new RangeError('mergePairs: nothing to merge');
  let next = first.start;
  for (const p of sorted) {
    if (p.start !== next) throw new RangeError(`mergePairs: gap or overlap at sample ${next}`);
    if (p.classes !== first.classes) throw new RangeError('mergePairs: shards differ in classes');
    next += p.count;
  }
  return {
    start: first.start,
    count: next - first.start,
    fp32: sorted.flatMap((p) => p.fp32),
    int8: sorted.flatMap((p) => p.int8),
    ...(first.classes !== undefined
      ? { classes: first.classes, fp32Logits: concatFloat32(sorted.map((p) => p.fp32Logits!)) }
      : {}),
  };
}

/** How the task metric is estimated. */
export type EstimatorKind = 'accuracy' | 'f1' | 'map' | 'agreement' | 'relative-error';

/** Options of {@link estimateLoss}. */
export interface EstimateOptions {
  kind: EstimatorKind;
  /** Published FP32 value of the task's primary metric, as a fraction (e.g. 0.885). */
  reference: number;
  /** `f1`: the positive class (default 1). */
  positive?: number;
  /** `map`: minimum FP32 score of a detection to be a pseudo ground truth (default 0.3). */
  pseudoScore?: number;
}

/** The estimate. */
export interface LossEstimate {
  kind: EstimatorKind;
  samples: number;
  /** Estimated loss in points of the metric (fraction x 100); negative = INT8 expected better. */
  lossPoints: number;
  /**
   * Fraction of samples whose INT8 prediction differs from the FP32 one (detection: whose
   * multiset of classes detected with score >= pseudoScore differs).
   */
  disagreement: number;
  /** `accuracy`: disagreement x (2a - 1) x 100, for comparison. */
  naiveLossPoints?: number;
  /** Soft-label temperature fitted to the reference (classifiers). */
  temperature?: number;
  /** `map`: pseudo-label mAP50 of the FP32 and INT8 detections. */
  pseudo?: { fp32: number; int8: number };
  /** `relative-error`: SQNR of the INT8 outputs against the FP32 ones over every sample (dB). */
  sqnrDb?: number;
}

/** `relative-error` estimate from per-sample output values (see the module). */
function relativeError(
  fp32: readonly ArrayLike<number>[],
  int8: readonly ArrayLike<number>[],
): LossEstimate {
  let signal = 0;
  let noise = 0;
  let differ = 0;
  for (let i = 0; i < fp32.length; i++) {
    const a = fp32[i]!;
    const b = int8[i]!;
    if (a.length !== b.length)
      throw new RangeError(`estimateLoss: sample ${i} has ${a.length} vs ${b.length} values`);
    let d2 = 0;
    for (let j = 0; j < a.length; j++) {
      signal += a[j]! * a[j]!;
      d2 += (a[j]! - b[j]!) ** 2;
    }
    noise += d2;
    if (d2 > 0) differ++;
  }
  const rel = signal === 0 ? (noise === 0 ? 0 : 1) : Math.sqrt(noise / signal);
  return {
    kind: 'relative-error',
    samples: fp32.length,
    lossPoints: points(rel),
    disagreement: fp32.length === 0 ? 0 : differ / fp32.length,
    sqnrDb:
      noise === 0 ? 200 : signal === 0 ? -200 : Math.min(200, 10 * Math.log10(signal / noise)),
  };
}

function softmaxRows(logits: Float32Array, n: number, c: number, t: number): Float64Array {
  const p = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < c; j++) m = Math.max(m, logits[i * c + j]!);
    let s = 0;
    for (let j = 0; j < c; j++) {
      const e = Math.exp((logits[i * c + j]! - m) / t);
      p[i * c + j] = e;
      s += e;
    }
    for (let j = 0; j < c; j++) p[i * c + j]! /= s;
  }
  return p;
}

/** Expected top-1 accuracy of `preds` when label i ~ p[i, :]. */
export function expectedAccuracy(p: Float64Array, preds: readonly number[], c: number): number {
  let s = 0;
  for (let i = 0; i < preds.length; i++) s += p[i * c + preds[i]!]!;
  return preds.length === 0 ? 0 : s / preds.length;
}

/** Expected F1 of the positive class (ratio of expected counts) when label i ~ p[i, :]. */
export function expectedF1(
  p: Float64Array,
  preds: readonly number[],
  c: number,
  positive = 1,
): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < preds.length; i++) {
    const q = p[i * c + positive]!;
    if (preds[i] === positive) {
      tp += q;
      fp += 1 - q;
    } else fn += q;
  }
  const d = 2 * tp + fp + fn;
  return d === 0 ? 0 : (2 * tp) / d;
}

/**
 * Fits T so that metric(softmax(logits / T)) = target; the metric is non-increasing in T for the
 * FP32 argmax (sharper labels agree more with the argmax). Bisection on log T in [1e-3, 1e3].
 */
function fitTemperature(metric: (t: number) => number, target: number): number {
  let lo = Math.log(1e-3);
  let hi = Math.log(1e3);
  if (metric(Math.exp(lo)) <= target) return Math.exp(lo);
  if (metric(Math.exp(hi)) >= target) return Math.exp(hi);
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2;
    if (metric(Math.exp(mid)) > target) lo = mid;
    else hi = mid;
  }
  return Math.exp((lo + hi) / 2);
}

const points = (x: number) => Math.round(x * 100 * 1e9) / 1e9;

/** Estimates the INT8 loss of the task metric from paired FP32/INT8 predictions (see the module). */
export function estimateLoss<P>(
  pair: PairedPredictions<P>,
  options: EstimateOptions,
): LossEstimate {
  const n = pair.count;
  if (pair.fp32.length !== n || pair.int8.length !== n)
    throw new RangeError('estimateLoss: prediction counts differ from the sample count');
  if (options.kind === 'relative-error')
    return relativeError(
      pair.fp32 as unknown as ArrayLike<number>[],
      pair.int8 as unknown as ArrayLike<number>[],
    );
  const a = options.reference;
  const tau = options.pseudoScore ?? 0.3;
  // Detections: samples whose confident (score >= tau) classes differ; else unequal predictions.
  const key = (p: unknown): string =>
    options.kind === 'map'
      ? (p as Detection[])
          .filter((x) => x.score >= tau)
          .map((x) => x.cls)
          .sort((x, y) => x - y)
          .join(',')
      : JSON.stringify(p);
  let differ = 0;
  for (let i = 0; i < n; i++) if (key(pair.fp32[i]) !== key(pair.int8[i])) differ++;
  const disagreement = n === 0 ? 0 : differ / n;
  if (options.kind === 'agreement')
    return { kind: 'agreement', samples: n, lossPoints: points(disagreement), disagreement };
  if (options.kind === 'map') {
    const fp32 = pair.fp32 as unknown as Detection[][];
    const int8 = pair.int8 as unknown as Detection[][];
    const truths = fp32.map((d) => d.filter((x) => x.score >= tau));
    const pf = detectionMetrics(fp32, truths).mAP50 ?? 0;
    const pi = detectionMetrics(int8, truths).mAP50 ?? 0;
    return {
      kind: 'map',
      samples: n,
      lossPoints: points((pf - pi) * a),
      disagreement,
      pseudo: { fp32: pf, int8: pi },
    };
  }
  const c = pair.classes;
  const logits = pair.fp32Logits;
  if (c === undefined || !logits)
    throw new RangeError('estimateLoss: classifier estimators need the FP32 logits');
  const fp32 = pair.fp32 as unknown as number[];
  const int8 = pair.int8 as unknown as number[];
  const metric =
    options.kind === 'accuracy'
      ? (p: Float64Array, preds: readonly number[]) => expectedAccuracy(p, preds, c)
      : (p: Float64Array, preds: readonly number[]) =>
          expectedF1(p, preds, c, options.positive ?? 1);
  const t = fitTemperature((t) => metric(softmaxRows(logits, n, c, t), fp32), a);
  const p = softmaxRows(logits, n, c, t);
  return {
    kind: options.kind,
    samples: n,
    lossPoints: points(metric(p, fp32) - metric(p, int8)),
    disagreement,
    ...(options.kind === 'accuracy' ? { naiveLossPoints: points(disagreement * (2 * a - 1)) } : {}),
    temperature: t,
  };
}

/**
 * The estimator for a task's primary metric name (top1 -> accuracy, f1* -> f1, mAP* -> map;
 * user models: agreement, relative-error).
 */
export function estimatorFor(metric: string): EstimatorKind {
  if (metric === 'agreement' || metric === 'relative-error') return metric;
  if (/^top1$|^acc/i.test(metric)) return 'accuracy';
  if (/^f1/i.test(metric)) return 'f1';
  if (/^map/i.test(metric)) return 'map';
  throw new RangeError(`estimatorFor: no loss estimator for metric '${metric}'`);
}

/** One phrase saying what an estimate measures, for reports. */
export function describeEstimate(e: LossEstimate): string {
  switch (e.kind) {
    case 'accuracy':
      return 'top-1, FP32 soft pseudo-labels';
    case 'f1':
      return 'F1, FP32 soft pseudo-labels';
    case 'map':
      return 'mAP50, FP32 detections as pseudo ground truth';
    case 'agreement':
      return 'top-1 disagreement with FP32';
    case 'relative-error':
      return `relative RMS output error, SQNR ${(e.sqnrDb ?? 0).toFixed(1)} dB`;
  }
}
