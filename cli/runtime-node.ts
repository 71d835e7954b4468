/**
 * Node adapter for core/runtime: the WASM backend of onnxruntime-web in plain Node.
 *
 * `onnxruntime-web` resolves to its Node build (`ort.node.min.mjs`, export condition "node").
 * The .wasm bytes are read from node_modules here and handed over as `env.wasm.wasmBinary`, so ORT
 * never resolves a URL for them: no fetch, no network, whatever `wasmPaths` might say.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { configureRuntime, type OrtModule, type RuntimeLoader } from '../core/runtime/index.ts';

const require = createRequire(import.meta.url);

/** Path of the ORT WASM binary that matches the installed onnxruntime-web. */
export function ortWasmPath(): string {
  return require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
}

export const nodeRuntimeLoader: RuntimeLoader = {
  name: 'node',
  async load(): Promise<OrtModule> {
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
