import { describe, expect, it } from 'vitest';
import type { TensorScheme } from '../formats/targets.ts';
import { activationParams, roundHalfEven } from '../quantize/params.ts';
import { emptyHistogram, emptyRange, observeHistogram, observeRange } from './histogram.ts';
import { klRange } from './kl-divergence.ts';
import { type ClipRange, clipRange, METHOD_NAMES, maxRange, percentileRange } from './methods.ts';
import { mseRange } from './mse.ts';

function statsOf(values: ArrayLike<number>, halfBins = 2048) {
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

// Seeded generators (mulberry32; Box-Muller; inverse-CDF Laplace).
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(seed: number, n: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => {
    const m = Math.sqrt(-2 * Math.log(1 - r()));
    return m * Math.cos(2 * Math.PI * r());
  });
}
function laplace(seed: number, n: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => {
    const u = r() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  });
}

/** Measured quantize-dequantize MSE of the samples with the parameters the scheme gives a clip. */
function measuredMse(values: ArrayLike<number>, clip: ClipRange, scheme: TensorScheme): number {
  const { scale, zeroPoint, qmin, qmax } = activationParams(clip, scheme);
  let e = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    const q = Math.min(qmax, Math.max(qmin, roundHalfEven(x / scale) + zeroPoint));
    e += ((q - zeroPoint) * scale - x) ** 2;
  }
  return e / values.length;
}

const schemes: Record<string, TensorScheme> = {
  'int8 symmetric': { type: 'int8', symmetric: true, granularity: 'per-tensor' },
  'int8 asymmetric': { type: 'int8', symmetric: false, granularity: 'per-tensor' },
  'uint8 asymmetric': { type: 'uint8', symmetric: false, granularity: 'per-tensor' },
};

describe('clipRange dispatch', () => {
  const values = Array.from(gaussian(7, 100_000));
  values.push(30, -25);
  const s = statsOf(values);

  it('keeps the old signatures and results', () => {
    expect(clipRange('max', s)).toEqual(maxRange(s));
    expect(clipRange('percentile', s)).toEqual(percentileRange(s));
    expect(clipRange('percentile', s, { percentile: 99.9 })).toEqual(percentileRange(s, 99.9));
    expect(METHOD_NAMES).toEqual(['max', 'percentile', 'kl', 'kl-smooth', 'mse']);
  });

  it("routes 'kl', 'kl-smooth' and 'mse' with the scheme and their options", () => {
    for (const scheme of Object.values(schemes)) {
      expect(clipRange('kl', s, { scheme })).toEqual(klRange(s, { scheme }));
      expect(clipRange('kl-smooth', s, { scheme })).toEqual(
        klRange(s, { scheme, smoothing: 1e-4 }),
      );
      expect(clipRange('kl-smooth', s, { scheme, smoothing: 1e-3, bins: 64 })).toEqual(
        klRange(s, { scheme, smoothing: 1e-3, levels: 64 }),
      );
      expect(clipRange('mse', s, { scheme })).toEqual(mseRange(s, { scheme }));
      expect(clipRange('mse', s, { scheme, search: { start: 0.5 } })).toEqual(
        mseRange(s, { scheme, search: { start: 0.5 } }),
      );
    }
    // Without a scheme: int8 symmetric (TensorRT).
    expect(clipRange('kl', s)).toEqual(klRange(s, { scheme: schemes['int8 symmetric']! }));
    expect(clipRange('mse', s)).toEqual(mseRange(s, { scheme: schemes['int8 symmetric']! }));
  });

  it('degenerate statistics (no values, all zeros) give an empty range', () => {
    const zeros = statsOf([0, 0, 0]);
    for (const m of METHOD_NAMES) expect(clipRange(m, zeros)).toEqual({ lo: 0, hi: 0 });
    const empty = { range: emptyRange(), histogram: emptyHistogram(0, 16) };
    for (const m of ['kl', 'kl-smooth', 'mse'] as const)
      expect(clipRange(m, empty)).toEqual({ lo: 0, hi: 0 });
  });
});

describe('every method beats max on outlier-heavy data (measured QDQ MSE of the samples)', () => {
  // Gaussian with one extreme outlier per side (beyond IFMR's 0.999999 percentile at 1e6
  // values), and a heavy-tailed Laplace.
  const g = gaussian(11, 1_000_000);
  const data: Record<string, Float64Array> = {
    'N(0,1) + outliers at +-50': Float64Array.from([...g, 50, -50]),
    'Laplace(1)': laplace(12, 1_000_000),
  };
  for (const [dname, values] of Object.entries(data)) {
    it(dname, () => {
      const s = statsOf(values);
      const lines: string[] = [];
      for (const [sname, scheme] of Object.entries(schemes)) {
        const base = measuredMse(values, clipRange('max', s), scheme);
        for (const m of ['percentile', 'kl', 'kl-smooth', 'mse'] as const) {
          const clip = clipRange(m, s, { scheme });
          const e = measuredMse(values, clip, scheme);
          lines.push(
            `${sname} ${m}: [${clip.lo.toFixed(3)}, ${clip.hi.toFixed(3)}] mse ${e.toExponential(3)} (max ${base.toExponential(3)})`,
          );
          expect(e).toBeLessThan(base);
        }
      }
      console.log(`${dname}\n${lines.join('\n')}`);
    });
  }
});
