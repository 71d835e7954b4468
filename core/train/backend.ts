/**
 * TensorFlow.js for training: the autodiff engine of core/train (issue 9).
 *
 * Why TensorFlow.js: a maintained autodiff library with pure JavaScript/WASM backends that runs
 * in Node offline from npm, with no native bindings. `@tensorflow/tfjs` is imported (not
 * `tfjs-core` alone) because its Node bundle is what registers the gradient functions; tfjs-core's
 * CommonJS build registers none. The `wasm` backend (XNNPACK) is the training backend: its conv
 * and matmul kernels are an order of magnitude faster than `cpu` (measured: a 3x3 64->64 conv
 * train step on 32x14x14, ~1 s wasm vs 10-17 s cpu on this machine under load); `cpu` stays as the
 * reference backend of the tests.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export { tf };

/** Backend of the training engine. */
export type TrainBackend = 'wasm' | 'cpu';

let wasmPathSet = false;

/**
 * Selects the backend. `wasmDir` is the folder holding tfjs-backend-wasm's .wasm files (the
 * Node adapter passes node_modules/@tensorflow/tfjs-backend-wasm/dist/); nothing is downloaded.
 */
export async function initTraining(backend: TrainBackend, wasmDir?: string): Promise<void> {
  if (backend === 'wasm' && !wasmPathSet) {
    if (!wasmDir) throw new RangeError('initTraining: the wasm backend needs the .wasm folder');
    setWasmPaths(wasmDir.endsWith('/') ? wasmDir : `${wasmDir}/`);
    wasmPathSet = true;
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`initTraining: TensorFlow.js backend '${backend}' failed to start`);
  await tf.ready();
}
