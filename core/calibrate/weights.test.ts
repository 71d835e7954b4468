import { describe, expect, it } from 'vitest';
import type { TensorScheme } from '../formats/targets.ts';
import { activationParams } from '../quantize/params.ts';
import { type FloatWeight, quantizeWeight } from '../quantize/weights.ts';
import { valuesQuantError } from './mse.ts';
import { channelValues, weightClip } from './weights.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(seed: number, n: number, sigma = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const m = Math.sqrt(-2 * Math.log(1 - r()));
    return sigma * m * Math.cos(2 * Math.PI * r());
  });
}

const int8PerChannel: TensorScheme = { type: 'int8', symmetric: true, granularity: 'per-channel' };
const uint8PerTensor: TensorScheme = { type: 'uint8', symmetric: false, granularity: 'per-tensor' };

describe('per-channel weight clips', () => {
  it('channelValues splits along the output axis (OIHW axis 0, IOHW axis 1)', () => {
    const data = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i);
    const oihw: FloatWeight = { dims: [2, 3, 2], data, axis: 0 };
    expect(channelValues(oihw).map((c) => Array.from(c))).toEqual([
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10, 11],
    ]);
    const iohw: FloatWeight = { dims: [2, 3, 2], data, axis: 1 };
    expect(channelValues(iohw).map((c) => Array.from(c))).toEqual([
      [0, 1, 6, 7],
      [2, 3, 8, 9],
      [4, 5, 10, 11],
    ]);
  });

  it("'max' gives the scales quantizeWeight uses", () => {
    const w: FloatWeight = { dims: [4, 8, 3, 3], data: gaussian(1, 4 * 72, 0.1), axis: 0 };
    const clips = weightClip(channelValues(w), 'max', { scheme: int8PerChannel });
    const q = quantizeWeight(w, int8PerChannel);
    clips.forEach((c, k) => {
      expect(activationParams(c, int8PerChannel).scale).toBe(q.scales[k]);
    });
    // Per tensor: all values as one channel.
    const qt = quantizeWeight(w, uint8PerTensor);
    const [ct] = weightClip([w.data], 'max', { scheme: uint8PerTensor });
    const p = activationParams(ct!, uint8PerTensor);
    expect(p.scale).toBe(qt.scales[0]);
    expect(p.zeroPoint).toBe(qt.zeroPoints[0]);
  });

  it("'mse' never does worse than 'max' on the channel's own error", () => {
    const err = (v: ArrayLike<number>, c: { lo: number; hi: number }, scheme = int8PerChannel) =>
      valuesQuantError(v, activationParams(c, scheme));
    const smooth = gaussian(2, 576, 0.05);
    const spiky = gaussian(3, 576, 0.05);
    spiky[17] = 0.8; // one weight at 16 sigma: clipping it costs more than the rounding it saves
    const r = rng(4);
    const cauchy = Float32Array.from({ length: 576 }, () => 0.01 * Math.tan(Math.PI * (r() - 0.5)));
    const chans = [smooth, spiky, cauchy];
    const mse = weightClip(chans, 'mse', { scheme: int8PerChannel });
    const max = weightClip(chans, 'max');
    chans.forEach((v, k) => {
      expect(err(v, mse[k]!)).toBeLessThanOrEqual(err(v, max[k]!));
    });
    const amax = (c: { lo: number; hi: number }) => Math.max(-c.lo, c.hi);
    expect(amax(mse[1]!)).toBeCloseTo(0.8, 6); // the lone outlier is kept
    // Int8 on a few hundred weights: the largest values dominate the squared error, so even a
    // Cauchy channel keeps (nearly) its max; clipping pays off only for larger channels or int4.
    expect(amax(mse[2]!)).toBeGreaterThan(0.95 * amax(max[2]!));
    const r2 = rng(6);
    const big = Float32Array.from({ length: 200_000 }, () => {
      const u = r2() - 0.5;
      return -0.01 * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    });
    const [cb] = weightClip([big], 'mse', { scheme: int8PerChannel });
    const [mb] = weightClip([big], 'max');
    // Laplace(b = 0.01): the expected-MSE optimum is 9.9 b; this sample's max is 14.9 b and its
    // own squared error is smallest at 11.2 b (the sample's tail beyond 9.9 b is ~10 values).
    expect(amax(mb!)).toBeCloseTo(0.149, 2);
    expect(amax(cb!)).toBeCloseTo(0.112, 2);
    expect(err(big, cb!)).toBeLessThan(err(big, mb!));
  });

  it("'mse' for int4 clips a Gaussian channel to about 2.5 sigma (ACIQ 4-bit: 2.55 sigma)", () => {
    const int4: TensorScheme = { type: 'int4', symmetric: true, granularity: 'per-channel' };
    const v = gaussian(5, 4608, 1);
    const [c] = weightClip([v], 'mse', { scheme: int4 });
    const [m] = weightClip([v], 'max');
    const t = Math.max(-c!.lo, c!.hi);
    expect(t).toBeGreaterThan(2.2);
    expect(t).toBeLessThan(2.9);
    expect(t).toBeLessThan(Math.max(-m!.lo, m!.hi));
  });

  it('rejects NaN weights', () => {
    expect(() => weightClip([[1, Number.NaN]], 'mse')).toThrow(RangeError);
    expect(() => weightClip([[Number.NaN]], 'max')).toThrow(RangeError);
  });
});
