/**
 * Every benchmark task of the zoo, by id. To add a task, import it and add one entry: this map
 * is the only list.
 */

import { TEMPLATES } from '../core/recipe/templates.ts';
import { fmnistDetectTask } from './fmnist-detect/task.ts';
import { fmnistMobilenet } from './fmnist-mobilenet/task.ts';
import { fmnistResnet } from './fmnist-resnet/task.ts';
import { smokeFmnist } from './smoke-fmnist/task.ts';
import { spamTransformerTask } from './spam-transformer/task.ts';
import type { BenchmarkTask } from './task.ts';

export const TASKS: Record<string, BenchmarkTask> = {
  'smoke-fmnist': smokeFmnist,
  'fmnist-resnet': fmnistResnet,
  'fmnist-mobilenet': fmnistMobilenet,
  'spam-transformer': spamTransformerTask as unknown as BenchmarkTask,
  'fmnist-detect': fmnistDetectTask as unknown as BenchmarkTask,
};

/** The task with this id, or undefined when there is none. */
export function findTask(id: string): BenchmarkTask | undefined {
  return Object.hasOwn(TASKS, id) ? TASKS[id] : undefined;
}

/** The task with this id; throws an error listing the known ids otherwise. */
export function getTask(id: string): BenchmarkTask {
  const task = findTask(id);
  if (!task) {
    // `--task industrial`, as the seed's user journey writes it, names a template's scenario
    const template = TEMPLATES.find((t) => t.scenario === id || t.name === id);
    const hint = template
      ? `; '${id}' is a recipe template${template.name === id ? '' : `'s scenario (${template.name})`}: add --template ${template.name} to a task`
      : '';
    throw new Error(`unknown task '${id}' (known: ${Object.keys(TASKS).sort().join(', ')})${hint}`);
  }
  return task;
}
