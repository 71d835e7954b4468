import { describe, expect, it } from 'vitest';
import {
  binOf,
  emptyHistogram,
  emptyRange,
  foldAbs,
  mergeHistograms,
  mergeRanges,
  observeHistogram,
  observeRange,
} from './histogram.ts';

/** Deterministic values with a long tail (mulberry32 + Box-Muller-free cubic). */
function values(seed: number, n: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (u - 0.3) ** 3 * 10;
  }
  return out;
}

describe('mergeable calibration statistics', () => {
  it('puts values in the right bins, top edge in the last bin', () => {
    const h = emptyHistogram(4, 4);
    observeHistogram(h, [0, 0.99, 1, -2.5, 4, -4, -0.5]);
    // bins of width 1 over [-4, 4): [-4,-3) [-3,-2) [-2,-1) [-1,0) [0,1) [1,2) [2,3) [3,4]
    expect(h.counts).toEqual([1, 1, 0, 1, 2, 1, 0, 1]);
    expect(binOf(h, 3.999)).toBe(7);
    expect(foldAbs(h)).toEqual([3, 1, 1, 2]);
  });
  it('gives identical ranges and histograms for 1, 2 and 7 shards in any order', () => {
    const all = values(7, 7000);
    const range1 = observeRange(emptyRange(), all);
    const limit = Math.max(-range1.min, range1.max);
    const hist1 = observeHistogram(emptyHistogram(limit), all);
    for (const shards of [2, 7]) {
      const size = Math.ceil(all.length / shards);
      const parts = Array.from({ length: shards }, (_, k) =>
        all.subarray(k * size, (k + 1) * size),
      ).reverse();
      const r = parts.map((p) => observeRange(emptyRange(), p)).reduce(mergeRanges, emptyRange());
      expect(r).toEqual(range1);
      const h = parts
        .map((p) => observeHistogram(emptyHistogram(limit), p))
        .reduce(mergeHistograms);
      expect(h).toEqual(hist1);
    }
    expect(hist1.counts.reduce((a, b) => a + b, 0)).toBe(7000);
  });
  it('refuses a NaN value, naming the tensor when told it', () => {
    expect(() => observeRange(emptyRange(), [1, Number.NaN])).toThrow(
      'observeRange: NaN activation',
    );
    expect(() => observeRange(emptyRange(), [Number.NaN, 1], '/conv1/Conv_output_0')).toThrow(
      "the FP32 model computes NaN in tensor '/conv1/Conv_output_0' on the calibration samples; it cannot be calibrated",
    );
  });
  it('refuses to merge histograms with different edges', () => {
    expect(() => mergeHistograms(emptyHistogram(1, 8), emptyHistogram(2, 8))).toThrow(
      /edges differ/,
    );
  });
});
