/**
 * One shard worker of cli/workers.ts: loads the recipe's task once, keeps the cache of finished
 * phases it is sent, and for each assigned shard replays the pipeline up to that shard, runs it
 * and posts the encoded output with its measurements.
 */

import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { decodeShardOutput, encodeShardOutput, replayPipeline } from '../core/pipeline/replay.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { setRunObserver } from '../core/runtime/index.ts';
import { type FromWorker, loadRecipeInputs, type ToWorker } from './workers.ts';

// ORT's WebAssembly memory (the threaded build imports a WebAssembly.Memory created in JS):
// record every Memory created in this thread to report its size.
const memories: WebAssembly.Memory[] = [];
const NativeMemory = WebAssembly.Memory;
WebAssembly.Memory = new Proxy(NativeMemory, {
  construct(target, args) {
    const m = Reflect.construct(target, args) as WebAssembly.Memory;
    memories.push(m);
    return m;
  },
}) as typeof WebAssembly.Memory;

// A full GC before the after-load sample, so that it counts live data, not the loaders' garbage.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const port = parentPort!;
const { recipe, shards, validate } = workerData as {
  recipe: Recipe;
  shards: number;
  validate: boolean;
};
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let heapPeak = 0;
let externalPeak = 0;
const sample = () => {
  const h = getHeapStatistics();
  heapPeak = Math.max(heapPeak, h.used_heap_size);
  externalPeak = Math.max(externalPeak, h.external_memory);
};
setRunObserver(sample);

try {
  const inputs = await loadRecipeInputs(recipe, validate);
  // What the Node adapter holds before any shard: the task's data (whole dataset files) and
  // model bytes; a Worker reads chunks from R2 instead, so shards are also reported above it.
  collectGarbage();
  const loaded = getHeapStatistics();
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
        const t0 = performance.now();
        heapPeak = 0;
        externalPeak = 0;
        sample();
        const r = await replayPipeline(
          inputs,
          { shards, validate },
          {
            cache,
            shard: { phase: m.phase, index: m.index },
          },
        );
        if (r.kind !== 'shard') throw new Error(`replay ended with '${r.kind}', not the shard`);
        sample();
        const output = encodeShardOutput(r.output);
        post(
          {
            kind: 'done',
            phase: m.phase,
            index: m.index,
            output,
            stats: {
              seconds: (performance.now() - t0) / 1000,
              wasmBytes: memories.reduce((s, mem) => s + mem.buffer.byteLength, 0),
              heapPeakBytes: heapPeak,
              externalPeakBytes: externalPeak,
              heapAfterLoadBytes: loaded.used_heap_size,
              externalAfterLoadBytes: loaded.external_memory,
            },
          },
          [output.buffer as ArrayBuffer],
        );
      } catch (err) {
        const e = err as Error;
        post({ kind: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
      }
    });
  });
  post({ kind: 'ready' });
} catch (err) {
  const e = err as Error;
  post({ kind: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
}
