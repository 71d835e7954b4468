import { describe, expect, it } from 'vitest';
import { emptyHistogram, emptyRange, observeHistogram, observeRange } from './histogram.ts';
import { maxRange, percentileRange } from './methods.ts';

function statsOf(values: number[], halfBins = 2048) {
  const range = observeRange(emptyRange(), values);
  const limit = Math.max(-range.min, range.max);
  return { range, histogram: observeHistogram(emptyHistogram(limit, halfBins), values) };
}

describe('calibration methods', () => {
  it('max returns the observed range, widened to include 0', () => {
    expect(maxRange(statsOf([0.5, 2, 3]))).toEqual({ lo: 0, hi: 3 });
    expect(maxRange(statsOf([-1, 2]))).toEqual({ lo: -1, hi: 2 });
  });
  it('percentile drops exactly the outliers beyond the tail mass', () => {
    // 9,999 values uniform on [0, 1) and one outlier at 100: 99.99% keeps 9,999 values.
    const values = Array.from({ length: 9999 }, (_, i) => i / 9999);
    values.push(100);
    const r = percentileRange(statsOf(values), 99.99);
    expect(r.lo).toBe(0);
    // The histogram has bins of width 100/2048 = 0.0488; 1.0 lies in bin 20 of the positive half,
    // whose upper edge is 21 * 0.048828125 = 1.025390625.
    expect(r.hi).toBeCloseTo(1.025390625, 12);
    // With 99.9 the outlier is dropped as well; with 100 it is kept.
    expect(percentileRange(statsOf(values), 100).hi).toBe(100);
  });
  it('clips both tails of a signed distribution', () => {
    const values = Array.from({ length: 10000 }, (_, i) => (i - 5000) / 5000);
    values[0] = -50;
    values[9999] = 50;
    const r = percentileRange(statsOf(values), 99.99);
    expect(r.lo).toBeGreaterThan(-1.05);
    expect(r.hi).toBeLessThan(1.05);
    expect(r.lo).toBeLessThan(-0.99);
    expect(r.hi).toBeGreaterThan(0.99);
  });
});
