/**
 * Node adapter for core/train: the folder of TensorFlow.js's WASM backend binaries inside
 * node_modules (read from disk; nothing is fetched).
 */

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { initTraining, type TrainBackend } from '../core/train/backend.ts';

const require = createRequire(import.meta.url);

/** Folder holding tfjs-backend-wasm's .wasm files. */
export function tfjsWasmDir(): string {
  return `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'))}/`;
}

/** Starts the training engine in Node (default backend: wasm). */
export async function useNodeTraining(backend: TrainBackend = 'wasm'): Promise<void> {
  await initTraining(backend, backend === 'wasm' ? tfjsWasmDir() : undefined);
}
