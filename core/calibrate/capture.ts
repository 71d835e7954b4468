import type { BatchSource } from '../evaluate/predict.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { withOutputs } from '../onnx/outputs.ts';
import { createSession, type ModelSession } from '../runtime/index.ts';
import { concatBatch, type TensorData } from '../tensor/index.ts';
import {
  emptyHistogram,
  emptyRange,
  type Histogram,
  mergeHistograms,
  mergeRanges,
  observeHistogram,
  observeRange,
  type TensorRange,
} from './histogram.ts';
import type { TensorStats } from './methods.ts';

/** Samples to calibrate on, as indices into a split, executed in batches of `batchSize`. */
export interface SampleSet {
  indices: readonly number[];
  batchSize?: number;
  /**
   * Samples per model execution inside a batch (default: the whole batch), where a consumer
   * supports it (measureOneLayerModels). Results stay those of whole batches; only the memory
   * an execution holds shrinks.
   */
  partSize?: number;
}

/** Builds the model inputs for the given sample indices (one batch). */
export async function gatherBatch(
  source: BatchSource,
  indices: readonly number[],
): Promise<Record<string, TensorData>> {
  const parts: Record<string, TensorData>[] = [];
  for (const i of indices) parts.push(await source.batch(i, i + 1));
  const names = Object.keys(parts[0] ?? {});
  return Object.fromEntries(names.map((n) => [n, concatBatch(parts.map((p) => p[n]!))]));
}

/** Runs `visit` on the captured tensors of each batch of the sample set. */
export async function forEachCapture(
  session: ModelSession,
  source: BatchSource,
  samples: SampleSet,
  tensors: readonly string[],
  visit: (captured: Record<string, TensorData>) => void,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const batchSize = samples.batchSize ?? 25;
  const { indices } = samples;
  for (let i = 0; i < indices.length; i += batchSize) {
    const batch = indices.slice(i, i + batchSize);
    const out = await session.run(await gatherBatch(source, batch), tensors);
    visit(out);
    onProgress?.(Math.min(indices.length, i + batchSize), indices.length);
  }
}

/** Opens a session on a float model that also outputs the given intermediate tensors. */
export async function captureSession(
  model: ModelProto,
  tensors: readonly string[],
): Promise<ModelSession> {
  return createSession(encodeModel(withOutputs(model, tensors)));
}

const asFloats = (t: TensorData, name: string): Float32Array => {
  if (t.type !== 'float32')
    throw new TypeError(`calibration: tensor '${name}' is ${t.type}, not float32`);
  return t.data as Float32Array;
};

/**
 * Collects per-tensor statistics of float activations over the calibration samples: a range
 * pass, then a histogram pass with edges fixed by the merged range (see histogram.ts). Shards
 * may call this on disjoint sample sets and merge with {@link mergeStats}, given the same limits.
 */
export async function collectStats(
  model: ModelProto,
  source: BatchSource,
  samples: SampleSet,
  tensors: readonly string[],
  options: {
    onProgress?: (done: number, total: number) => void;
    limits?: Map<string, number>;
  } = {},
): Promise<Map<string, TensorStats>> {
  const session = await captureSession(model, tensors);
  try {
    const ranges = new Map<string, TensorRange>(tensors.map((t) => [t, emptyRange()]));
    const total = samples.indices.length * 2;
    await forEachCapture(
      session,
      source,
      samples,
      tensors,
      (out) => {
        for (const t of tensors)
          ranges.set(t, observeRange(ranges.get(t)!, asFloats(out[t]!, t), t));
      },
      (d) => options.onProgress?.(d, total),
    );
    const hists = new Map<string, Histogram>(
      tensors.map((t) => {
        const r = ranges.get(t)!;
        return [t, emptyHistogram(options.limits?.get(t) ?? Math.max(-r.min, r.max, 0))];
      }),
    );
    await forEachCapture(
      session,
      source,
      samples,
      tensors,
      (out) => {
        for (const t of tensors) observeHistogram(hists.get(t)!, asFloats(out[t]!, t));
      },
      (d) => options.onProgress?.(samples.indices.length + d, total),
    );
    return new Map(tensors.map((t) => [t, { range: ranges.get(t)!, histogram: hists.get(t)! }]));
  } finally {
    await session.release();
  }
}

/** Merges statistics of two disjoint sample sets (same histogram limits required). */
export function mergeStats(
  a: Map<string, TensorStats>,
  b: Map<string, TensorStats>,
): Map<string, TensorStats> {
  const out = new Map<string, TensorStats>();
  for (const [k, s] of a) {
    const t = b.get(k);
    if (!t) throw new RangeError(`mergeStats: '${k}' missing on one side`);
    out.set(k, {
      range: mergeRanges(s.range, t.range),
      histogram: mergeHistograms(s.histogram, t.histogram),
    });
  }
  return out;
}
