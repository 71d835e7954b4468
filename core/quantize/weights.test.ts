import { describe, expect, it } from 'vitest';
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
