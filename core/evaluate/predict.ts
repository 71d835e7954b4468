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

/** The batch size used unless a caller says otherwise; part of the reproducibility contract. */
export const DEFAULT_BATCH_SIZE = 50;

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
