/**
 * `--workers N`: runs a pipeline's shards on N worker_threads.
 *
 * The pipeline's executor hands out closures, which cannot cross threads. Instead every thread
 * replays the run (core/pipeline/replay.ts): the main thread replays it with the outputs of the
 * finished phases to find the next unfinished phase and its shard count, sends the shards to the
 * workers, and each worker replays the run with the same cache up to that phase, executes its
 * one assigned shard, and posts the output back through the shard codec. When every phase is
 * cached, the main thread's replay completes: the reduce runs there, in shard-index order, so
 * the result is the one a single process gives for the same shard count (and, by the
 * determinism contract, for any shard count).
 *
 * Each worker loads the task's model and splits once and keeps its own phase cache, updated with
 * each finished phase; messages carry shard indices and encoded shard outputs only.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeShardOutput, replayPipeline } from '../core/pipeline/replay.ts';
import type { PipelineInputs, PipelineResult } from '../core/pipeline/run.ts';
import { lookupShared } from '../core/pipeline/shared-cache.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { getTask } from '../zoo/registry.ts';
import { nodeDataSource } from './data-source.ts';
import { useNodeRuntime } from './runtime-node.ts';
import { fileStore, localIdentity } from './shared-store.ts';
import { readTaskModel } from './zoo-files.ts';

/** Loads what `runPipeline` needs for a recipe's zoo task (the same in every thread). */
export async function loadRecipeInputs(
  recipe: Recipe,
  validate: boolean,
): Promise<PipelineInputs<unknown, unknown>> {
  const task = getTask(recipe.task);
  useNodeRuntime();
  const source = nodeDataSource();
  const [model, calibration, evaluation] = await Promise.all([
    readTaskModel(task.manifest),
    task.load(source, 'calibration'),
    validate ? task.load(source, 'evaluation') : Promise.resolve(undefined),
  ]);
  return {
    recipe,
    task,
    model,
    calibration,
    evaluation: evaluation ?? { size: 0, batch: () => ({}), labels: undefined },
  };
}

/** Messages main -> worker. */
export type ToWorker =
  | { kind: 'phase'; phase: string; outputs: Uint8Array[] }
  | { kind: 'shard'; phase: string; index: number };

/** Messages worker -> main. */
export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'done'; phase: string; index: number; output: Uint8Array; stats: ShardStats }
  | { kind: 'error'; message: string; stack?: string };

/** What a worker measured while it ran one shard (bench/ reads it). */
export interface ShardStats {
  seconds: number;
  /** Bytes of WebAssembly linear memory of ORT in this worker after the shard (never shrinks). */
  wasmBytes: number;
  /** Peak V8 heap in use (sampled after every model execution and at the end), bytes. */
  heapPeakBytes: number;
  /** Peak V8 external memory (ArrayBuffers outside the heap), sampled likewise, bytes. */
  externalPeakBytes: number;
  /** V8 heap in use after the worker loaded the task's model and data, before any shard. */
  heapAfterLoadBytes: number;
  /** V8 external memory after loading (the Node adapter reads whole dataset files). */
  externalAfterLoadBytes: number;
}

/** Options of {@link runOnWorkers}. */
export interface WorkerRunOptions {
  workers: number;
  /** Shards per phase (default: the number of workers). */
  shards?: number;
  validate?: boolean;
  /** Terminate a worker after each shard and start a fresh one (memory measurements). */
  freshWorkerPerShard?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Called with every shard's measurements. */
  onShard?: (phase: string, index: number, stats: ShardStats) => void;
  /** Shared-phase cache folder (cli/shared-store.ts): the FP32 reference pass is read from it. */
  cacheDir?: string;
}

const WORKER_URL = new URL('./shard-worker.js', import.meta.url);

interface PoolWorker {
  worker: Worker;
  ready: Promise<void>;
  /** Number of cached phases this worker has been sent. */
  phasesSent: number;
}

/**
 * Runs `recipe` on `workers` worker_threads and returns the pipeline result (computed on this
 * thread from the workers' shard outputs).
 */
export async function runOnWorkers(
  recipe: Recipe,
  options: WorkerRunOptions,
): Promise<PipelineResult> {
  const nWorkers = options.workers;
  if (!Number.isInteger(nWorkers) || nWorkers < 1)
    throw new RangeError(`--workers must be a positive integer, got ${nWorkers}`);
  const validate = options.validate ?? true;
  const shards = options.shards ?? nWorkers;
  const spawn = (): PoolWorker => {
    const worker = new Worker(WORKER_URL, {
      workerData: { recipe, shards, validate },
    });
    const ready = new Promise<void>((resolve, reject) => {
      const onMsg = (m: FromWorker) => {
        if (m.kind === 'ready') {
          worker.off('message', onMsg);
          resolve();
        } else if (m.kind === 'error') reject(new Error(`shard worker: ${m.message}`));
      };
      worker.on('message', onMsg);
      worker.once('error', reject);
    });
    ready.catch(() => undefined); // observed by runShard; a worker never used must not crash us
    return { worker, ready, phasesSent: 0 };
  };
  const pool: PoolWorker[] = [];
  const idle: PoolWorker[] = [];
  const pipelineOptions = { shards, validate };
  const spawnIdle = () => {
    const w = spawn();
    pool.push(w);
    idle.push(w);
  };
  // Workers start (tsx, ORT, the task's data) while this thread loads the same inputs.
  for (let i = 0; i < nWorkers; i++) spawnIdle();
  // Phase outputs: decoded for this thread's replays, encoded for the workers.
  const cache = new Map<string, unknown[]>();
  const encoded: { phase: string; outputs: Uint8Array[] }[] = [];

  const getWorker = (): PoolWorker => {
    const w = idle.pop();
    if (w) return w;
    const fresh = spawn();
    pool.push(fresh);
    return fresh;
  };

  const runShard = async (w: PoolWorker, phase: string, index: number) => {
    await w.ready;
    for (; w.phasesSent < encoded.length; w.phasesSent++) {
      const p = encoded[w.phasesSent]!;
      w.worker.postMessage({
        kind: 'phase',
        phase: p.phase,
        outputs: p.outputs,
      } satisfies ToWorker);
    }
    return new Promise<{ output: Uint8Array; stats: ShardStats }>((resolve, reject) => {
      const onMsg = (m: FromWorker) => {
        if (m.kind === 'done' && m.phase === phase && m.index === index) {
          cleanup();
          resolve({ output: m.output, stats: m.stats });
        } else if (m.kind === 'error') {
          cleanup();
          reject(
            Object.assign(new Error(`shard ${index} of '${phase}': ${m.message}`), {
              stack: m.stack,
            }),
          );
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`shard worker exited with code ${code} during '${phase}' shard ${index}`));
      };
      const cleanup = () => {
        w.worker.off('message', onMsg);
        w.worker.off('error', onError);
        w.worker.off('exit', onExit);
      };
      w.worker.on('message', onMsg);
      w.worker.on('error', onError);
      w.worker.on('exit', onExit);
      w.worker.postMessage({ kind: 'shard', phase, index } satisfies ToWorker);
    });
  };

  const phaseSeconds = new Map<string, number>();
  const cachedShards = new Map<string, number>();
  let done = 0;
  let total = 0;
  try {
    const inputs = await loadRecipeInputs(recipe, validate);
    const store = options.cacheDir ? fileStore(options.cacheDir) : undefined;
    const identity = store
      ? await localIdentity(inputs.model, inputs.calibration, inputs.evaluation)
      : undefined;
    for (;;) {
      const step = await replayPipeline(inputs, pipelineOptions, { cache });
      if (step.kind === 'complete') {
        // The final replay served every phase from the cache: report the phases' wall times.
        for (const p of step.result.phases) {
          p.seconds = phaseSeconds.get(p.phase) ?? p.seconds;
          const cached = cachedShards.get(p.phase);
          if (cached !== undefined) p.cached = cached;
        }
        return step.result;
      }
      if (step.kind === 'shard') throw new Error('runOnWorkers: the main thread ran a shard');
      const phaseStart = performance.now();
      total += step.shards;
      const outputs: Uint8Array[] = new Array(step.shards);
      // Shared phases (the FP32 reference pass): shards whose output is cached are not run.
      const { keys, found } =
        store && identity && step.meta.shared
          ? await lookupShared(store, identity, step.phase, step.inputs)
          : { keys: undefined, found: [] };
      const todo: number[] = [];
      for (let i = 0; i < step.shards; i++) {
        const hit = found[i];
        if (hit) outputs[i] = hit;
        else todo.push(i);
      }
      if (keys) cachedShards.set(step.phase, step.shards - todo.length);
      done += step.shards - todo.length;
      let next = 0;
      const lane = async () => {
        for (;;) {
          if (next >= todo.length) return;
          const index = todo[next++]!;
          const w = getWorker();
          const r = await runShard(w, step.phase, index);
          outputs[index] = r.output;
          if (keys) await store!.put(keys[index]!, r.output);
          options.onShard?.(step.phase, index, r.stats);
          options.onProgress?.(++done, total);
          if (options.freshWorkerPerShard) {
            pool.splice(pool.indexOf(w), 1);
            await w.worker.terminate();
            spawnIdle();
          } else idle.push(w);
        }
      };
      await Promise.all(Array.from({ length: Math.min(nWorkers, todo.length) }, lane));
      cache.set(
        step.phase,
        outputs.map((o) => decodeShardOutput(o)),
      );
      encoded.push({ phase: step.phase, outputs });
      phaseSeconds.set(step.phase, Math.round(performance.now() - phaseStart) / 1000);
    }
  } finally {
    await Promise.all(pool.map((w) => w.worker.terminate()));
  }
}

/** A sensible default worker count for this machine. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}
