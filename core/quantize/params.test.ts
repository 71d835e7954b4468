import { describe, expect, it } from 'vitest';
import { activationParams, roundHalfEven } from './params.ts';

describe('activation parameters', () => {
  it('asymmetric int8 maps lo to -128 and hi to 127, 0 exactly representable', () => {
    const p = activationParams(
      { lo: -1, hi: 3 },
      { type: 'int8', symmetric: false, granularity: 'per-tensor' },
    );
    expect(p.scale).toBeCloseTo(4 / 255, 15);
    // zero point = -128 - round(-1 / (4/255)) = -128 + round(63.75) = -128 + 64 = -64
    expect(p.zeroPoint).toBe(-64);
    expect(p.qmin).toBe(-128);
  });
  it('post-ReLU range [0, 6] gets offset -128 on asymmetric int8 and zero point 0 on uint8', () => {
    expect(
      activationParams(
        { lo: 0, hi: 6 },
        { type: 'int8', symmetric: false, granularity: 'per-tensor' },
      ).zeroPoint,
    ).toBe(-128);
    expect(
      activationParams(
        { lo: 0, hi: 6 },
        { type: 'uint8', symmetric: false, granularity: 'per-tensor' },
      ).zeroPoint,
    ).toBe(0);
  });
  it('symmetric int8 uses the larger magnitude over 127', () => {
    const p = activationParams(
      { lo: -2, hi: 1 },
      { type: 'int8', symmetric: true, granularity: 'per-tensor' },
    );
    expect(p.scale).toBe(2 / 127);
    expect(p.zeroPoint).toBe(0);
  });
  it('rounds half to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, -2, 2, 3,
    ]);
  });
});
