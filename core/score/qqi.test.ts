import { describe, expect, it } from 'vitest';
import { lossOf, qqi, sig3 } from './qqi.ts';

describe('qqi', () => {
  it('is (1 - loss) x speedup x energy_gain with hand-computed values', () => {
    // loss = (0.9 - 0.891) / 0.9 = 0.01; 0.99 x 2 x 1.5 = 2.97
    const q = qqi({
      comparison: { metric: 'top1', fp32: 0.9, int8: 0.891 },
      speedup: 2,
      energyGain: 1.5,
    });
    expect(q.loss).toBeCloseTo(0.01, 12);
    expect(q.exact).toBeCloseTo(2.97, 12);
    expect(q.value).toBe(2.97);
    expect(q.display).toBe('2.97');
    expect(q.text).toContain('QQI 2.97 = (1 - 0.0100) x 2.00 x 1.50');
    // 0.8 -> 0.79: loss 0.0125; 0.9875 x 4.2 x 0.93 = 3.857...
    const r = qqi({
      comparison: { metric: 'top1', fp32: 0.8, int8: 0.79 },
      speedup: 4.2,
      energyGain: 0.93,
    });
    expect(r.exact).toBeCloseTo(0.9875 * 4.2 * 0.93, 12);
    expect(r.display).toBe('3.86');
  });

  it('floors a gain at 0 loss and reports the gain', () => {
    const q = qqi({
      comparison: { metric: 'top1', fp32: 0.8, int8: 0.82 },
      speedup: 3,
      energyGain: 1,
    });
    expect(q.loss).toBe(0);
    expect(q.gain).toBeCloseTo(0.025, 12);
    expect(q.display).toBe('3.00');
    expect(q.text).toContain('a gain of 0.0250 counted as 0 loss');
  });

  it('is null with a reason when a factor is missing (measured-only target)', () => {
    const q = qqi({
      comparison: { metric: 'top1', fp32: 0.8, int8: 0.8 },
      speedup: null,
      energyGain: null,
    });
    expect(q.value).toBeNull();
    expect(q.display).toBe('n/a');
    expect(q.missing).toMatch(/measured only/);
    const m = qqi({
      comparison: { metric: 'top1', fp32: 0.8, int8: 0.8 },
      speedup: 1.7,
      speedupSource: 'measured',
      energyGain: null,
    });
    expect(m.value).toBeNull();
  });

  it('prints three significant digits', () => {
    expect(sig3(3.8412)).toBe('3.84');
    expect(sig3(12.345)).toBe('12.3');
    expect(sig3(123.4)).toBe('123');
    expect(sig3(1234)).toBe('1230');
    expect(sig3(0.012345)).toBe('0.0123');
    expect(sig3(1)).toBe('1.00');
    expect(lossOf({ fp32: 0, int8: 0 })).toEqual({ loss: 0, gain: 0 });
  });
});
