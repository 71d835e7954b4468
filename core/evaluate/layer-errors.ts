/**
 * Per-layer and per-channel quantization error: the FP32 model and the INT8 emulation graph run
 * on the same samples while each layer's output tensor is captured from both; the difference is
 * summarised per layer and per channel (SQNR, relative L2 error, max abs error).
 *
 * Summation and sharding. Within one row of dimension 0 (one sample for the usual [N, ...]
 * layouts) the elements of a channel are summed in plain float64, in memory order; each row's
 * per-channel partials `Σ ref²` and `Σ (ref − q)²` are then added *exactly* to per-channel
 * floating-point expansions (Shewchuk / Python `math.fsum` partials: non-overlapping float64
 * values whose exact sum is the running total), and the final value is the correctly rounded
 * exact sum. So the result does not depend on how samples are grouped into batches, on how the
 * sample list is split into shards, nor on the order shards are merged: one pass and any
 * sharding give bit-identical numbers, provided ORT computes each sample's tensors identically
 * (it does for a fixed model and per-sample feeds under the single-threaded runtime). The merge
 * order is nevertheless defined, shard index order (left to right), so that the stored partial
 * expansions themselves are reproducible.
 *
 * JSON: every number in {@link LayerErrorSums} and {@link LayerError} is finite. Values that
 * would be infinite or undefined are `null` (see the field docs).
 *
 * @example
 * const report = await measureLayerErrors(fp32, int8, layers, split, { indices: [0, 1, 2] });
 * report.flagged; // names of layers whose relative error exceeds 5%
 */
import { gatherBatch } from '../calibrate/capture.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { withOutputs } from '../onnx/outputs.ts';
import { createSession, type ModelSession, type SessionOptions } from '../runtime/index.ts';
import type { TensorData } from '../tensor/index.ts';
import type { BatchSource } from './predict.ts';

/** A layer to measure: report key, the output tensor name shared by both models, channel axis. */
export interface LayerOutputSpec {
  name: string;
  output: string;
  /**
   * Axis of the output channels (negative counts from the end). Default: 1 for rank-4 tensors
   * (NCHW Conv), the last axis otherwise (Gemm / MatMul).
   */
  channelAxis?: number;
}

/** Samples to measure on: indices into a split, run in batches of `batchSize` (default 25). */
export interface LayerErrorSamples {
  indices: readonly number[];
  batchSize?: number;
}

/** The default threshold on relative error above which a layer or channel is flagged (5%). */
export const DEFAULT_ERROR_THRESHOLD = 0.05;

/**
 * Mergeable partial sums of one layer (JSON-safe). `refSq[c]` and `errSq[c]` are floating-point
 * expansions: the exact value is the sum of the array (see {@link expansionSum}).
 */
export interface LayerErrorSums {
  name: string;
  output: string;
  /** Normalised (non-negative) channel axis. */
  channelAxis: number;
  /** Number of channels (size of the channel axis; 1 for a scalar). */
  channels: number;
  /** Samples observed (sum of batch sizes). */
  samples: number;
  /** Elements compared (both values finite). */
  elements: number;
  /** Elements where the reference or the quantized value is NaN or infinite (left out of sums). */
  nonFinite: number;
  /** Per channel: expansion of Σ ref². */
  refSq: number[][];
  /** Per channel: expansion of Σ (ref − q)². */
  errSq: number[][];
  /** Per channel: max |ref − q| (0 before any element). */
  maxAbsError: number[];
}

/** Error figures of one channel. */
export interface ChannelError {
  /**
   * ‖ref − q‖₂ / ‖ref‖₂. 0 when there is no error; `null` when the reference is all zero but the
   * quantized values are not (relative error undefined; flagged as above threshold).
   */
  relativeError: number | null;
  /**
   * 10·log10(Σ ref² / Σ (ref − q)²) in dB. `null` exactly when `relativeError` is 0 (no error:
   * SQNR is +∞) or `null` (zero reference: SQNR is −∞ / undefined).
   */
  sqnrDb: number | null;
  /** max |ref − q|. */
  maxAbsError: number;
}

/** Error figures of one layer (JSON-safe). */
export interface LayerError extends ChannelError {
  name: string;
  output: string;
  channelAxis: number;
  samples: number;
  elements: number;
  nonFinite: number;
  /** Relative error > threshold, or undefined relative error, or any non-finite value. */
  aboveThreshold: boolean;
  /** Number of channels whose relative error is above the threshold (or undefined). */
  channelsAboveThreshold: number;
  /** One entry per channel, in channel order. */
  perChannel: ChannelError[];
}

/** The per-layer error report: layers in the order given (graph order). */
export interface LayerErrorReport {
  /** Relative-error threshold used for flagging (0.05 = 5%). */
  threshold: number;
  /** Samples measured. */
  samples: number;
  layers: LayerError[];
  /** Names of layers above the threshold, in layer order. */
  flagged: string[];
}

/** Options of {@link measureLayerErrors} and {@link accumulateLayerErrors}. */
export interface LayerErrorOptions {
  /** Relative-error threshold (default {@link DEFAULT_ERROR_THRESHOLD}). */
  threshold?: number;
  /** ORT session options for both models (default: the runtime defaults). */
  session?: SessionOptions;
  /** Called after each batch with samples done and total. */
  onProgress?: (done: number, total: number) => void;
}

// ---------------------------------------------------------------------------------------------
// Exact summation (floating-point expansions)

/**
 * Adds `x` to the expansion `p` in place, exactly (Shewchuk's grow-expansion with zero
 * elimination, as in Python's `math.fsum`). `p` stays sorted by increasing magnitude and
 * non-overlapping.
 */
export function expansionAdd(p: number[], x: number): void {
  let n = 0;
  for (let j = 0; j < p.length; j++) {
    let y = p[j]!;
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) p[n++] = lo;
    x = hi;
  }
  p.length = n;
  if (x !== 0 || n === 0) p.push(x);
}

/** The correctly rounded value of an expansion (the final step of Python's `math.fsum`). */
export function expansionSum(p: readonly number[]): number {
  let n = p.length;
  if (n === 0) return 0;
  let hi = p[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n]!;
    hi = x + y;
    const yr = hi - x;
    lo = y - yr;
    if (lo !== 0) break;
  }
  // Round half-even correctly when the rest of the expansion pushes past a tie.
  if (n > 0 && ((lo < 0 && p[n - 1]! < 0) || (lo > 0 && p[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    const yr = x - hi;
    if (y === yr) hi = x;
  }
  return hi;
}

function expansionMerge(a: readonly number[], b: readonly number[]): number[] {
  const out = [...a];
  for (const x of b) expansionAdd(out, x);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Accumulation

/** Channel axis for a tensor of rank `rank` (normalised, non-negative). */
export function resolveChannelAxis(rank: number, channelAxis?: number): number {
  if (rank === 0) return 0;
  const axis = channelAxis ?? (rank === 4 ? 1 : rank - 1);
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new RangeError(`layer errors: channel axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

/** Empty sums for a layer whose channel count is not yet known (first batch sets it). */
export function emptyLayerErrorSums(layer: LayerOutputSpec): LayerErrorSums {
  return {
    name: layer.name,
    output: layer.output,
    channelAxis: layer.channelAxis ?? -1,
    channels: 0,
    samples: 0,
    elements: 0,
    nonFinite: 0,
    refSq: [],
    errSq: [],
    maxAbsError: [],
  };
}

function floats(t: TensorData, what: string): Float32Array {
  if (t.type !== 'float32') {
    throw new TypeError(`layer errors: ${what} is ${t.type}, expected float32`);
  }
  return t.data as Float32Array;
}

/**
 * Adds one batch of a layer's outputs (reference `ref` from the FP32 model, `quant` from the
 * INT8 emulation) to `sums`, in place. Rows of dimension 0 are the units whose partial sums are
 * combined exactly (see the module doc).
 * @param spec the layer's spec; its `channelAxis` (or the default) decides the channels.
 * @param samples samples in this batch (default: dimension 0, or 1 for a scalar).
 */
export function observeLayerError(
  sums: LayerErrorSums,
  spec: LayerOutputSpec,
  ref: TensorData,
  quant: TensorData,
  samples?: number,
): void {
  const r = floats(ref, `reference '${spec.output}'`);
  const q = floats(quant, `quantized '${spec.output}'`);
  if (ref.dims.join(',') !== quant.dims.join(',')) {
    throw new RangeError(
      `layer errors: '${spec.output}' is [${ref.dims}] in the FP32 model but [${quant.dims}] in the INT8 model`,
    );
  }
  const rank = ref.dims.length;
  const axis = resolveChannelAxis(rank, spec.channelAxis);
  const channels = rank === 0 ? 1 : ref.dims[axis]!;
  if (sums.channels === 0 && sums.elements === 0 && sums.nonFinite === 0) {
    sums.channelAxis = axis;
    sums.channels = channels;
    sums.refSq = Array.from({ length: channels }, () => []);
    sums.errSq = Array.from({ length: channels }, () => []);
    sums.maxAbsError = new Array<number>(channels).fill(0);
  } else if (sums.channelAxis !== axis || sums.channels !== channels) {
    throw new RangeError(
      `layer errors: '${spec.output}' has ${channels} channels on axis ${axis}, earlier batches had ${sums.channels} on axis ${sums.channelAxis}`,
    );
  }
  let inner = 1;
  for (let d = axis + 1; d < rank; d++) inner *= ref.dims[d]!;
  // Outer blocks (all axes before the channel axis) per row of dimension 0; when the channel
  // axis is 0 every channel slab is flushed on its own.
  let outerPerRow = 1;
  for (let d = 1; d < axis; d++) outerPerRow *= ref.dims[d]!;
  const outer = channels * inner === 0 ? 0 : r.length / (channels * inner);
  const partRef = new Float64Array(channels);
  const partErr = new Float64Array(channels);
  const maxAbs = Float64Array.from(sums.maxAbsError);
  const flush = (c: number) => {
    if (partRef[c] !== 0) expansionAdd(sums.refSq[c]!, partRef[c]!);
    if (partErr[c] !== 0) expansionAdd(sums.errSq[c]!, partErr[c]!);
    partRef[c] = 0;
    partErr[c] = 0;
  };
  let i = 0;
  let bad = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      let sr = partRef[c]!;
      let se = partErr[c]!;
      let m = maxAbs[c]!;
      for (let k = 0; k < inner; k++, i++) {
        const a = r[i]!;
        const e = a - q[i]!;
        if (e - e !== 0) {
          bad++; // NaN or ±Infinity in either tensor
          continue;
        }
        sr += a * a;
        se += e * e;
        const abs = e < 0 ? -e : e;
        if (abs > m) m = abs;
      }
      partRef[c] = sr;
      partErr[c] = se;
      maxAbs[c] = m;
      if (axis === 0) flush(c);
    }
    if (axis > 0 && (o + 1) % outerPerRow === 0) for (let c = 0; c < channels; c++) flush(c);
  }
  for (let c = 0; c < channels; c++) flush(c);
  sums.maxAbsError = Array.from(maxAbs);
  sums.elements += r.length - bad;
  sums.nonFinite += bad;
  sums.samples += samples ?? (rank === 0 ? 1 : ref.dims[0]!);
}

/**
 * Merges the sums of disjoint sample sets, in shard index order (`shards[0]` first). Each shard
 * lists the same layers in the same order. The merge is exact (expansions), so any order gives
 * the same finalized numbers; the fixed order only makes the stored partials reproducible.
 */
export function mergeLayerErrorSums(
  shards: readonly (readonly LayerErrorSums[])[],
): LayerErrorSums[] {
  const first = shards[0];
  if (first === undefined) throw new RangeError('mergeLayerErrorSums: no shards');
  return first.map((layer, li) => {
    let acc: LayerErrorSums = {
      ...layer,
      refSq: layer.refSq.map((p) => [...p]),
      errSq: layer.errSq.map((p) => [...p]),
      maxAbsError: [...layer.maxAbsError],
    };
    for (let s = 1; s < shards.length; s++) {
      const other = shards[s]![li];
      if (other === undefined || other.name !== layer.name || other.output !== layer.output) {
        throw new RangeError(
          `mergeLayerErrorSums: shard ${s} layer ${li} is '${other?.name}', expected '${layer.name}'`,
        );
      }
      acc = mergeTwo(acc, other);
    }
    return acc;
  });
}

function mergeTwo(a: LayerErrorSums, b: LayerErrorSums): LayerErrorSums {
  const aEmpty = a.channels === 0;
  const bEmpty = b.channels === 0;
  if (bEmpty) return { ...a, samples: a.samples + b.samples };
  if (aEmpty) {
    return {
      ...b,
      samples: a.samples + b.samples,
      refSq: b.refSq.map((p) => [...p]),
      errSq: b.errSq.map((p) => [...p]),
      maxAbsError: [...b.maxAbsError],
    };
  }
  if (a.channels !== b.channels || a.channelAxis !== b.channelAxis) {
    throw new RangeError(
      `mergeLayerErrorSums: '${a.name}' has ${a.channels} channels on axis ${a.channelAxis} in one shard, ${b.channels} on axis ${b.channelAxis} in another`,
    );
  }
  return {
    ...a,
    samples: a.samples + b.samples,
    elements: a.elements + b.elements,
    nonFinite: a.nonFinite + b.nonFinite,
    refSq: a.refSq.map((p, c) => expansionMerge(p, b.refSq[c]!)),
    errSq: a.errSq.map((p, c) => expansionMerge(p, b.errSq[c]!)),
    maxAbsError: a.maxAbsError.map((m, c) => Math.max(m, b.maxAbsError[c]!)),
  };
}

// ---------------------------------------------------------------------------------------------
// Finalisation

function channelError(refSq: number, errSq: number, maxAbsError: number): ChannelError {
  if (errSq === 0) return { relativeError: 0, sqnrDb: null, maxAbsError };
  if (refSq === 0) return { relativeError: null, sqnrDb: null, maxAbsError };
  return {
    relativeError: Math.sqrt(errSq / refSq),
    sqnrDb: 10 * Math.log10(refSq / errSq),
    maxAbsError,
  };
}

const above = (rel: number | null, threshold: number): boolean => rel === null || rel > threshold;

/**
 * Turns merged sums into the report: per layer SQNR, relative error, max abs error, per-channel
 * figures, and flags (relative error strictly above `threshold`, default 5%).
 */
export function finalizeLayerErrors(
  sums: readonly LayerErrorSums[],
  options: { threshold?: number } = {},
): LayerErrorReport {
  const threshold = options.threshold ?? DEFAULT_ERROR_THRESHOLD;
  if (!(threshold >= 0) || !Number.isFinite(threshold)) {
    throw new RangeError(
      `finalizeLayerErrors: threshold must be finite and >= 0, got ${threshold}`,
    );
  }
  const layers = sums.map((s): LayerError => {
    const refTotal: number[] = [];
    const errTotal: number[] = [];
    const perChannel = s.refSq.map((p, c) => {
      for (const x of p) expansionAdd(refTotal, x);
      for (const x of s.errSq[c]!) expansionAdd(errTotal, x);
      return channelError(expansionSum(p), expansionSum(s.errSq[c]!), s.maxAbsError[c]!);
    });
    const layer = channelError(
      expansionSum(refTotal),
      expansionSum(errTotal),
      s.maxAbsError.reduce((m, x) => Math.max(m, x), 0),
    );
    return {
      name: s.name,
      output: s.output,
      channelAxis: s.channelAxis,
      samples: s.samples,
      elements: s.elements,
      nonFinite: s.nonFinite,
      ...layer,
      aboveThreshold: s.nonFinite > 0 || above(layer.relativeError, threshold),
      channelsAboveThreshold: perChannel.filter((c) => above(c.relativeError, threshold)).length,
      perChannel,
    };
  });
  return {
    threshold,
    samples: sums[0]?.samples ?? 0,
    layers,
    flagged: layers.filter((l) => l.aboveThreshold).map((l) => l.name),
  };
}

// ---------------------------------------------------------------------------------------------
// Running the models

function feedsFor(
  session: ModelSession,
  feeds: Record<string, TensorData>,
): Record<string, TensorData> {
  return Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]!]));
}

/**
 * Runs both models on `samples` (same batches, same feeds) and returns the partial sums, one per
 * layer in the order of `layers`: the per-shard step of a sharded pipeline. Combine shards with
 * {@link mergeLayerErrorSums} and {@link finalizeLayerErrors}.
 * @throws TypeError when a layer output is not float32 in either model; RangeError on shape
 *   mismatches.
 */
export async function accumulateLayerErrors(
  fp32Model: ModelProto,
  int8Model: ModelProto,
  layers: readonly LayerOutputSpec[],
  source: BatchSource,
  samples: LayerErrorSamples,
  options: LayerErrorOptions = {},
): Promise<LayerErrorSums[]> {
  const batchSize = samples.batchSize ?? 25;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`layer errors: batchSize must be a positive integer, got ${batchSize}`);
  }
  for (const i of samples.indices) {
    if (!Number.isInteger(i) || i < 0 || i >= source.size) {
      throw new RangeError(`layer errors: sample ${i} is outside the split of ${source.size}`);
    }
  }
  const outputs = [...new Set(layers.map((l) => l.output))];
  const sums = layers.map(emptyLayerErrorSums);
  if (outputs.length === 0 || samples.indices.length === 0) return sums;
  const fp32 = await createSession(encodeModel(withOutputs(fp32Model, outputs)), options.session);
  try {
    const int8 = await createSession(encodeModel(withOutputs(int8Model, outputs)), options.session);
    try {
      const { indices } = samples;
      for (let i = 0; i < indices.length; i += batchSize) {
        const batch = indices.slice(i, i + batchSize);
        const feeds = await gatherBatch(source, batch);
        const ref = await fp32.run(feedsFor(fp32, feeds), outputs);
        const quant = await int8.run(feedsFor(int8, feeds), outputs);
        layers.forEach((spec, li) => {
          observeLayerError(sums[li]!, spec, ref[spec.output]!, quant[spec.output]!, batch.length);
        });
        options.onProgress?.(Math.min(indices.length, i + batchSize), indices.length);
      }
    } finally {
      await int8.release();
    }
  } finally {
    await fp32.release();
  }
  return sums;
}

/**
 * Runs the FP32 model and the INT8 emulation graph on the same samples, capturing each layer's
 * output in both, and reports per-layer and per-channel SQNR, relative error and max abs error,
 * flagging layers above `options.threshold` (default 5%).
 * @example
 * const r = await measureLayerErrors(fp32, int8, [{ name: 'conv1', output: 'c1' }], split, { indices: [0, 1] });
 */
export async function measureLayerErrors(
  fp32Model: ModelProto,
  int8Model: ModelProto,
  layers: readonly LayerOutputSpec[],
  source: BatchSource,
  samples: LayerErrorSamples,
  options: LayerErrorOptions = {},
): Promise<LayerErrorReport> {
  const sums = await accumulateLayerErrors(fp32Model, int8Model, layers, source, samples, options);
  return finalizeLayerErrors(
    sums,
    options.threshold === undefined ? {} : { threshold: options.threshold },
  );
}
