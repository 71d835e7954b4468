import { describe, expect, it } from 'vitest';
import { seededPrng as mulberry32 } from '../random.ts';
import { tensor } from '../tensor/index.ts';
import {
  conv2dInt8,
  dotInt8,
  foldActivationOffsetIntoBias,
  gemmInt8,
  macInt32,
  matmulInt8,
  weightSumsPerOutput,
} from './accumulate.ts';

const i8 = (dims: number[], v: number[]) => tensor('int8', dims, Int8Array.from(v));

/** Seeded random integers for the property tests. */
function seededInts(seed: number) {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  /** `n` int32 biases: half small, half within `margin` of an int32 limit (so that sums wrap). */
  const biases = (n: number, margin: number) =>
    Int32Array.from({ length: n }, () =>
      rand() < 0.5
        ? int(-1000, 1000)
        : rand() < 0.5
          ? 2147483647 - int(0, margin)
          : -2147483648 + int(0, margin),
    );
  return { rand, int, biases };
}

describe('dotInt8 / macInt32', () => {
  it('[1,2,3].[4,-5,6] = 4 - 10 + 18 = 12; from bias 100: 112', () => {
    expect(dotInt8(Int8Array.from([1, 2, 3]), Int8Array.from([4, -5, 6]))).toBe(12);
    expect(dotInt8(Int8Array.from([1, 2, 3]), Int8Array.from([4, -5, 6]), 100)).toBe(112);
  });
  it('extreme products: (-128)(-128) = 16384, 127(-128) = -16256', () => {
    expect(dotInt8(Int8Array.from([-128, 127]), Int8Array.from([-128, -128]))).toBe(128);
  });
  it("int32 overflow wraps (two's complement): 2^31-1 + 1*1 -> -2^31", () => {
    expect(macInt32(2147483647, 1, 1)).toBe(-2147483648);
    expect(macInt32(-2147483648, -1, 1)).toBe(2147483647);
    expect(dotInt8(Int8Array.from([1]), Int8Array.from([1]), 2147483647)).toBe(-2147483648);
  });
});

describe('conv2dInt8 (hand-computed)', () => {
  const x = i8([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  it('2x2 kernel [[1,0],[0,-1]]: x[y][x] - x[y+1][x+1] = -4 everywhere; bias 10 -> 6', () => {
    const w = i8([1, 1, 2, 2], [1, 0, 0, -1]);
    const y = conv2dInt8(x, w, undefined);
    expect(y.dims).toEqual([1, 1, 2, 2]);
    expect(Array.from(y.data)).toEqual([-4, -4, -4, -4]);
    expect(Array.from(conv2dInt8(x, w, Int32Array.from([10])).data)).toEqual([6, 6, 6, 6]);
  });
  it('3x3 ones, pads 1: corner 1+2+4+5 = 12, centre 45', () => {
    const w = i8([1, 1, 3, 3], Array(9).fill(1));
    const y = conv2dInt8(x, w, undefined, { pads: [1, 1, 1, 1] });
    expect(Array.from(y.data)).toEqual([12, 21, 16, 27, 45, 33, 24, 39, 28]);
  });
  it('stride 2 with pads 1 picks the four corners of that map: 12, 16, 24, 28', () => {
    const w = i8([1, 1, 3, 3], Array(9).fill(1));
    const y = conv2dInt8(x, w, undefined, { pads: [1, 1, 1, 1], strides: [2, 2] });
    expect(y.dims).toEqual([1, 1, 2, 2]);
    expect(Array.from(y.data)).toEqual([12, 16, 24, 28]);
  });
  it('padValue fills padded taps: ones 3x3, pads 1, padValue 2 -> corner 12 + 5*2 = 22', () => {
    const w = i8([1, 1, 3, 3], Array(9).fill(1));
    const y = conv2dInt8(x, w, undefined, { pads: [1, 1, 1, 1], padValue: 2 });
    expect(y.data[0]).toBe(22);
    expect(y.data[4]).toBe(45);
  });
  it('dilation 2 with a 2x2 ones kernel: 1 + 3 + 7 + 9 = 20', () => {
    const w = i8([1, 1, 2, 2], [1, 1, 1, 1]);
    const y = conv2dInt8(x, w, undefined, { dilations: [2, 2] });
    expect(y.dims).toEqual([1, 1, 1, 1]);
    expect(y.data[0]).toBe(20);
  });
  it('depthwise (group = Cin = 2): channel 0 x 2, channel 1 x -1', () => {
    const xin = i8([1, 2, 2, 2], [1, 2, 3, 4, 10, 20, 30, 40]);
    const w = i8([2, 1, 1, 1], [2, -1]);
    const y = conv2dInt8(xin, w, Int32Array.from([0, 1]), { group: 2 });
    expect(Array.from(y.data)).toEqual([2, 4, 6, 8, -9, -19, -29, -39]);
  });
  it('group 2 with Cin 4, Cout 2: each output sees only its half of the channels', () => {
    const xin = i8([1, 4, 1, 1], [1, 2, 3, 4]);
    const w = i8([2, 2, 1, 1], [1, 1, 1, -1]); // out0 = x0 + x1 = 3; out1 = x2 - x3 = -1
    expect(Array.from(conv2dInt8(xin, w, undefined, { group: 2 }).data)).toEqual([3, -1]);
  });
  it('rejects inconsistent groups and a wrong bias length', () => {
    expect(() => conv2dInt8(x, i8([1, 2, 1, 1], [1, 1]), undefined)).toThrow(RangeError);
    expect(() => conv2dInt8(x, i8([1, 1, 1, 1], [1]), Int32Array.from([1, 2]))).toThrow(RangeError);
  });
});

/**
 * The textbook definition (one multiply-accumulate per output element and tap, wrapped to int32
 * after each): the oracle for conv2dInt8's plane-at-a-time loop.
 */
function conv2dTextbook(
  x: Int8Array,
  [n, cin, h, w]: number[],
  wt: Int8Array,
  [cout, cpg, kh, kw]: number[],
  bias: Int32Array | undefined,
  a: { strides: number[]; pads: number[]; dilations: number[]; group: number; padValue: number },
): Int32Array {
  const [sh, sw] = a.strides as [number, number];
  const [pt, pl, pb, pr] = a.pads as [number, number, number, number];
  const [dh, dw] = a.dilations as [number, number];
  const oh = Math.floor((h! + pt + pb - dh * (kh! - 1) - 1) / sh) + 1;
  const ow = Math.floor((w! + pl + pr - dw * (kw! - 1) - 1) / sw) + 1;
  const out = new Int32Array(n! * cout! * oh * ow);
  for (let b = 0; b < n!; b++)
    for (let co = 0; co < cout!; co++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let acc = bias ? bias[co]! : 0;
          const g = Math.floor(co / (cout! / a.group));
          for (let ci = 0; ci < cpg!; ci++)
            for (let ky = 0; ky < kh!; ky++)
              for (let kx = 0; kx < kw!; kx++) {
                const [iy, ix] = [oy * sh - pt + ky * dh, ox * sw - pl + kx * dw];
                const inside = iy >= 0 && iy < h! && ix >= 0 && ix < w!;
                const xv = inside
                  ? x[((b * cin! + g * cpg! + ci) * h! + iy) * w! + ix]!
                  : a.padValue;
                acc = macInt32(acc, xv, wt[((co * cpg! + ci) * kh! + ky) * kw! + kx]!);
              }
          out[((b * cout! + co) * oh + oy) * ow + ox] = acc;
        }
  return out;
}

describe('conv2dInt8 against the textbook loop (seeded random shapes)', () => {
  it('equals it bit for bit: strides, asymmetric pads, dilations, groups, padValue, wrapping biases', () => {
    const { rand, int, biases } = seededInts(20261126);
    let compared = 0;
    for (let trial = 0; trial < 300; trial++) {
      const group = [1, 1, 2, 3][int(0, 3)]!;
      const cpg = int(1, 3);
      // up to 9 output channels per group: blocks of 4 (conv2dInt8's CO_BLOCK) and remainders
      const cout = group * int(1, 9);
      const [h, w, kh, kw] = [int(1, 9), int(1, 9), int(1, 4), int(1, 4)];
      const attrs = {
        strides: [int(1, 3), int(1, 3)],
        pads: [int(0, 3), int(0, 3), int(0, 3), int(0, 3)],
        dilations: [int(1, 3), int(1, 3)],
        group,
        padValue: int(-128, 127),
      };
      const oh =
        Math.floor(
          (h + attrs.pads[0]! + attrs.pads[2]! - attrs.dilations[0]! * (kh - 1) - 1) /
            attrs.strides[0]!,
        ) + 1;
      const ow =
        Math.floor(
          (w + attrs.pads[1]! + attrs.pads[3]! - attrs.dilations[1]! * (kw - 1) - 1) /
            attrs.strides[1]!,
        ) + 1;
      if (oh <= 0 || ow <= 0) continue;
      const xd = [2, group * cpg, h, w];
      const wd = [cout, cpg, kh, kw];
      const x = Int8Array.from({ length: 2 * group * cpg * h * w }, () => int(-128, 127));
      // some zero taps (skipped by the fast loop) and some extreme ones
      const wt = Int8Array.from({ length: cout * cpg * kh * kw }, () =>
        rand() < 0.2 ? 0 : int(-128, 127),
      );
      const bias = biases(cout, 5000);
      const want = conv2dTextbook(x, xd, wt, wd, bias, attrs);
      const got = conv2dInt8(tensor('int8', xd, x), tensor('int8', wd, wt), bias, {
        strides: attrs.strides as [number, number],
        pads: attrs.pads as [number, number, number, number],
        dilations: attrs.dilations as [number, number],
        group,
        padValue: attrs.padValue,
      });
      expect(got.dims).toEqual([2, cout, oh, ow]);
      expect(Array.from(got.data)).toEqual(Array.from(want));
      compared++;
    }
    // shapes with an empty output are skipped; most are not
    expect(compared).toBeGreaterThan(180);
  });
});

describe('gemmInt8 / matmulInt8 (hand-computed)', () => {
  const a = i8([2, 3], [1, 2, 3, 4, 5, 6]);
  const b = i8([3, 2], [1, -1, 0, 2, -1, 1]);
  it('[[1,2,3],[4,5,6]] x [[1,-1],[0,2],[-1,1]] = [[-2, 6], [-2, 12]], + bias [1, -1]', () => {
    // row0: 1-3 = -2; -1+4+3 = 6. row1: 4-6 = -2; -4+10+6 = 12.
    expect(Array.from(matmulInt8(a, b).data)).toEqual([-2, 6, -2, 12]);
    expect(Array.from(matmulInt8(a, b, Int32Array.from([1, -1])).data)).toEqual([-1, 5, -1, 11]);
  });
  it('transB reads B as [N, K] (FullyConnection layout); transA reads A as [K, M]', () => {
    const bt = i8([2, 3], [1, 0, -1, -1, 2, 1]);
    expect(Array.from(gemmInt8(a, bt, undefined, { transB: true }).data)).toEqual([-2, 6, -2, 12]);
    const at = i8([3, 2], [1, 4, 2, 5, 3, 6]);
    expect(Array.from(gemmInt8(at, b, undefined, { transA: true }).data)).toEqual([-2, 6, -2, 12]);
  });
});

describe('gemmInt8 against per-element dot products (seeded)', () => {
  it('equals dotInt8 (wrapping after every multiply-add) for every transA / transB, biases near the int32 limits', () => {
    const { rand, int, biases } = seededInts(20261127);
    for (let trial = 0; trial < 60; trial++) {
      const [m, k, n] = [int(1, 7), int(1, 40), int(1, 7)];
      const transA = rand() < 0.5;
      const transB = rand() < 0.5;
      const a = Int8Array.from({ length: m * k }, () => int(-128, 127));
      const b = Int8Array.from({ length: k * n }, () => int(-128, 127));
      const bias = biases(n, 9000);
      const row = (i: number) =>
        Int8Array.from({ length: k }, (_, p) => (transA ? a[p * m + i]! : a[i * k + p]!));
      const col = (j: number) =>
        Int8Array.from({ length: k }, (_, p) => (transB ? b[j * k + p]! : b[p * n + j]!));
      const want = Array.from({ length: m * n }, (_, e) =>
        dotInt8(row(Math.floor(e / n)), col(e % n), bias[e % n]!),
      );
      const got = gemmInt8(
        tensor('int8', transA ? [k, m] : [m, k], a),
        tensor('int8', transB ? [n, k] : [k, n], b),
        bias,
        { transA, transB },
      );
      expect(got.dims).toEqual([m, n]);
      expect(Array.from(got.data)).toEqual(want);
    }
  });
});

describe('activation offset folding', () => {
  it('weightSumsPerOutput: OIHW over axis 0, [K, N] over axis 1', () => {
    expect(Array.from(weightSumsPerOutput(i8([2, 1, 2, 2], [1, 2, 3, 4, -1, -1, -1, 5])))).toEqual([
      10, 2,
    ]);
    expect(Array.from(weightSumsPerOutput(i8([2, 2], [1, 2, 3, 4]), 1))).toEqual([4, 6]);
  });
  it('bias [100, -5], sums [3, -2], offset 10 -> [100 - 30, -5 + 20] = [70, 15]', () => {
    expect(
      Array.from(
        foldActivationOffsetIntoBias(Int32Array.from([100, -5]), Int32Array.from([3, -2]), 10),
      ),
    ).toEqual([70, 15]);
    expect(Array.from(foldActivationOffsetIntoBias(undefined, Int32Array.from([3]), -4))).toEqual([
      12,
    ]);
  });
  it('folding wraps in int32 like the accumulator', () => {
    const folded = foldActivationOffsetIntoBias(
      Int32Array.from([-2147483648]),
      Int32Array.from([1]),
      1,
    );
    expect(folded[0]).toBe(2147483647);
  });
  it('conv(q, w, bias - off*sum(w), padValue = off) == sum((q - off) * w) + bias with zero padding (seeded)', () => {
    const rnd = mulberry32(42);
    const ri = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
    for (let trial = 0; trial < 40; trial++) {
      const group = [1, 2, 3][ri(0, 2)]!;
      const depthwise = rnd() < 0.3;
      const cin = depthwise ? group : group * ri(1, 3);
      const cout = depthwise ? group : group * ri(1, 2);
      const cpg = cin / group;
      const [h, w, kh, kw] = [ri(3, 6), ri(3, 6), ri(1, 3), ri(1, 3)];
      const pads = [ri(0, 2), ri(0, 2), ri(0, 2), ri(0, 2)] as const;
      const strides = [ri(1, 2), ri(1, 2)] as const;
      const dilations = [ri(1, 2), ri(1, 2)] as const;
      const off = ri(-30, 30);
      const q = Int8Array.from({ length: cin * h * w }, () => ri(-128, 127));
      const wt = Int8Array.from({ length: cout * cpg * kh * kw }, () => ri(-128, 127));
      const bias = Int32Array.from({ length: cout }, () => ri(-100000, 100000));
      const W = tensor('int8', [cout, cpg, kh, kw], wt);
      const attrs = { group, pads, strides, dilations };
      const oh = Math.floor((h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0]) + 1;
      const ow = Math.floor((w + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1]) + 1;
      if (oh <= 0 || ow <= 0) continue;
      const folded = foldActivationOffsetIntoBias(bias, weightSumsPerOutput(W), off);
      const got = conv2dInt8(tensor('int8', [1, cin, h, w], q), W, folded, {
        ...attrs,
        padValue: off,
      });
      // Independent naive formula in plain numbers (no wrapping needed at these sizes).
      for (let co = 0; co < cout; co++) {
        const g = Math.floor(co / (cout / group));
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            let s = bias[co]!;
            for (let ci = 0; ci < cpg; ci++) {
              for (let ky = 0; ky < kh; ky++) {
                for (let kx = 0; kx < kw; kx++) {
                  const iy = oy * strides[0] - pads[0] + ky * dilations[0];
                  const ix = ox * strides[1] - pads[1] + kx * dilations[1];
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue; // zero padding
                  const c = g * cpg + ci;
                  s +=
                    (q[(c * h + iy) * w + ix]! - off) * wt[((co * cpg + ci) * kh + ky) * kw + kx]!;
                }
              }
            }
            expect(got.data[(co * oh + oy) * ow + ox]).toBe(s);
          }
        }
      }
    }
  });
});
