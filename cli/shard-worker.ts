/**
 * One shard worker of cli/workers.ts: loads the run's model and data once (cli/inputs.ts; a zoo
 * task's dataset files come from the main thread, in shared memory),
 * then either
 * - live: runs the pipeline once, alongside the main thread; at each phase it executes the
 *   shards it has been sent, posts their encoded outputs with its measurements, and waits for
 *   the phase's outputs from the main thread before going on; or
 * - replay: keeps the cache of finished phases it is sent, and for each assigned shard replays
 *   the pipeline up to that shard, runs it and posts the encoded output.
 */

import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { decodeShardOutput, encodeShardOutput, replayPipeline } from '../core/pipeline/replay.ts';
import { runPipeline, type ShardExecutor } from '../core/pipeline/run.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { setRunObserver } from '../core/runtime/index.ts';
import { nodeDataSource, sharedDataSource } from './data-source.ts';
import { type InputSource, loadPipelineInputs } from './inputs.ts';
import { recordWasmMemory } from './wasm-memory.ts';
import type { DataMessage, FromWorker, ShardStats, ToWorker } from './workers.ts';

// ORT's WebAssembly memory in this thread, reported with each shard.
const wasmBytes = recordWasmMemory();

// A full GC before the after-load sample, so that it counts live data, not the loaders' garbage.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const port = parentPort!;
const { recipe, source, shards, splitShards, validate, live, liveMemory } = workerData as {
  liveMemory: boolean;
  recipe: Recipe;
  source: InputSource;
  shards: number;
  splitShards: number;
  validate: boolean;
  live: boolean;
};
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let heapPeak = 0;
let externalPeak = 0;
const sample = () => {
  // An ArrayBuffer's external memory is released by the sweep after the GC that finds it
  // unreachable, so one collection can leave it counted; two do not.
  if (liveMemory) {
    collectGarbage();
    collectGarbage();
  }
  const h = getHeapStatistics();
  heapPeak = Math.max(heapPeak, h.used_heap_size);
  externalPeak = Math.max(externalPeak, h.external_memory);
};
setRunObserver(sample);

try {
  // The first message: the dataset files the main thread read, or null (read them here).
  const { files } = await new Promise<DataMessage>((resolve) => port.once('message', resolve));
  const inputs = await loadPipelineInputs(
    recipe,
    validate,
    source,
    files ? sharedDataSource(files) : nodeDataSource(),
  );
  // What the Node adapter holds before any shard: the task's data (whole dataset files) and
  // model bytes; a Worker reads chunks from R2 instead, so shards are also reported above it.
  collectGarbage();
  const loaded = getHeapStatistics();
  const stats = (t0: number, outputBytes: number): ShardStats => ({
    seconds: (performance.now() - t0) / 1000,
    wasmBytes: wasmBytes(),
    heapPeakBytes: heapPeak,
    externalPeakBytes: externalPeak,
    heapAfterLoadBytes: loaded.used_heap_size,
    externalAfterLoadBytes: loaded.external_memory,
    outputBytes,
  });
  const startShard = () => {
    heapPeak = 0;
    externalPeak = 0;
    sample();
    return performance.now();
  };
  const postDone = (phase: string, index: number, output: unknown, t0: number) => {
    sample();
    const bytes = encodeShardOutput(output);
    post({ kind: 'done', phase, index, output: bytes, stats: stats(t0, bytes.length) }, [
      bytes.buffer as ArrayBuffer,
    ]);
  };
  const postError = (err: unknown) => {
    const e = err as Error;
    post({ kind: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
  };
  if (live) runLive(startShard, postDone, postError);
  else {
    const cache = new Map<string, unknown[]>();
    let queue = Promise.resolve();
    port.on('message', (m: ToWorker) => {
      queue = queue.then(async () => {
        if (m.kind === 'phase') {
          cache.set(
            m.phase,
            m.outputs.map((o) => decodeShardOutput(o)),
          );
          return;
        }
        try {
          const t0 = startShard();
          const r = await replayPipeline(
            inputs,
            { shards, splitShards, validate },
            { cache, shard: { phase: m.phase, index: m.index } },
          );
          if (r.kind !== 'shard') throw new Error(`replay ended with '${r.kind}', not the shard`);
          postDone(m.phase, m.index, r.output, t0);
        } catch (err) {
          postError(err);
        }
      });
    });
  }

  /** The live mode: one run of the pipeline whose executor serves the main thread. */
  function runLive(
    begin: () => number,
    done: (phase: string, index: number, output: unknown, t0: number) => void,
    fail: (err: unknown) => void,
  ) {
    const requests: { phase: string; index: number }[] = [];
    const finished = new Map<string, Uint8Array[]>();
    let failed: unknown;
    let wake: (() => void) | undefined;
    port.on('message', (m: ToWorker) => {
      if (m.kind === 'phase') finished.set(m.phase, m.outputs);
      else if (failed !== undefined) fail(failed);
      else requests.push({ phase: m.phase, index: m.index });
      const w = wake;
      wake = undefined;
      w?.();
    });
    const executor: ShardExecutor = async <I, O>(
      phase: string,
      shardInputs: readonly I[],
      run: (input: I, index: number) => Promise<O>,
    ) => {
      for (;;) {
        const r = requests[0];
        if (r && r.phase === phase) {
          requests.shift();
          if (!(r.index >= 0 && r.index < shardInputs.length))
            throw new RangeError(
              `shard ${r.index} of phase '${phase}' does not exist (${shardInputs.length} shards)`,
            );
          const t0 = begin();
          done(phase, r.index, await run(shardInputs[r.index]!, r.index), t0);
          continue;
        }
        const outputs = finished.get(phase);
        if (outputs) {
          finished.delete(phase);
          return outputs.map((o) => decodeShardOutput(o) as O);
        }
        // Messages arrive in order: a phase's outputs before any shard of a later phase.
        if (r)
          throw new Error(
            `the worker's run reached phase '${phase}' but was sent a shard of '${r.phase}' (the runs diverged)`,
          );
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    };
    runPipeline(inputs, { shards, splitShards, validate, executor }).catch((err: unknown) => {
      failed = err;
      fail(err);
    });
  }
  post({ kind: 'ready' });
} catch (err) {
  const e = err as Error;
  post({ kind: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
}
