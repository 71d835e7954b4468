/**
 * What a local run calibrates: a zoo task's model and splits, or a user's ONNX model and data
 * directory (`calibrate --model --data`). An {@link InputSource} says which, in a form that can be
 * sent to a worker_thread, so that every thread of a `--workers` run loads the same inputs
 * (cli/workers.ts).
 */
import type { PipelineInputs } from '../core/pipeline/run.ts';
import type { SharedIdentity } from '../core/pipeline/shared-cache.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import type { DataSource } from '../zoo/datasets/source.ts';
import { getTask } from '../zoo/registry.ts';
import { nodeDataSource } from './data-source.ts';
import { readImported } from './imported-store.ts';
import { useNodeRuntime } from './runtime-node.ts';
import { localIdentity } from './shared-store.ts';
import { loadDataDir, type OutputKind, readUserModel, userTask } from './user-model.ts';
import { readTaskModel } from './zoo-files.ts';

/** Where a run's model and data come from. */
export type InputSource =
  /** The recipe's zoo task (`recipe.task`). */
  { kind: 'task' } | UserSource;

/**
 * A user model and its data directory; `outputKind` and `firstOutput` were settled once on the
 * main thread (cli/local-run.ts `runUserModel`), so that every thread reads the outputs the same
 * way.
 */
export interface UserSource {
  kind: 'user';
  model: string;
  data: string;
  outputKind: OutputKind;
  firstOutput: string;
  /**
   * Bytes of one sample's prediction in a shard output, from the first sample's outputs, for
   * values (every float32 output of the sample, core/pipeline/replay.ts float32JsonBytes).
   */
  predictionBytes?: number;
}

export const TASK_SOURCE: InputSource = { kind: 'task' };

const NO_SPLIT = { size: 0, batch: () => ({}), labels: undefined };

/** Loads what `runPipeline` needs for a recipe (the same in every thread). */
export async function loadPipelineInputs(
  recipe: Recipe,
  validate: boolean,
  source: InputSource = TASK_SOURCE,
  data: DataSource = nodeDataSource(),
): Promise<PipelineInputs<unknown, unknown>> {
  useNodeRuntime();
  if (source.kind === 'user') {
    const user = await readUserModel(source.model);
    return userPipelineInputs(
      recipe,
      source,
      user.bytes,
      await loadDataDir(source.data, user.inputs),
    );
  }
  const task = getTask(recipe.task);
  const [model, calibration, evaluation] = await Promise.all([
    readTaskModel(task.manifest),
    task.load(data, 'calibration'),
    validate ? task.load(data, 'evaluation') : Promise.resolve(undefined),
  ]);
  return {
    recipe,
    task,
    model,
    calibration,
    evaluation: evaluation ?? NO_SPLIT,
    ...(recipe.imported ? { imported: await readImported(recipe.imported.model) } : {}),
  };
}

/** A user model's pipeline inputs from its bytes and data directory, read already. */
export function userPipelineInputs(
  recipe: Recipe,
  source: UserSource,
  model: Uint8Array,
  calibration: PipelineInputs<unknown, unknown>['calibration'],
): PipelineInputs<unknown, unknown> {
  return {
    recipe,
    task: userTask(recipe.task, source.outputKind, source.firstOutput, source.predictionBytes),
    model,
    calibration,
    // user data has no labels: calibration only
    evaluation: NO_SPLIT,
  };
}

/**
 * The shared cache's identity of a run's inputs (cli/shared-store.ts). A user model's FP32
 * predictions depend on how its outputs are read, so that is part of the model's identity.
 */
export async function inputsIdentity(
  inputs: PipelineInputs<unknown, unknown>,
  source: InputSource = TASK_SOURCE,
): Promise<SharedIdentity> {
  const id = await localIdentity(inputs.model, inputs.calibration, inputs.evaluation);
  return source.kind === 'user'
    ? { ...id, model: `${id.model} outputs=${source.outputKind}:${source.firstOutput}` }
    : id;
}
