import type { TensorData } from '../tensor/index.ts';

/** What prediction needs from a model: run one batch of named inputs, return named outputs. */
export interface BatchRunner {
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
}

/**
 * What prediction needs from a data split: its size and batches of model inputs. `batch` may
 * answer asynchronously: the Worker reads splits chunk by chunk from R2 on demand, while the
 * Node loaders answer synchronously from memory.
 */
export interface BatchSource {
  size: number;
  batch(
    start: number,
    end: number,
  ): Record<string, TensorData> | Promise<Record<string, TensorData>>;
}

/** Options of {@link predictRange}. */
export interface PredictOptions {
  /** First sample (inclusive). Default 0. */
  start?: number;
  /** Last sample (exclusive). Default: the split size. */
  end?: number;
  /**
   * Samples per model execution. Batches are aligned to multiples of `batchSize` counted from
   * sample 0, so that a shard [start, end) executes exactly the batches a single pass would:
   * results do not depend on how a split is sharded.
   */
  batchSize?: number;
  /** Called after each batch with the number of samples done in this range and its size. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The batch size used unless a caller says otherwise; part of the reproducibility contract
 * (batches are aligned to its multiples from sample 0).
 *
 * 10, not more: onnxruntime-web's WebAssembly memory only grows, to the largest batch's
 * activations, and a batch of 50 took it to 71 MiB for fmnist-detect's INT8 emulation graph
 * (64x64 inputs), over half of a 128 MB shard; batches of 10 need 23 MiB. They cost no speed on
 * the real models: 1,000 evaluation samples of the four real zoo models ran at 0.96-1.08x the
 * throughput of batches of 50 (FP32 and INT8 emulated); only smoke-fmnist, a model of 1 ms per
 * 10 samples, pays for the extra calls (0.64-0.80x). Every model gave the same output bytes per
 * sample at batch 50, 25, 10 and 5 (bench/batch-size.ts, bench/results/batch-size-2026-11-28.md).
 */
export const DEFAULT_BATCH_SIZE = 10;

/**
 * Runs a model over samples [start, end) of a split and turns each batch of outputs into
 * per-sample predictions with `decode`.
 *
 * @example
 * const preds = await predictRange(session, split, (out, n) => task.predict(out, n));
 */
export async function predictRange<P>(
  runner: BatchRunner,
  source: BatchSource,
  decode: (outputs: Record<string, TensorData>, batchSize: number) => P[],
  options: PredictOptions = {},
): Promise<P[]> {
  const start = options.start ?? 0;
  const end = options.end ?? source.size;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(end) ||
    start < 0 ||
    end > source.size ||
    start > end
  ) {
    throw new RangeError(
      `predictRange: range [${start}, ${end}) is outside the split of ${source.size}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`predictRange: batchSize must be a positive integer, got ${batchSize}`);
  }
  const predictions: P[] = [];
  let cursor = start;
  while (cursor < end) {
    const batchEnd = Math.min(end, (Math.floor(cursor / batchSize) + 1) * batchSize);
    const outputs = await runner.run(await source.batch(cursor, batchEnd));
    const decoded = decode(outputs, batchEnd - cursor);
    if (decoded.length !== batchEnd - cursor) {
      throw new Error(
        `predictRange: decoder returned ${decoded.length} predictions for ${batchEnd - cursor} samples`,
      );
    }
    for (const p of decoded) predictions.push(p);
    cursor = batchEnd;
    options.onProgress?.(cursor - start, end - start);
  }
  return predictions;
}
