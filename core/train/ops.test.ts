/**
 * The building blocks of the training forward pass against TensorFlow.js's own ops, on the cpu
 * backend (the reference: it has the library's Conv2DBackpropFilter/Input kernels).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { roundToFp16 } from '../emulator/fp16.ts';
import { initTraining, tf } from './backend.ts';
import { conv2dValid, fp16Round, noGrad, steRound } from './ops.ts';
import { maxRelDiff as relDiff } from './testing.ts';

beforeAll(async () => {
  await initTraining('cpu');
});

const maxRelDiff = (a: tf.Tensor, b: tf.Tensor): number => relDiff(a.dataSync(), b.dataSync());

describe('conv2dValid', () => {
  it.each([
    [
      [2, 9, 9, 3],
      [3, 3, 3, 4],
      [1, 1],
    ],
    [
      [2, 10, 10, 3],
      [3, 3, 3, 5],
      [2, 2],
    ],
    [
      [3, 7, 8, 4],
      [1, 1, 4, 6],
      [2, 2],
    ],
    [
      [1, 11, 9, 2],
      [3, 2, 2, 3],
      [2, 1],
    ],
    [
      [2, 12, 12, 3],
      [3, 3, 3, 4],
      [1, 1],
      [2, 2],
    ],
    [
      [1, 13, 11, 2],
      [3, 2, 2, 3],
      [1, 1],
      [3, 2],
    ],
  ] as const)(
    'x %j, w %j, strides %j, dilations %j: value and both gradients equal tf.conv2d',
    (xs, ws, s, dil?: readonly [number, number]) => {
      const d: [number, number] = dil ? [dil[0], dil[1]] : [1, 1];
      tf.tidy(() => {
        const x = tf.randomNormal([...xs], 0, 1, 'float32', 1) as tf.Tensor4D;
        const w = tf.randomNormal([...ws], 0, 1, 'float32', 2) as tf.Tensor4D;
        const dy = (f: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor, filter: tf.Tensor4D) =>
          tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            tf.sum(
              tf.mul(
                f(a as tf.Tensor4D, b as tf.Tensor4D),
                tf.sin(f(a as tf.Tensor4D, b as tf.Tensor4D)),
              ),
            ),
          )([x, filter]);
        // reference: tf.conv2d with the filter dilated by zero insertion (tf.conv2d's own
        // gradients reject dilations); the filter gradient is the dilated filter's at the taps
        const [kh, kw, ci, co] = ws;
        const dilate = (b: tf.Tensor4D): tf.Tensor4D => {
          const v = b.arraySync();
          const out = tf.buffer([(kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1, ci, co]);
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++)
              for (let p = 0; p < ci; p++)
                for (let q = 0; q < co; q++) out.set(v[i]![j]![p]![q]!, i * d[0], j * d[1], p, q);
          return out.toTensor() as tf.Tensor4D;
        };
        const ref = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.conv2d(a, b, [s[0], s[1]], 'valid');
        const ours = (a: tf.Tensor4D, b: tf.Tensor4D) => conv2dValid(a, b, [s[0], s[1]], d);
        const wd = dilate(w);
        expect(maxRelDiff(ours(x, w), ref(x, wd))).toBeLessThan(1e-6);
        const [gx, gw] = dy(ours, w);
        const [rx, rwd] = dy(ref, wd);
        const rw = tf.stridedSlice(
          rwd!,
          [0, 0, 0, 0],
          [kh * d[0], kw * d[1], ci, co],
          [d[0], d[1], 1, 1],
        );
        expect(gx!.shape).toEqual(rx!.shape);
        expect(gw!.shape).toEqual(rw.shape);
        expect(maxRelDiff(gx!, rx!)).toBeLessThan(1e-5);
        expect(maxRelDiff(gw!, rw)).toBeLessThan(1e-5);
      });
    },
  );
});

describe('straight-through roundings', () => {
  it('fp16Round equals the emulator fp16 rounding on 20,000 values incl. subnormals and ties', () => {
    const vals: number[] = [];
    let a = 12345;
    const rand = () => {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      return a / 2 ** 32;
    };
    for (let i = 0; i < 20_000; i++) {
      const e = Math.floor(rand() * 46) - 28; // 2^-28 .. 2^17
      vals.push(Math.fround((rand() < 0.5 ? -1 : 1) * (1 + rand()) * 2 ** e));
    }
    // exact fp16 midpoints (ties) in the normal range and subnormal range, and the overflow edge
    vals.push(1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 65519, 65520, 1e6, -1e6);
    const got = tf.tidy(() => fp16Round(tf.tensor1d(vals)).dataSync());
    const bad = vals.filter((v, i) => got[i] !== roundToFp16(v, 'saturate'));
    expect(bad).toEqual([]);
  });

  it('roundings pass gradients straight through; noGrad blocks them', () => {
    const x = tf.tensor1d([0.3, 1.7, -2.5]);
    const g1 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(steRound(v), 3)))(x);
    expect(Array.from(g1.dataSync())).toEqual([3, 3, 3]);
    const g2 = tf.grad((v: tf.Tensor) => tf.sum(fp16Round(v)))(x);
    expect(Array.from(g2.dataSync())).toEqual([1, 1, 1]);
    const g3 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(noGrad(v), v)))(x);
    expect(Array.from(g3.dataSync()).map((v) => Math.fround(v))).toEqual(Array.from(x.dataSync()));
  });
});
