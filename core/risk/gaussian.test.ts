import { describe, expect, it } from 'vitest';
import { seededPrng } from '../random.ts';
import { clippedNormalMoments, erf, normalCdf, normalPdf } from './gaussian.ts';

describe('erf', () => {
  // Reference values: Python 3 math.erf / math.erfc (double precision).
  it.each([
    [0, 0],
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [2.4999, 0.9995928300996666],
    [3, 0.9999779095030014],
    [-1, -0.8427007929497149],
  ])('erf(%f) = %f', (x, want) => {
    expect(Math.abs(erf(x) - want)).toBeLessThan(5e-15);
  });

  it('keeps the tail: 1 - erf(x) = erfc(x) to 1e-12 relative for x in [2.5, 6]', () => {
    // erfc(2.5) = 4.069520174449590e-4, erfc(4) = 1.541725790028002e-8, erfc(6) = 2.151973671249892e-17
    expect(1 - erf(2.5)).toBeCloseTo(4.06952017444959e-4, 15);
    expect((1 - erf(4)) / 1.541725790028002e-8).toBeCloseTo(1, 7);
    expect(erf(6)).toBe(1);
    expect(erf(-4)).toBeCloseTo(-1 + 1.541725790028002e-8, 15);
    expect(Number.isNaN(erf(Number.NaN))).toBe(true);
  });

  it('gives the normal distribution function and density', () => {
    expect(normalCdf(0)).toBe(0.5);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 14);
    expect(normalCdf(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(normalCdf(Number.POSITIVE_INFINITY)).toBe(1);
    expect(normalPdf(0)).toBeCloseTo(1 / Math.sqrt(2 * Math.PI), 15);
    expect(normalPdf(Number.POSITIVE_INFINITY)).toBe(0);
  });
});

describe('clippedNormalMoments', () => {
  it('is the plain normal without bounds', () => {
    const m = clippedNormalMoments(2, 3, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    expect(m.mean).toBeCloseTo(2, 12);
    expect(m.meanSquare).toBeCloseTo(13, 12);
  });

  it('gives the rectified standard normal: mean 1/sqrt(2 pi), mean square 1/2', () => {
    const m = clippedNormalMoments(0, 1, 0, Number.POSITIVE_INFINITY);
    expect(m.mean).toBeCloseTo(1 / Math.sqrt(2 * Math.PI), 14);
    expect(m.meanSquare).toBeCloseTo(0.5, 14);
  });

  it('matches a seeded Monte Carlo estimate for a two-sided clip', () => {
    const rand = seededPrng(7);
    const [mu, sigma, lo, hi] = [0.3, 1.7, -0.5, 2];
    let s1 = 0;
    let s2 = 0;
    const n = 400_000;
    for (let i = 0; i < n; i += 2) {
      // Box-Muller: two normals per pair of uniforms
      const r = Math.sqrt(-2 * Math.log(1 - rand()));
      const t = 2 * Math.PI * rand();
      for (const g of [r * Math.cos(t), r * Math.sin(t)]) {
        const y = Math.min(hi, Math.max(lo, mu + sigma * g));
        s1 += y;
        s2 += y * y;
      }
    }
    const m = clippedNormalMoments(mu, sigma, lo, hi);
    // standard errors of the estimates are ~0.002 (mean) and ~0.003 (mean square)
    expect(Math.abs(m.mean - s1 / n)).toBeLessThan(0.008);
    expect(Math.abs(m.meanSquare - s2 / n)).toBeLessThan(0.012);
  });

  it('handles a constant and rejects bad arguments', () => {
    expect(clippedNormalMoments(7, 0, 0, 6)).toEqual({ mean: 6, meanSquare: 36 });
    expect(() => clippedNormalMoments(0, 1, 1, 0)).toThrow(/empty range/);
    expect(() => clippedNormalMoments(0, -1, 0, 1)).toThrow(/sigma/);
  });
});
