import { createSession, type GraphOptimizationLevel } from '../runtime/index.ts';
import type { TensorData } from '../tensor/index.ts';
import { type BatchSource, predictRange } from './predict.ts';

/** What evaluation needs from a benchmark task (zoo/task.ts `BenchmarkTask` fits). */
export interface ScoringTask<L, P> {
  predict(outputs: Record<string, TensorData>, batchSize: number): P[];
  score(predictions: P[], labels: L): Record<string, number>;
}

/** Options of {@link predictModel}. */
export interface EvaluateOptions {
  start?: number;
  end?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Samples per run (default: predictRange's). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Runs a model (ONNX bytes) over a split range and returns the per-sample predictions. */
export async function predictModel<P>(
  task: Pick<ScoringTask<unknown, P>, 'predict'>,
  model: Uint8Array,
  split: BatchSource,
  options: EvaluateOptions = {},
): Promise<P[]> {
  const session = await createSession(model, {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'disabled',
  });
  try {
    return await predictRange(session, split, (out, n) => task.predict(out, n), {
      ...(options.start !== undefined ? { start: options.start } : {}),
      ...(options.end !== undefined ? { end: options.end } : {}),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await session.release();
  }
}

/** FP32 vs INT8 comparison of one metric set. */
export interface MetricComparison {
  metric: string;
  fp32: number;
  int8: number;
  /** fp32 - int8 in percentage points of the metric (metric as a fraction x 100). */
  lossPoints: number;
  /** (fp32 - int8) / fp32, floored at 0 (the standard's `loss`). */
  lossFraction: number;
  /** fp32 - int8 relative, not floored: negative means the INT8 model scored higher. */
  rawLossFraction: number;
}

/** Compares the primary metric of two evaluations. */
export function compareMetric(
  metric: string,
  fp32: Record<string, number>,
  int8: Record<string, number>,
): MetricComparison {
  const a = fp32[metric];
  const b = int8[metric];
  if (a === undefined || b === undefined)
    throw new RangeError(`compareMetric: metric '${metric}' missing`);
  const raw = a === 0 ? 0 : (a - b) / a;
  // Points rounded to 1e-9 so that float noise (0.5 - 0.49 = 0.0100000000000000009) cannot flip a threshold.
  const lossPoints = Math.round((a - b) * 100 * 1e9) / 1e9;
  return {
    metric,
    fp32: a,
    int8: b,
    lossPoints,
    lossFraction: Math.max(0, raw),
    rawLossFraction: raw,
  };
}

/** The accuracy guard: a run whose loss exceeds `maxLossPoints` fails with this error. */
export class AccuracyGuardError extends Error {
  override name = 'AccuracyGuardError';
  constructor(
    readonly comparison: MetricComparison,
    readonly maxLossPoints: number,
  ) {
    super(
      `accuracy guard: ${comparison.metric} lost ${comparison.lossPoints.toFixed(3)} points (FP32 ${comparison.fp32}, INT8 ${comparison.int8}), more than the ${maxLossPoints} allowed`,
    );
  }
}

/** Throws {@link AccuracyGuardError} when the loss exceeds the bound. */
export function accuracyGuard(comparison: MetricComparison, maxLossPoints: number): void {
  if (comparison.lossPoints > maxLossPoints)
    throw new AccuracyGuardError(comparison, maxLossPoints);
}
