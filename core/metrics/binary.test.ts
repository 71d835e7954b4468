import { describe, expect, it } from 'vitest';
import { argmax, binaryCounts, binaryMetrics } from './binary.ts';

describe('argmax', () => {
  it('picks the largest, ties to the lower index', () => {
    expect(argmax([0.1, 0.9])).toBe(1);
    expect(argmax([0.5, 0.5])).toBe(0);
    expect(argmax([-1, 3, 3])).toBe(1);
  });

  it('reads a row at an offset of a flat [N, C] array', () => {
    const logits = new Float32Array([2, 1, -1, 0, 7, 7]);
    expect([0, 1, 2].map((r) => argmax(logits, r * 2, 2))).toEqual([0, 1, 0]);
  });

  it('lets the first NaN win, as torch.argmax does', () => {
    expect(argmax([1, Number.NaN, Number.NaN])).toBe(1);
    expect(argmax([Number.NaN, 2])).toBe(0);
  });

  it('rejects an empty row', () => {
    expect(() => argmax([])).toThrow(RangeError);
  });
});

describe('binaryMetrics', () => {
  it('matches hand-derived values', () => {
    // pred 1 1 1 0 0 0 1 0 / label 1 1 0 1 0 0 1 0 -> TP 3, FP 1, FN 1, TN 3.
    const pred = [1, 1, 1, 0, 0, 0, 1, 0];
    const label = [1, 1, 0, 1, 0, 0, 1, 0];
    expect(binaryCounts(pred, label)).toEqual({ tp: 3, fp: 1, fn: 1, tn: 3 });
    const m = binaryMetrics(pred, label);
    expect(m.f1_spam).toBe(6 / 8); // 2*3 / (6 + 1 + 1)
    expect(m.accuracy).toBe(6 / 8);
    expect(m.precision).toBe(3 / 4);
    expect(m.recall).toBe(3 / 4);
  });

  it('is asymmetric in precision and recall', () => {
    // TP 1, FP 3, FN 0, TN 1: precision 1/4, recall 1, F1 2/(2+3) = 0.4, accuracy 2/5.
    const m = binaryMetrics(new Uint8Array([1, 1, 1, 1, 0]), new Uint8Array([1, 0, 0, 0, 0]));
    expect(m).toEqual({ f1_spam: 0.4, accuracy: 0.4, precision: 0.25, recall: 1 });
  });

  it('counts 0/0 as 0', () => {
    expect(binaryMetrics([0, 0], [0, 0])).toEqual({
      f1_spam: 0,
      accuracy: 1,
      precision: 0,
      recall: 0,
    });
    expect(binaryMetrics([], [])).toEqual({ f1_spam: 0, accuracy: 0, precision: 0, recall: 0 });
  });

  it('rejects mismatched lengths and non-binary values', () => {
    expect(() => binaryMetrics([1], [1, 0])).toThrow(RangeError);
    expect(() => binaryMetrics([2], [1])).toThrow(RangeError);
  });
});
