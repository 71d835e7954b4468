import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { predictModel } from '../../core/evaluate/evaluate.ts';
import { getTask } from '../../zoo/registry.ts';
import { nodeDataSource } from '../data-source.ts';
import { progressBar } from '../progress.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { readTaskModel } from '../zoo-files.ts';
import { parsePositiveInt, printResult } from './shared.ts';

/** Result of `cann-quant eval`, also its `--json` output. */
export interface EvalResult {
  task: string;
  metric: string;
  value: number;
  samples: number;
  metrics: Record<string, number>;
  reference: Record<string, number>;
  matchesReference: boolean;
  seconds: number;
}

/** Evaluates a zoo task's FP32 model over its full evaluation split (or the first `limit`). */
export async function evaluateFp32(
  taskId: string,
  opts: { limit?: number; progress?: boolean },
): Promise<EvalResult> {
  const task = getTask(taskId);
  const { manifest } = task;
  const t0 = performance.now();
  const [model, split] = await Promise.all([
    readTaskModel(manifest),
    task.load(nodeDataSource(), 'evaluation'),
  ]);
  useNodeRuntime();
  const end = Math.min(split.size, opts.limit ?? split.size);
  const bar = progressBar(`eval ${taskId}`, opts.progress);
  try {
    const predictions = await predictModel(task, model, split, {
      end,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.stop();
    const labels = end === split.size ? split.labels : sliceLabels(split.labels, end);
    const metrics = task.score(predictions, labels);
    const primary = manifest.metric.primary;
    const value = metrics[primary];
    if (value === undefined) throw new Error(`task ${taskId} scored no '${primary}' metric`);
    const reference = manifest.reference.fp32;
    return {
      task: taskId,
      metric: primary,
      value,
      samples: end,
      metrics,
      reference,
      matchesReference:
        end === split.size &&
        Object.entries(reference).every(([k, v]) => sameAtRecordedPrecision(metrics[k], v)) &&
        (manifest.reference.predictionsSha256 === undefined ||
          predictionsSha256(predictions) === manifest.reference.predictionsSha256),
      seconds: Math.round((performance.now() - t0) / 10) / 100,
    };
  } finally {
    bar.stop();
  }
}

/**
 * A recorded reference equals a computed metric when they agree at the precision the manifest
 * wrote (a manifest with all 17 digits therefore demands bit equality).
 */
export function sameAtRecordedPrecision(computed: number | undefined, recorded: number): boolean {
  if (computed === undefined) return false;
  if (computed === recorded) return true;
  const digits = (String(recorded).split('.')[1] ?? '').length;
  return digits < 15 && computed.toFixed(digits) === recorded.toFixed(digits);
}

/** SHA-256 of class predictions as int32 little-endian (what the training scripts record). */
export function predictionsSha256(predictions: unknown[]): string | undefined {
  if (!predictions.every((p) => typeof p === 'number')) return undefined;
  const bytes = new Uint8Array(Int32Array.from(predictions as number[]).buffer);
  return createHash('sha256').update(bytes).digest('hex');
}

function sliceLabels<L>(labels: L, end: number): L {
  if (ArrayBuffer.isView(labels) || Array.isArray(labels)) {
    return (labels as unknown as { slice(a: number, b: number): L }).slice(0, end);
  }
  throw new Error('--limit is not supported for this task (labels cannot be sliced)');
}

/** Registers `cann-quant eval`. */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description("evaluate a zoo task's FP32 model on its full evaluation split")
    .requiredOption('--task <id>', 'benchmark task id (see `cann-quant tasks`)')
    .option('--limit <n>', 'evaluate only the first n samples', parsePositiveInt)
    .option('--json', 'print one JSON object')
    .action(async (opts: { task: string; limit?: number; json?: boolean }) => {
      const result = await evaluateFp32(opts.task, { limit: opts.limit, progress: !opts.json });
      printResult(opts.json, result, () => {
        const ref = result.reference[result.metric];
        const lines = [
          `task      ${result.task}`,
          `samples   ${result.samples}`,
          ...Object.entries(result.metrics).map(
            ([k, v]) => `${k.padEnd(9)} ${v.toFixed(4)}${k === result.metric ? '  (primary)' : ''}`,
          ),
          `reference ${result.metric} ${ref}${result.matchesReference ? '  (reproduced exactly)' : '  (NOT reproduced)'}`,
          `time      ${result.seconds} s`,
        ];
        return lines.join('\n');
      });
    });
}
