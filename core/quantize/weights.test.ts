import { describe, expect, it } from 'vitest';
import { seededPrng } from '../random.ts';
import { dequantizeWeight, foldBatchNorm, quantizeWeight } from './weights.ts';

const perChannel = { type: 'int8', symmetric: true, granularity: 'per-channel' } as const;
const perTensor = { type: 'int8', symmetric: true, granularity: 'per-tensor' } as const;

describe('weight quantization', () => {
  // Two output channels of a 1x1 conv (dims [2,2,1,1]) with ranges 100x apart: the depthwise case.
  const w = {
    dims: [2, 2, 1, 1],
    axis: 0,
    data: new Float32Array([1.27, -0.635, 0.0127, 0.00635]),
  };

  it('per-channel symmetric: one scale per output channel, values on the int8 grid', () => {
    const q = quantizeWeight(w, perChannel);
    // scales come from the float32 weights: max|w| / 127 per channel
    expect([...q.scales]).toEqual([Math.fround(1.27) / 127, Math.fround(0.0127) / 127]);
    expect([...q.q]).toEqual([127, -64, 127, 64]);
    // -0.635 / 0.01 = -63.5 -> half to even -> -64
  });
  it('per-tensor symmetric crushes the small channel (why per-channel matters)', () => {
    const q = quantizeWeight(w, perTensor);
    expect([...q.q]).toEqual([127, -64, 1, 1]);
    const back = dequantizeWeight(q);
    expect(Math.abs(back[3]! - 0.00635) / 0.00635).toBeGreaterThan(0.5);
  });
  it('asymmetric uint8 maps min to 0 and max to 255', () => {
    const q = quantizeWeight(
      { dims: [4], axis: 0, data: new Float32Array([-1, 0, 1, 3]) },
      { type: 'uint8', symmetric: false, granularity: 'per-tensor' },
    );
    expect(q.scales[0]).toBeCloseTo(4 / 255, 15);
    expect(q.zeroPoints[0]).toBe(64);
    expect([...q.q]).toEqual([0, 64, 128, 255]);
  });
  it('folds BatchNorm exactly as its definition', () => {
    const folded = foldBatchNorm(
      { dims: [2, 1, 1, 1], axis: 0, data: new Float32Array([2, 3]) },
      new Float32Array([1, 0]),
      {
        scale: new Float32Array([0.5, 2]),
        bias: new Float32Array([0.1, -1]),
        mean: new Float32Array([1, 3]),
        variance: new Float32Array([3, 0]),
        epsilon: 1,
      },
    );
    // channel 0: factor 0.5/2 = 0.25 -> w 0.5, b (1-1)*0.25+0.1 = 0.1; channel 1: factor 2 -> w 6, b -6-1 = -7
    expect([...folded.weight]).toEqual([0.5, 6]);
    expect([...folded.bias]).toEqual([Math.fround(0.1), -7]);
  });
});

describe('weight clip search (mse)', () => {
  // Two channels of 512 Gaussian weights (Box-Muller, seeded), channel 1 with one outlier at
  // 8 sigma: the case where a channel's max wastes the int4 grid.
  const rand = seededPrng(11);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const data = Float32Array.from({ length: 1024 }, () => gauss() * 0.05);
  data[700] = 0.4;
  const w = { dims: [2, 512], axis: 0, data };
  const int4 = { type: 'int4', symmetric: true, granularity: 'per-channel' } as const;
  const sqErr = (q: ReturnType<typeof quantizeWeight>, from: number, to: number) => {
    const back = dequantizeWeight(q);
    let e = 0;
    for (let i = from; i < to; i++) e += (back[i]! - data[i]!) ** 2;
    return e;
  };

  it("int4: lowers each channel's squared error below the max range, most where an outlier is", () => {
    const max = quantizeWeight(w, int4);
    const mse = quantizeWeight(w, int4, 'mse');
    expect(sqErr(mse, 0, 512)).toBeLessThan(sqErr(max, 0, 512));
    // IFMR searches 0.70-1.30x the extremes: the outlier channel's error drops by about 40 %
    expect(sqErr(mse, 512, 1024)).toBeLessThan(0.7 * sqErr(max, 512, 1024));
    // the clip is narrower than the max range, values stay on [-7, 7]
    expect(mse.scales[1]!).toBeLessThan(max.scales[1]!);
    expect(Math.max(...mse.q.map(Math.abs))).toBeLessThanOrEqual(7);
  });
  it("'max' is the default and equal to no option", () => {
    const a = quantizeWeight(w, int4);
    const b = quantizeWeight(w, int4, 'max');
    expect([...a.scales]).toEqual([...b.scales]);
    expect([...a.q]).toEqual([...b.q]);
  });
});
