/**
 * A pipeline run on this machine, for a zoo task (`score`, `calibrate --task`) or a user model
 * (`calibrate --model --data`): in this thread, or on worker_threads (cli/workers.ts), with the
 * FP32 reference pass served from the shared cache (cli/shared-store.ts) either way. The result
 * does not depend on the worker count or on the cache.
 */
import type { LossEstimate } from '../core/calibrate/estimate.ts';
import {
  type PipelineInputs,
  type PipelineResult,
  runPipeline,
  type ShardExecutor,
} from '../core/pipeline/run.ts';
import { type CacheCounts, cachingExecutor } from '../core/pipeline/shared-cache.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { createSession } from '../core/runtime/index.ts';
import { CliError } from './errors.ts';
import {
  type InputSource,
  inputsIdentity,
  loadPipelineInputs,
  TASK_SOURCE,
  type UserSource,
  userPipelineInputs,
} from './inputs.ts';
import { progressBar, progressExecutor } from './progress.ts';
import { useNodeRuntime } from './runtime-node.ts';
import { fileStore, sharedCacheDir } from './shared-store.ts';
import {
  detectOutputKind,
  INPUT_ERROR,
  loadDataDir,
  type OutputKind,
  readUserModel,
  valuesPredictionBytes,
} from './user-model.ts';
import { runOnWorkers } from './workers.ts';

/** Options of {@link runLocal}. */
export interface LocalRunOptions {
  /** Shards per phase (default 1; at least `workers`). Results do not depend on it. */
  shards?: number;
  /** Run the validation phase (default true). */
  validate?: boolean;
  /** A progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** worker_threads (default 1: this thread). */
  workers?: number;
  /** Serve the FP32 reference pass from the shared cache (default on). */
  cache?: boolean;
  /** The model and data (default: the recipe's zoo task). */
  source?: InputSource;
  /** The inputs of `source`, if this thread has loaded them already. */
  inputs?: PipelineInputs<unknown, unknown>;
  /** The progress bar's label (default `score <task>/<target>`). */
  label?: string;
}

/** Runs a recipe's pipeline on this machine. */
export async function runLocal(
  recipe: Recipe,
  opts: LocalRunOptions = {},
): Promise<PipelineResult> {
  const cacheDir = opts.cache === false ? undefined : sharedCacheDir();
  const workers = opts.workers ?? 1;
  const source = opts.source ?? TASK_SOURCE;
  const validate = opts.validate ?? true;
  const bar = progressBar(opts.label ?? `score ${recipe.task}/${recipe.target}`, opts.progress);
  try {
    if (workers > 1)
      return await runOnWorkers(recipe, {
        workers,
        source,
        ...(opts.inputs ? { inputs: opts.inputs } : {}),
        ...(cacheDir ? { cacheDir } : {}),
        shards: Math.max(opts.shards ?? 1, workers),
        validate,
        onProgress: (done, total) => bar.update(done, total),
      });
    const inputs = opts.inputs ?? (await loadPipelineInputs(recipe, validate, source));
    const counts: CacheCounts = new Map();
    const sequential = progressExecutor(bar);
    const executor: ShardExecutor = cacheDir
      ? cachingExecutor(
          sequential,
          fileStore(cacheDir),
          await inputsIdentity(inputs, source),
          counts,
        )
      : sequential;
    const result = await runPipeline(inputs, {
      shards: opts.shards ?? 1,
      validate,
      executor,
    });
    for (const p of result.phases) {
      const cached = counts.get(p.phase);
      if (cached !== undefined) p.cached = cached;
    }
    return result;
  } finally {
    bar.stop();
  }
}

/** What {@link runUserModel} reports beside the pipeline result. */
export interface UserRunInfo {
  model: string;
  data: string;
  files: number;
  samples: number;
  outputKind: OutputKind;
  estimate: LossEstimate | undefined;
}

/**
 * Calibrates a user model on a data directory (validation off: there are no labels). The model
 * and data are checked here, and the output kind settled on the first sample, before any worker
 * starts, so that bad inputs fail with one line whatever the worker count.
 */
export async function runUserModel(
  recipe: Recipe,
  opts: {
    model: string;
    data: string;
    outputs?: 'auto' | OutputKind;
    shards?: number;
    workers?: number;
    cache?: boolean;
    progress?: boolean;
  },
): Promise<{ result: PipelineResult; info: UserRunInfo }> {
  const user = await readUserModel(opts.model);
  const data = await loadDataDir(opts.data, user.inputs);
  useNodeRuntime();
  let kind: OutputKind;
  let first: string;
  let predictionBytes: number;
  {
    const session = await createSession(user.bytes).catch((err: Error) => {
      throw new CliError(
        `onnxruntime cannot load '${opts.model}': ${err.message.split('\n')[0]}`,
        INPUT_ERROR,
      );
    });
    try {
      first = session.outputNames[0]!;
      const out = await session.run(data.batch(0, 1)).catch((err: Error) => {
        throw new CliError(
          `the model does not run on the first sample of '${opts.data}': ${err.message.split('\n')[0]}`,
          INPUT_ERROR,
        );
      });
      kind = opts.outputs && opts.outputs !== 'auto' ? opts.outputs : detectOutputKind(out, first);
      predictionBytes = valuesPredictionBytes(out);
      if (kind === 'classes' && detectOutputKind(out, first) !== 'classes')
        throw new CliError(
          `--outputs classes needs a float32 [N, C] first output; '${first}' is ${out[first]?.type} [${out[first]?.dims.join(', ')}]`,
          INPUT_ERROR,
        );
    } finally {
      await session.release();
    }
  }
  const source: UserSource = {
    kind: 'user',
    model: opts.model,
    data: opts.data,
    outputKind: kind,
    firstOutput: first,
    predictionBytes,
  };
  // More samples than the data holds: the pipeline uses them all and says so (result.warnings).
  const result = await runLocal(recipe, {
    source,
    validate: false,
    label: `calibrate ${recipe.task}/${recipe.target}`,
    ...(opts.shards !== undefined ? { shards: opts.shards } : {}),
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
    ...(opts.cache !== undefined ? { cache: opts.cache } : {}),
    ...(opts.progress !== undefined ? { progress: opts.progress } : {}),
    // this thread reuses what it has read (each worker reads the files again)
    inputs: userPipelineInputs(recipe, source, user.bytes, data),
  });
  return {
    result,
    info: {
      model: opts.model,
      data: opts.data,
      files: data.files,
      samples: data.size,
      outputKind: kind,
      estimate: result.estimate,
    },
  };
}
