/**
 * Evaluation of one ONNX model (e.g. a QAT model's emulation model) over a task split on
 * worker_threads, each predicting a batch-aligned range (core/evaluate/predict.ts), then the
 * task's metric over all predictions in sample order. Used by `train` to score QAT models on
 * the full evaluation split in parallel.
 */
import { Worker } from 'node:worker_threads';
import { DEFAULT_BATCH_SIZE } from '../core/evaluate/predict.ts';
import { getTask } from '../zoo/registry.ts';
import { nodeDataSource } from './data-source.ts';

const WORKER_URL = new URL('./train-eval-worker.js', import.meta.url);

/** The task's metrics of `model` on `split`, computed on `workers` threads. */
export async function evaluateOnWorkers(
  taskId: string,
  model: Uint8Array,
  workers: number,
  split: 'calibration' | 'evaluation' = 'evaluation',
): Promise<{ metrics: Record<string, number>; samples: number }> {
  const task = getTask(taskId);
  const data = await task.load(nodeDataSource(), split);
  const batches = Math.ceil(data.size / DEFAULT_BATCH_SIZE);
  const per = Math.ceil(batches / workers);
  const ranges: [number, number][] = [];
  for (let b = 0; b < batches; b += per)
    ranges.push([b * DEFAULT_BATCH_SIZE, Math.min(data.size, (b + per) * DEFAULT_BATCH_SIZE)]);
  const parts = await Promise.all(
    ranges.map(
      ([start, end]) =>
        new Promise<unknown[]>((resolve, reject) => {
          const w = new Worker(WORKER_URL, {
            workerData: { taskId, split, model, start, end },
          });
          w.once('message', (m: { predictions: unknown[] }) => {
            resolve(m.predictions);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const predictions = parts.flat();
  const score = task.score as (p: unknown[], labels: unknown) => Record<string, number>;
  return { metrics: score(predictions, data.labels), samples: predictions.length };
}
