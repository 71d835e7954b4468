/** Worker of cli/train-eval.ts: predicts one range of a task split with one model. */
import { parentPort, workerData } from 'node:worker_threads';
import { predictModel } from '../core/evaluate/evaluate.ts';
import { DEFAULT_BATCH_SIZE } from '../core/evaluate/predict.ts';
import { getTask } from '../zoo/registry.ts';
import { nodeDataSource } from './data-source.ts';
import { useNodeRuntime } from './runtime-node.ts';

const { taskId, split, model, start, end } = workerData as {
  taskId: string;
  split: 'calibration' | 'evaluation';
  model: Uint8Array;
  start: number;
  end: number;
};
void DEFAULT_BATCH_SIZE;
useNodeRuntime();
const task = getTask(taskId);
const data = await task.load(nodeDataSource(), split);
const predictions = await predictModel(task, model, data, { start, end });
parentPort!.postMessage({ predictions });
