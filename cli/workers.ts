/**
 * `--workers N`: runs a pipeline's shards on N worker_threads.
 *
 * The pipeline's executor hands out closures, which cannot cross threads. Instead every thread
 * runs the same deterministic pipeline (core/pipeline/replay.ts explains why that is sound):
 * - live (the default): the main thread and every worker each run the pipeline once. When the
 *   main thread's run reaches a phase, its executor sends the phase's shards to the workers
 *   (index only); a worker's run, on reaching that phase, executes the shards it was sent and
 *   posts their outputs through the shard codec, then waits for all of the phase's outputs,
 *   which the main thread sends to every worker as soon as the phase is done. So each thread
 *   does the pure steps between phases (decoding, quantizer searches, building the INT8 graph)
 *   once, all threads at the same time.
 * - replay (`freshWorkerPerShard`, for per-shard memory measurements): the main thread replays
 *   the run with the outputs of the finished phases to find the next unfinished phase, and each
 *   shard runs in a fresh worker that replays the run up to it, as a Queue consumer does.
 * Either way the reduce runs on the main thread over outputs in shard-index order, so the
 * result is the one a single process gives for the same shard count (and, by the determinism
 * contract, for any shard count).
 *
 * Each worker loads the model and data once (the recipe's zoo task, or a user model and its data
 * directory: cli/inputs.ts); messages carry shard indices and encoded shard outputs only.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeShardOutput, replayPipeline } from '../core/pipeline/replay.ts';
import {
  type PhaseMeta,
  type PipelineInputs,
  type PipelineResult,
  runPipeline,
  type ShardExecutor,
} from '../core/pipeline/run.ts';
import { lookupShared } from '../core/pipeline/shared-cache.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { nodeDataSource, recordingDataSource, type SharedFiles } from './data-source.ts';
import { type InputSource, inputsIdentity, loadPipelineInputs, TASK_SOURCE } from './inputs.ts';
import { fileStore } from './shared-store.ts';

/** The first message to every worker: a zoo task's dataset files (null: read your own). */
export interface DataMessage {
  kind: 'data';
  files: SharedFiles | null;
}

/** Messages main -> worker after the {@link DataMessage}. */
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
  /** Bytes of the shard's encoded output (encodeShardOutput; the service allows 1 MiB). */
  outputBytes: number;
}

/** Options of {@link runOnWorkers}. */
export interface WorkerRunOptions {
  workers: number;
  /** Shards per phase (default: the number of workers). */
  shards?: number;
  /**
   * Shards of the validation pass (PipelineOptions.splitShards; the reference pass has fixed
   * ranges, core/pipeline/reference.ts REFERENCE_RANGE).
   * Default: {@link SPLIT_SHARDS_PER_WORKER} per worker on the live path, so that the two long
   * phases balance over the workers; `shards` with a fresh worker per shard.
   */
  splitShards?: number;
  validate?: boolean;
  /** Terminate a worker after each shard and start a fresh one (memory measurements). */
  freshWorkerPerShard?: boolean;
  /**
   * Measure live memory: the workers run two full garbage collections before each memory
   * sample (after every model execution), so `ShardStats` counts what a shard holds, not the
   * garbage V8 has not collected yet. Slow; for memory measurements.
   */
  liveMemory?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Called with every shard's measurements. */
  onShard?: (phase: string, index: number, stats: ShardStats) => void;
  /** Shared-phase cache folder (cli/shared-store.ts): the FP32 reference pass is read from it. */
  cacheDir?: string;
  /** The model and data (default: the recipe's zoo task); every worker loads the same. */
  source?: InputSource;
  /** The inputs of `source`, if this thread has loaded them already. */
  inputs?: PipelineInputs<unknown, unknown>;
}

/**
 * Reference and validation ranges per worker on the live path. The two workers of a 2-core
 * machine do not always run at the same speed (fmnist-resnet's two validation shards of 5,000
 * images once took 12.5 s and 16.7 s): with 4 ranges per worker a slow worker takes fewer.
 */
export const SPLIT_SHARDS_PER_WORKER = 4;

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
  const source = options.source ?? TASK_SOURCE;
  const shards = options.shards ?? nWorkers;
  const splitShards =
    options.splitShards ??
    (options.freshWorkerPerShard ? shards : Math.max(shards, SPLIT_SHARDS_PER_WORKER * nWorkers));
  // The task's dataset files, once this thread has read them (shared, not copied).
  let shareFiles!: (files: SharedFiles | null) => void;
  const filesRead = new Promise<SharedFiles | null>((resolve) => {
    shareFiles = resolve;
  });
  const spawn = (): PoolWorker => {
    const worker = new Worker(WORKER_URL, {
      workerData: {
        recipe,
        source,
        shards,
        splitShards,
        validate,
        live: !options.freshWorkerPerShard,
        liveMemory: options.liveMemory === true,
      },
    });
    void filesRead.then((files) =>
      worker.postMessage({ kind: 'data', files } satisfies DataMessage),
    );
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
  const pipelineOptions = { shards, splitShards, validate };
  const spawnIdle = () => {
    const w = spawn();
    pool.push(w);
    idle.push(w);
  };
  // Workers start (tsx, their modules) while this thread reads the task's data for all of them.
  for (let i = 0; i < nWorkers; i++) spawnIdle();
  // Encoded outputs of the finished phases, in order, for the workers.
  const encoded: { phase: string; outputs: Uint8Array[] }[] = [];

  const getWorker = (): PoolWorker => {
    const w = idle.pop();
    if (w) return w;
    const fresh = spawn();
    pool.push(fresh);
    return fresh;
  };

  /** Sends a worker the outputs of the finished phases it has not been sent yet. */
  const sendPhases = async (w: PoolWorker) => {
    await w.ready;
    for (; w.phasesSent < encoded.length; w.phasesSent++) {
      const p = encoded[w.phasesSent]!;
      w.worker.postMessage({
        kind: 'phase',
        phase: p.phase,
        outputs: p.outputs,
      } satisfies ToWorker);
    }
  };

  const runShard = async (w: PoolWorker, phase: string, index: number) => {
    await sendPhases(w);
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

  const cachedShards = new Map<string, number>();
  let done = 0;
  let total = 0;
  try {
    // A zoo task's dataset files are read once, here, and shared with the workers. When each
    // worker read and inflated its own copy, a warm 2-worker fmnist-resnet score took about
    // 0.7 s longer and its peak RSS was 45 MB higher. A user's data directory is read by each
    // worker itself.
    let inputs = options.inputs;
    if (!inputs && source.kind === 'task') {
      const recording = recordingDataSource(nodeDataSource());
      inputs = await loadPipelineInputs(recipe, validate, source, recording.source);
      shareFiles(recording.kept);
    } else {
      shareFiles(null);
      inputs ??= await loadPipelineInputs(recipe, validate, source);
    }
    const store = options.cacheDir ? fileStore(options.cacheDir) : undefined;
    const identity = store ? await inputsIdentity(inputs, source) : undefined;
    /** Runs one phase's shards on the pool; returns their encoded outputs in shard order. */
    const runPhase = async (
      phase: string,
      shardInputs: readonly unknown[],
      meta: PhaseMeta,
    ): Promise<Uint8Array[]> => {
      const n = shardInputs.length;
      total += n;
      const outputs: Uint8Array[] = new Array(n);
      // Shared phases (the FP32 reference pass): shards whose output is cached are not run.
      const { keys, found } =
        store && identity && meta.shared
          ? await lookupShared(store, identity, phase, shardInputs)
          : { keys: undefined, found: [] };
      const todo: number[] = [];
      for (let i = 0; i < n; i++) {
        const hit = found[i];
        if (hit) outputs[i] = hit;
        else todo.push(i);
      }
      if (keys) cachedShards.set(phase, n - todo.length);
      done += n - todo.length;
      let next = 0;
      const lane = async () => {
        for (;;) {
          if (next >= todo.length) return;
          const index = todo[next++]!;
          const w = getWorker();
          const r = await runShard(w, phase, index);
          outputs[index] = r.output;
          if (keys) await store!.put(keys[index]!, r.output);
          options.onShard?.(phase, index, r.stats);
          options.onProgress?.(++done, total);
          if (options.freshWorkerPerShard) {
            pool.splice(pool.indexOf(w), 1);
            await w.worker.terminate();
            spawnIdle();
          } else idle.push(w);
        }
      };
      await Promise.all(Array.from({ length: Math.min(nWorkers, todo.length) }, lane));
      encoded.push({ phase, outputs });
      return outputs;
    };
    const withCachedCounts = (result: PipelineResult) => {
      for (const p of result.phases) {
        const cached = cachedShards.get(p.phase);
        if (cached !== undefined) p.cached = cached;
      }
      return result;
    };

    if (!options.freshWorkerPerShard) {
      // Live: this thread runs the pipeline once; every worker runs it alongside and executes
      // the shards it is sent when its run reaches their phase.
      const executor: ShardExecutor = async <I, O>(
        phase: string,
        shardInputs: readonly I[],
        _run: (input: I, index: number) => Promise<O>,
        meta: PhaseMeta = {},
      ) => {
        const outputs = await runPhase(phase, shardInputs, meta);
        // Every worker gets the outputs now, so that its run goes on to the next phase while
        // this thread does the same pure steps.
        await Promise.all(pool.map((w) => sendPhases(w)));
        return outputs.map((o) => decodeShardOutput(o) as O);
      };
      return withCachedCounts(await runPipeline(inputs, { ...pipelineOptions, executor }));
    }

    // Replay (a fresh worker per shard): this thread replays the run up to the next unfinished
    // phase, and each shard is a replay in a new worker.
    const phaseSeconds = new Map<string, number>();
    const cache = new Map<string, unknown[]>();
    for (;;) {
      const step = await replayPipeline(inputs, pipelineOptions, { cache });
      if (step.kind === 'complete') {
        // The final replay served every phase from the cache: report the phases' wall times.
        for (const p of step.result.phases) p.seconds = phaseSeconds.get(p.phase) ?? p.seconds;
        return withCachedCounts(step.result);
      }
      if (step.kind === 'shard') throw new Error('runOnWorkers: the main thread ran a shard');
      const phaseStart = performance.now();
      const outputs = await runPhase(step.phase, step.inputs, step.meta);
      cache.set(
        step.phase,
        outputs.map((o) => decodeShardOutput(o)),
      );
      phaseSeconds.set(step.phase, Math.round(performance.now() - phaseStart) / 1000);
    }
  } finally {
    await Promise.all(pool.map((w) => w.worker.terminate()));
  }
}

/**
 * Most workers `score` starts by default: each holds its own onnxruntime-web instance, model and
 * splits (tens of MB), and beyond a few workers the serial parts of a run dominate.
 */
export const MAX_DEFAULT_WORKERS = 8;

/** The default worker count on this machine: one per core, 1 to {@link MAX_DEFAULT_WORKERS}. */
export function defaultWorkers(): number {
  return Math.min(MAX_DEFAULT_WORKERS, Math.max(1, availableParallelism()));
}
