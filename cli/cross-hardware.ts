/**
 * `--cross-hardware` for the CLI: runs one recipe on every target (core/score/cross-hardware.ts
 * builds the table), times the cpu-wasm INT8 model against FP32 on this machine, and returns the
 * runs so that `score` can feed L5.cross.
 */

import type { TargetId } from '../core/formats/targets.ts';
import { encodeModel } from '../core/onnx/index.ts';
import type { PipelineResult } from '../core/pipeline/run.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import {
  type CrossHardwareReport,
  crossHardware,
  crossTargetsFor,
  recipeForTarget,
} from '../core/score/cross-hardware.ts';
import type { MeasuredSpeedup } from '../core/score/score-run.ts';
import { getTask } from '../zoo/registry.ts';
import { runRecipe } from './commands/score.ts';
import { nodeDataSource } from './data-source.ts';
import { readImported } from './imported-store.ts';
import { measureSpeedup } from './measure.ts';
import { readTaskModel } from './zoo-files.ts';

/** The local run id of a recipe on a target. */
export const localRunId = (r: Pick<PipelineResult, 'task' | 'target' | 'recipe'>) =>
  `local:${r.task}:${r.target}:${r.recipe.name}`;

/**
 * Runs `recipe` on every target. `reference` is an already validated run of the recipe on its
 * own target (reused, not re-run); its per-layer methods carry over to cpu-wasm.
 */
export async function runCrossHardware(
  recipe: Recipe,
  opts: {
    shards?: number;
    progress?: boolean;
    reference?: PipelineResult;
    /** Timed runs per model for the cpu-wasm measured row (0: do not time). */
    repeats?: number;
    /** Targets (default CROSS_TARGETS, the standard's five). */
    targets?: readonly TargetId[];
  } = {},
): Promise<{
  report: CrossHardwareReport;
  runs: { run: PipelineResult; runId: string }[];
  measured?: MeasuredSpeedup;
}> {
  const reference =
    opts.reference ??
    (await runRecipe(recipe, { shards: opts.shards ?? 1, progress: opts.progress ?? false }));
  const runs = [{ run: reference, runId: localRunId(reference) }];
  for (const id of crossTargetsFor(reference, opts.targets)) {
    const run = await runRecipe(recipeForTarget(recipe, id, reference), {
      shards: opts.shards ?? 1,
      progress: opts.progress ?? false,
    });
    runs.push({ run, runId: localRunId(run) });
  }
  const task = getTask(recipe.task);
  const model = await readTaskModel(task.manifest);
  const wasm = runs.find((r) => r.run.target === 'cpu-wasm')?.run;
  const measured =
    wasm && opts.repeats !== 0
      ? await measureSpeedup(
          model,
          encodeModel(wasm.qdq),
          await task.load(nodeDataSource(), 'calibration'),
          { ...(opts.repeats ? { repeats: opts.repeats } : {}) },
        )
      : undefined;
  const imported = recipe.imported ? await readImported(recipe.imported.model) : undefined;
  const report = await crossHardware(runs, model, {
    ...(measured ? { measured } : {}),
    ...(imported ? { imported } : {}),
  });
  return { report, runs, ...(measured ? { measured } : {}) };
}
