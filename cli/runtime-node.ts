/**
 * Node adapter for core/runtime: the WASM backend of onnxruntime-web in plain Node.
 *
 * `onnxruntime-web` resolves to its Node build (`ort.node.min.mjs`, export condition "node").
 * The .wasm bytes are read from node_modules here and handed over as `env.wasm.wasmBinary`, so ORT
 * never resolves a URL for them: no fetch, no network, whatever `wasmPaths` might say.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { configureRuntime, type OrtModule, type RuntimeLoader } from '../core/runtime/index.ts';

const require = createRequire(import.meta.url);

/** Path of the ORT WASM binary that matches the installed onnxruntime-web. */
export function ortWasmPath(): string {
  return require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
}

/**
 * V8's budget for tiering a WebAssembly function up from its baseline compiler (Liftoff) to its
 * optimizing one (TurboFan), in V8's rough "bytes executed" (V8's default: 1,800,000). V8
 * compiles tier-ups on background threads. With the default, ORT's first minutes in a thread
 * tier up thousands of lukewarm functions; on a 2-core machine running two shard workers that
 * compilation takes CPU from the workers themselves (gdb during the sensitivity phase of a
 * `score --workers 2`: two background threads in TurboFan's wasm pipeline while the workers run
 * at about half speed). 100x the default still tiers the kernels that carry the time (their
 * steady throughput is unchanged) and skips most of the rest (bench/RESULTS.md, the update of
 * 2026-11-27 06:20 UTC; bench/tiering.ts measures it). Both tiers compute the same IEEE results,
 * so outputs are unchanged (test/node/runtime.test.ts pins them by digest).
 * `CANN_QUANT_WASM_TIERING_BUDGET` overrides it (a positive integer, or `v8` for V8's default).
 */
export const WASM_TIERING_BUDGET = 180_000_000;

/** Applies {@link WASM_TIERING_BUDGET} (or the override); before any WebAssembly is compiled. */
export function tuneWasmTiering(env: NodeJS.ProcessEnv = process.env): number | 'v8' {
  const raw = env.CANN_QUANT_WASM_TIERING_BUDGET;
  if (raw === 'v8') return 'v8';
  const budget = raw === undefined || raw === '' ? WASM_TIERING_BUDGET : Number(raw);
  if (!Number.isSafeInteger(budget) || budget <= 0)
    throw new RangeError(
      `CANN_QUANT_WASM_TIERING_BUDGET must be a positive integer or 'v8', got '${raw}'`,
    );
  setFlagsFromString(`--wasm-tiering-budget=${budget}`);
  return budget;
}

export const nodeRuntimeLoader: RuntimeLoader = {
  name: 'node',
  async load(): Promise<OrtModule> {
    tuneWasmTiering();
    const [ort, wasm] = await Promise.all([import('onnxruntime-web'), readFile(ortWasmPath())]);
    ort.env.wasm.wasmBinary = wasm;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    return ort;
  },
};

/** Registers the Node loader with core/runtime (idempotent). */
export function useNodeRuntime(): void {
  configureRuntime(nodeRuntimeLoader);
}
