/**
 * The depthwise convolution's gradients registered on the wasm backend (depthwise.ts) against
 * TensorFlow.js's own cpu kernels, through tf.grads: strides 1 and 2, 'valid' and 'same'
 * padding, 3x3 and 5x5 filters. Float32 sums in a different order: relative difference < 1e-5.
 */
import { describe, expect, it } from 'vitest';
import { tfjsWasmDir } from '../../cli/train-backend.ts';
import { seededPrng } from '../random.ts';
import { initTraining, tf } from './backend.ts';
import { maxRelDiff } from './testing.ts';

function gradients(
  x: Float32Array,
  w: Float32Array,
  xShape: number[],
  wShape: number[],
  stride: number,
  pad: 'valid' | 'same',
): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      // a non-uniform upstream gradient: sum of y * y
      tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad))),
    )([tf.tensor(x, xShape), tf.tensor(w, wShape)]);
    return [dx!.dataSync() as Float32Array, dw!.dataSync() as Float32Array];
  });
}

describe('depthwise convolution gradients on the wasm backend', () => {
  it.each([
    [[2, 9, 9, 8], 3, 1, 'valid'],
    [[2, 10, 10, 8], 3, 2, 'same'],
    [[3, 14, 14, 16], 3, 2, 'valid'],
    [[1, 12, 11, 5], 5, 1, 'same'],
  ] as const)(
    'x %j, %ix%i filter, stride %i, %s: equal to tfjs-cpu',
    async (xShape, k, stride, pad) => {
      const rand = seededPrng((xShape as readonly number[]).reduce((p, d) => p * d, k + stride));
      const wShape = [k, k, xShape[3], 1];
      const x = Float32Array.from(
        { length: (xShape as readonly number[]).reduce((p, d) => p * d, 1) },
        () => rand() * 2 - 1,
      );
      const w = Float32Array.from({ length: k * k * xShape[3] }, () => rand() * 2 - 1);
      await initTraining('cpu');
      const [dxCpu, dwCpu] = gradients(x, w, [...xShape], wShape, stride, pad);
      await initTraining('wasm', tfjsWasmDir());
      const [dxWasm, dwWasm] = gradients(x, w, [...xShape], wShape, stride, pad);
      expect(dxWasm.length).toBe(x.length);
      expect(dwWasm.length).toBe(w.length);
      expect(maxRelDiff(dxWasm, dxCpu)).toBeLessThan(1e-5);
      expect(maxRelDiff(dwWasm, dwCpu)).toBeLessThan(1e-5);
    },
  );
});
