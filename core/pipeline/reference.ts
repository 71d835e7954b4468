/**
 * The FP32 reference pass: every execution of the FP32 model a run needs, done once.
 *
 * Three phases of a run read the FP32 model's outputs: the coverage sampler describes every
 * calibration sample, the loss estimate compares FP32 with INT8 predictions on the first
 * {@link DEFAULT_ESTIMATE_SAMPLES} calibration samples, and validation scores FP32 and INT8 on
 * the evaluation split. None of these FP32 outputs depends on the recipe, so they form one
 * phase, `reference`, whose shards are batch-aligned ranges of the two splits. Its outputs
 * depend only on the model bytes and the data: an executor may serve them from a cache keyed by
 * content (`shared` phases, see {@link ShardExecutor}), which is how repeated scores of one task
 * skip the FP32 work. The batches are the ones the separate phases ran before (multiples of
 * {@link DEFAULT_BATCH_SIZE} from sample 0), so every FP32 output is the same bytes.
 */
import { DEFAULT_ESTIMATE_SAMPLES } from '../calibrate/estimate.ts';
import {
  mergeDescriptions,
  SampleDescriber,
  type SampleDescriptions,
  samplerPool,
} from '../calibrate/sampler.ts';
import { type BatchSource, DEFAULT_BATCH_SIZE } from '../evaluate/predict.ts';
import { createSession } from '../runtime/index.ts';
import { concatFloat32, type TensorData } from '../tensor/index.ts';
import { SHARD_OUTPUT_LIMIT } from './plan.ts';

/** One shard of the reference pass: a batch-aligned range of one split. */
export interface ReferenceShard {
  split: 'calibration' | 'evaluation';
  start: number;
  end: number;
  /** Describe the range's samples below `describeEnd` for the coverage sampler. */
  describe: boolean;
  /** End of the sampler's pool (calibration samples [0, describeEnd) are described). */
  describeEnd: number;
  /** Keep the FP32 predictions (and logits) of the samples below this index. */
  keep: number;
}

/** What a reference shard produced. */
export interface ReferenceOutput<P = unknown> {
  split: ReferenceShard['split'];
  start: number;
  end: number;
  descriptions?: SampleDescriptions;
  /** FP32 predictions of samples [start, min(end, keep)). */
  predictions: P[];
  /** FP32 first-output rows of the same samples when it is [N, C] float32 logits. */
  logits?: Float32Array;
  classes?: number;
}

/** The merged reference pass. */
export interface Reference<P = unknown> {
  /** Coverage-sampler descriptions of the sampler's pool, calibration samples [0, pool). */
  descriptions?: SampleDescriptions;
  /** FP32 predictions of calibration samples [0, estimateSamples). */
  calibration: { predictions: P[]; logits?: Float32Array; classes?: number };
  /** FP32 predictions of the whole evaluation split (when validating). */
  evaluation?: P[];
}

/**
 * Samples per reference range. The ranges depend on the split alone, never on a shard or worker
 * count, so a cached range (cli/shared-store.ts) serves every later run of the same model and
 * data: `calibrate` then `score`, `--workers 1` then the default. 500 FP32 images of
 * fmnist-resnet take about 2 s on one thread; its 15,000 make 30 ranges, which 2, 3, 5 or 6
 * workers share evenly (1,000-sample ranges left one worker of two a range behind: 2 s).
 */
export const REFERENCE_RANGE = 500;

/**
 * Bytes of sampler descriptions (and the predictions of the same samples) one described
 * reference range may carry: half a shard output, which leaves room for everything else.
 */
export const DESCRIPTION_BYTES = 512 * 1024;

/**
 * Bytes of per-sample predictions one range of samples may carry in its shard output: the
 * {@link SHARD_OUTPUT_LIMIT} less 64 KiB for the rest of the output (its ranges, logits of
 * a classifier's estimate samples: 10 floats a sample, 27 KiB for 500).
 */
export const PREDICTION_BYTES = SHARD_OUTPUT_LIMIT - 64 * 1024;

/**
 * Samples per range when each sample adds at most `bytes` to a shard output: `size`, or the most
 * whole batches whose bytes fit in `budget`; at least one batch (a model whose single prediction
 * passes the budget cannot be split finer than a batch).
 */
export function boundedRangeSize(bytes: number | undefined, size: number, budget: number): number {
  if (bytes === undefined || !(bytes > 0)) return size;
  const fit = Math.floor(budget / bytes / DEFAULT_BATCH_SIZE) * DEFAULT_BATCH_SIZE;
  return Math.max(DEFAULT_BATCH_SIZE, Math.min(size, fit));
}

/**
 * Samples per described calibration range: `size`, or fewer when the embeddings of `size`
 * samples (`floats` per sample, 4 bytes each, base64 in the shard output) and their predictions
 * (`predictionBytes` each at most) would pass {@link DESCRIPTION_BYTES}; a multiple of the batch
 * size, at least one batch. fmnist-detect describes each canvas by its FP32 heatmap (2,560
 * floats): 30 samples a range (440 KiB of output) instead of 500 (7.5 MiB). A classifier's 10
 * logits leave the 500.
 */
export function describedRangeSize(
  floats: number | undefined,
  size = REFERENCE_RANGE,
  predictionBytes = 0,
): number {
  if (floats === undefined || !(floats > 0)) return size;
  return boundedRangeSize(
    Math.ceil((floats * 4 * 4) / 3) + predictionBytes,
    size,
    DESCRIPTION_BYTES,
  );
}

/** [0, span) in consecutive ranges of `size` samples (the last one shorter). */
function fixedRanges(span: number, size: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let start = 0; start < span; start += size)
    out.push({ start, end: Math.min(span, start + size) });
  return out;
}

/**
 * Plans the reference shards: ranges of `rangeSize` samples (default {@link REFERENCE_RANGE}, a
 * multiple of the batch size) per split, described calibration ranges shorter when their
 * embeddings are large ({@link describedRangeSize}). The calibration ranges cover the estimate's
 * first samples and, when describing, the sampler's `pool` (default: the whole split).
 */
export function planReference(
  sizes: { calibration: number; evaluation: number },
  options: {
    describe: boolean;
    validate: boolean;
    pool?: number;
    rangeSize?: number;
    /** Embedding floats per sample (the FP32 model's first output), when known. */
    embeddingFloats?: number;
    /**
     * Bound of one prediction's bytes in a shard output (the task's `predictionBytes`): ranges
     * shorten so that their predictions stay within {@link PREDICTION_BYTES}.
     */
    predictionBytes?: number;
  },
): ReferenceShard[] {
  const size = options.rangeSize ?? REFERENCE_RANGE;
  if (!(Number.isInteger(size) && size > 0 && size % DEFAULT_BATCH_SIZE === 0))
    throw new RangeError(
      `reference: range size ${size} is not a positive multiple of ${DEFAULT_BATCH_SIZE}`,
    );
  const keep = Math.min(sizes.calibration, DEFAULT_ESTIMATE_SAMPLES);
  const pool = samplerPool(sizes.calibration, options.pool);
  if (!(Number.isInteger(pool) && pool >= 0))
    throw new RangeError(`reference: bad sampler pool ${options.pool}`);
  const span = options.describe ? Math.max(keep, pool) : keep;
  const predictedSize = boundedRangeSize(options.predictionBytes, size, PREDICTION_BYTES);
  const calibrationSize = options.describe
    ? describedRangeSize(options.embeddingFloats, predictedSize, options.predictionBytes)
    : predictedSize;
  const out: ReferenceShard[] = fixedRanges(span, calibrationSize).map((r) => ({
    split: 'calibration',
    start: r.start,
    end: r.end,
    describe: options.describe && r.start < pool,
    describeEnd: options.describe ? pool : 0,
    keep,
  }));
  if (options.validate && sizes.evaluation > 0)
    for (const r of fixedRanges(sizes.evaluation, predictedSize))
      out.push({
        split: 'evaluation',
        start: r.start,
        end: r.end,
        describe: false,
        describeEnd: 0,
        keep: sizes.evaluation,
      });
  return out;
}

/** Runs one reference shard: the FP32 model over its range in batches of DEFAULT_BATCH_SIZE. */
export async function runReferenceShard<P>(
  model: Uint8Array,
  source: BatchSource,
  predict: (outputs: Record<string, TensorData>, n: number) => P[],
  shard: ReferenceShard,
): Promise<ReferenceOutput<P>> {
  const { start, end } = shard;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end))
    throw new RangeError(`reference: bad range [${start}, ${end})`);
  if (end > source.size)
    throw new RangeError(`reference: end ${end} beyond the ${shard.split} split of ${source.size}`);
  const described = shard.describe ? Math.max(0, Math.min(end, shard.describeEnd) - start) : 0;
  const describer = described > 0 ? new SampleDescriber(start, described) : undefined;
  const predictions: P[] = [];
  const logits: Float32Array[] = [];
  let classes: number | undefined;
  const session = await createSession(model);
  try {
    const first = session.outputNames[0]!;
    for (let s = start; s < end; s += DEFAULT_BATCH_SIZE) {
      const e = Math.min(end, s + DEFAULT_BATCH_SIZE);
      const out = await session.run(await source.batch(s, e));
      const d = Math.min(e, start + described) - s;
      if (describer && d > 0) describer.add(d < e - s ? headRows(out, d) : out, first, s, d);
      const kept = Math.max(0, Math.min(e, shard.keep) - s);
      if (kept === 0) continue;
      const p = predict(out, e - s);
      if (p.length !== e - s)
        throw new Error(`reference: decoder returned ${p.length} predictions for ${e - s} samples`);
      predictions.push(...p.slice(0, kept));
      const l = out[first];
      if (shard.split === 'calibration' && l?.type === 'float32' && l.dims.length === 2) {
        classes = l.dims[1]!;
        logits.push((l.data as Float32Array).slice(0, kept * classes));
      }
    }
  } finally {
    await session.release();
  }
  return {
    split: shard.split,
    start,
    end,
    ...(describer ? { descriptions: describer.result() } : {}),
    predictions,
    ...(classes !== undefined ? { logits: concatFloat32(logits), classes } : {}),
  };
}

/** The first `n` samples (rows) of every output of a batch (views, no copy). */
function headRows(outputs: Record<string, TensorData>, n: number): Record<string, TensorData> {
  return Object.fromEntries(
    Object.entries(outputs).map(([name, t]) => {
      const rows = t.dims[0] ?? 0;
      const per = rows > 0 ? t.data.length / rows : 0;
      return [
        name,
        { ...t, dims: [n, ...t.dims.slice(1)], data: t.data.subarray(0, n * per) } as TensorData,
      ];
    }),
  );
}

/** Tiles the shards of one split in index order (any order in). */
function tile<P>(parts: readonly ReferenceOutput<P>[]): ReferenceOutput<P>[] {
  const sorted = [...parts].sort((a, b) => a.start - b.start);
  let next = 0;
  for (const p of sorted) {
    if (p.start !== next)
      throw new RangeError(`reference: gap or overlap at ${p.split} sample ${next}`);
    next = p.end;
  }
  return sorted;
}

/** Merges reference shards (any order) into the run's FP32 reference. */
export function mergeReference<P>(parts: readonly ReferenceOutput<P>[]): Reference<P> {
  const calib = tile(parts.filter((p) => p.split === 'calibration'));
  const evaluation = tile(parts.filter((p) => p.split === 'evaluation'));
  const described = calib.filter((p) => p.descriptions);
  // The described shards are the first ones (the sampler's pool is a prefix of the split).
  if (calib.slice(0, described.length).some((p) => !p.descriptions))
    throw new RangeError('reference: the described calibration shards are not a prefix');
  // Shards past the kept range (the estimate's first 2,000 samples) hold descriptions only.
  const kept = calib.filter((p) => p.predictions.length > 0);
  const classes = kept[0]?.classes;
  if (kept.some((p) => p.classes !== classes))
    throw new RangeError('reference: shards differ in classes');
  return {
    ...(described.length > 0
      ? { descriptions: mergeDescriptions(described.map((p) => p.descriptions!)) }
      : {}),
    calibration: {
      predictions: kept.flatMap((p) => p.predictions),
      ...(classes !== undefined
        ? { logits: concatFloat32(kept.map((p) => p.logits!)), classes }
        : {}),
    },
    ...(evaluation.length > 0 ? { evaluation: evaluation.flatMap((p) => p.predictions) } : {}),
  };
}
