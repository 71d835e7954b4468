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
import {
  type DepthwiseGeometry,
  depthwiseBackpropFilter,
  depthwiseBackpropInput,
} from './depthwise.ts';

export { tf };

/**
 * Kernels the training op set needs that tfjs-backend-wasm does not have: the depthwise
 * convolution's gradients (MobileNet-style models), implemented in depthwise.ts and
 * registered on the wasm backend. (tfjs-backend-cpu's versions, tried first, took 8 s per
 * training step of fmnist-mobilenet; these loops keep the channel axis innermost.)
 */
export const WASM_EXTRA_KERNELS = [
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
] as const;

interface WasmBackend {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: tf.backend_util.BackendValues,
  ): tf.TensorInfo;
}

interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'same' | 'valid' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

function registerWasmExtras(): void {
  const geometry = (xShape: number[], wShape: number[], a: DepthwiseAttrs): DepthwiseGeometry => {
    if (wShape[3] !== 1)
      throw new RangeError(
        `depthwise gradient: channel multiplier ${wShape[3]} (only 1 is implemented)`,
      );
    return tf.backend_util.computeConv2DInfo(
      xShape as [number, number, number, number],
      wShape as [number, number, number, number],
      a.strides,
      a.dilations,
      a.pad,
      a.dimRoundingMode,
      true,
    );
  };
  const f32 = (b: WasmBackend, t: tf.TensorInfo) => b.readSync(t.dataId) as Float32Array;
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropInput', 'wasm'))
    tf.registerKernel({
      kernelName: 'DepthwiseConv2dNativeBackpropInput',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as unknown as WasmBackend;
        const a = attrs as unknown as DepthwiseAttrs;
        const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
        const g = geometry(a.inputShape!, filter.shape, a);
        const dx = depthwiseBackpropInput(g, f32(b, dy), f32(b, filter));
        return b.makeOutput(a.inputShape!, 'float32', undefined, dx);
      },
    });
  if (!tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm'))
    tf.registerKernel({
      kernelName: 'DepthwiseConv2dNativeBackpropFilter',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as unknown as WasmBackend;
        const a = attrs as unknown as DepthwiseAttrs;
        const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
        const g = geometry(x.shape, a.filterShape!, a);
        const dw = depthwiseBackpropFilter(g, f32(b, x), f32(b, dy));
        return b.makeOutput(a.filterShape!, 'float32', undefined, dw);
      },
    });
}

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
  if (backend === 'wasm') registerWasmExtras();
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`initTraining: TensorFlow.js backend '${backend}' failed to start`);
  await tf.ready();
}
