import { describe, expect, it } from 'vitest';
import type { TensorScheme } from '../formats/targets.ts';
import { activationParams } from '../quantize/params.ts';
import {
  emptyHistogram,
  emptyRange,
  mergeHistograms,
  mergeRanges,
  observeHistogram,
  observeRange,
} from './histogram.ts';
import type { TensorStats } from './methods.ts';
import {
  histogramQuantError,
  ifmrCandidates,
  ifmrFactors,
  ifmrInit,
  mseRange,
  mseRangeOfValues,
  mseSearch,
  valuesQuantError,
} from './mse.ts';

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
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}
function laplace(seed: number, n: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => {
    const u = r() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  });
}
function uniform(seed: number, n: number, lo: number, hi: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
}
function statsOf(values: ArrayLike<number>): TensorStats {
  const range = observeRange(emptyRange(), values);
  const limit = Math.max(-range.min, range.max);
  return { range, histogram: observeHistogram(emptyHistogram(limit), values) };
}

const int8Sym: TensorScheme = { type: 'int8', symmetric: true, granularity: 'per-tensor' };
const int8Asym: TensorScheme = { type: 'int8', symmetric: false, granularity: 'per-tensor' };
const uint8Asym: TensorScheme = { type: 'uint8', symmetric: false, granularity: 'per-tensor' };

/**
 * Analytic MSE of a uniform quantizer with `steps` steps over [0, a] per side (symmetric int8:
 * 127) for a standard Gaussian (two-sided, or half of it plus exact zeros for post-ReLU data):
 * rounding step^2 / 12 inside, (x - a)^2 beyond. Minimising it gives 3.92 sigma for 127 steps
 * (Banner et al., "Post-training 4-bit quantization...", NeurIPS 2019, ACIQ: 3.92 sigma for
 * 8 bits) and 4.22 sigma for 255 steps over [0, a] (uint8 on a post-ReLU tensor).
 */
function gaussMse(a: number, steps: number, twoSided: boolean): number {
  const phi = Math.exp((-a * a) / 2) / Math.sqrt(2 * Math.PI);
  const q = 0.5 * erfc(a / Math.SQRT2);
  const inside = twoSided ? 1 - 2 * q : 0.5 - q;
  const tail = (1 + a * a) * q - a * phi;
  return ((a / steps) ** 2 / 12) * inside + (twoSided ? 2 : 1) * tail;
}
/** Laplace(b = 1), two-sided: tails 2 e^-a; optimum 9.88 b for 127 steps (ACIQ: 9.89 b). */
function laplaceMse(a: number, steps: number): number {
  return ((a / steps) ** 2 / 12) * (1 - Math.exp(-a)) + 2 * Math.exp(-a);
}
/** erfc (Numerical Recipes erfcc, fractional error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + z / 2);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
function argminOf(f: (a: number) => number, lo: number, hi: number): number {
  let best = lo;
  for (let a = lo; a <= hi; a += 0.001) if (f(a) < f(best)) best = a;
  return best;
}

describe('MSE clip search (AMCT IFMR)', () => {
  const g = gaussian(1, 1_000_000);

  it('searches 61 factors 0.70 .. 1.30 from the 0.999999 percentiles', () => {
    const f = ifmrFactors();
    expect(f.length).toBe(61);
    expect(f[0]).toBe(0.7);
    expect(f[30]).toBe(1);
    expect(f[60]).toBe(1.3);
    // Initial clips: left edges of the first bins whose cdf reaches 1e-6 and 0.999999.
    // 10 values in 8 bins over [-4, 4] (limit 4, width 1): -3.5 | 0.5 x8 | 2.5.
    const h = emptyHistogram(4, 4);
    observeHistogram(h, [-3.5, ...new Array<number>(8).fill(0.5), 2.5]);
    const stats: TensorStats = { range: observeRange(emptyRange(), [-3.5, 2.5]), histogram: h };
    expect(ifmrInit(stats)).toEqual({ lo: -4, hi: 2 });
    // With 0.9 the top value (10%) is dropped: the cdf reaches 0.9 in the bin of 0.5.
    expect(ifmrInit(stats, { maxPercentile: 0.9 })).toEqual({ lo: -4, hi: 0 });
  });

  it('candidates: asymmetric scales only the upper clip; symmetric scales max(|lo|, |hi|)', () => {
    const asym = ifmrCandidates({ lo: -2, hi: 4 }, int8Asym);
    expect(asym.every((c) => c.clip.lo === -2)).toBe(true);
    expect(asym[0]!.clip.hi).toBeCloseTo(2.8, 12);
    const sym = ifmrCandidates({ lo: -5, hi: 4 }, int8Sym);
    expect(sym[30]!.clip).toEqual({ lo: -5, hi: 5 });
    const relu = ifmrCandidates({ lo: 0, hi: 4 }, int8Sym);
    expect(relu[30]!.clip).toEqual({ lo: 0, hi: 4 });
    expect(relu[30]!.params.scale).toBe(4 / 127);
  });

  it('the histogram loss estimates the true quantization MSE of the samples', () => {
    const v = Float64Array.from([...g.subarray(0, 200_000), 50, -50]);
    const s = statsOf(v);
    for (const T of [3, 4, 8, 50]) {
      for (const scheme of [int8Sym, int8Asym, uint8Asym]) {
        const p = activationParams({ lo: -T, hi: T }, scheme);
        const est = histogramQuantError(s, p) / v.length;
        const exact = valuesQuantError(v, p) / v.length;
        expect(Math.abs(est - exact) / exact).toBeLessThan(0.02);
      }
    }
  });

  it('N(0, 1), int8 symmetric: picks 3.96 sigma, at the analytic optimum (3.92 sigma)', () => {
    const s = statsOf(g);
    const r = mseRange(s, { scheme: int8Sym });
    const best = argminOf((a) => gaussMse(a, 127, true), 3, 5);
    expect(best).toBeCloseTo(3.92, 2);
    expect(r.hi).toBeGreaterThan(3.8);
    expect(r.hi).toBeLessThan(4.1);
    expect(r.lo).toBe(-r.hi);
    // Within 1% of the optimal expected error.
    expect(gaussMse(r.hi, 127, true)).toBeLessThan(1.01 * gaussMse(best, 127, true));
  });

  it('Laplace(b = 1), int8 symmetric: picks 9.70 b (analytic optimum 9.88 b)', () => {
    const r = mseRange(statsOf(laplace(3, 1_000_000)), { scheme: int8Sym });
    const best = argminOf((a) => laplaceMse(a, 127), 6, 14);
    expect(best).toBeCloseTo(9.88, 1);
    expect(r.hi).toBeGreaterThan(9.4);
    expect(r.hi).toBeLessThan(10.4);
    expect(laplaceMse(r.hi, 127)).toBeLessThan(1.01 * laplaceMse(best, 127));
  });

  it('post-ReLU data: lo = 0; uint8/int8 asymmetric 4.14 (optimum 4.22), int8 symmetric 3.87 (optimum 3.92)', () => {
    const s = statsOf(g.map((v) => Math.max(0, v)));
    const asymBest = argminOf((a) => gaussMse(a, 255, false), 3, 6);
    const symBest = argminOf((a) => gaussMse(a, 127, false), 3, 6);
    expect(asymBest).toBeCloseTo(4.22, 1);
    expect(symBest).toBeCloseTo(3.92, 1);
    for (const scheme of [int8Asym, uint8Asym]) {
      const r = mseRange(s, { scheme });
      expect(r.lo).toBe(0);
      expect(Math.abs(r.hi - asymBest)).toBeLessThan(0.2);
    }
    const sym = mseRange(s, { scheme: int8Sym });
    expect(sym.lo).toBe(0);
    expect(Math.abs(sym.hi - symBest)).toBeLessThan(0.2);
  });

  it('uniform data keeps the full range', () => {
    const s = statsOf(uniform(2, 100_000, -1, 1));
    for (const scheme of [int8Sym, int8Asym, uint8Asym]) {
      const r = mseRange(s, { scheme });
      expect(r.hi).toBeGreaterThan(0.98);
      expect(r.hi).toBeLessThan(1.02);
      expect(r.lo).toBeLessThan(-0.98);
    }
  });

  it('Gaussian with outliers: clips inside them, bounded by the IFMR search window', () => {
    // One outlier per side among 1e6 values is beyond the 0.999999 percentile: the search starts
    // at the Gaussian's extreme (4.66 / -4.91) and, as outliers weigh heavily in the MSE, ends at
    // the window's top (1.3x). (The unconstrained MSE optimum here is about 14.)
    const one = statsOf(Float64Array.from([...g, 50, -50]));
    const r1 = mseSearch(one, { scheme: int8Sym });
    expect(r1.best.factor).toBe(1.3);
    expect(r1.best.clip.hi).toBeCloseTo(1.3 * 4.9072265625, 9);
    // Two outliers above: the percentile lands on the 40 and 0.7x is as low as IFMR goes.
    const three = statsOf(Float64Array.from([...g, 50, -50, 40]));
    const r3 = mseSearch(three, { scheme: int8Sym });
    expect(r3.best.factor).toBe(0.7);
    expect(r3.best.clip.hi).toBeLessThan(28);
  });

  it('asymmetric: the lower clip is never searched (IFMR with offset)', () => {
    const s = statsOf(laplace(3, 1_000_000));
    const r = mseRange(s, { scheme: int8Asym });
    expect(r.lo).toBe(ifmrInit(s).lo);
    expect(r.hi).toBeLessThan(ifmrInit(s).hi);
  });

  it('ties go to the smallest factor', () => {
    // All values negative: with an offset only the (zero) upper clip is scaled, so every
    // candidate is the same quantizer.
    const s = statsOf(uniform(4, 10_000, -3, -1));
    const r = mseSearch(s, { scheme: int8Asym });
    expect(new Set(r.losses).size).toBe(1);
    expect(r.best.factor).toBe(0.7);
  });

  it('merged shard histograms give exactly the single-pass range', () => {
    const v = Float64Array.from([...g.subarray(0, 300_000), 50, -40]);
    const shards = [v.subarray(0, 99_999), v.subarray(99_999, 250_000), v.subarray(250_000)];
    const range = shards.map((x) => observeRange(emptyRange(), x)).reduce(mergeRanges);
    const limit = Math.max(-range.min, range.max);
    const histogram = shards
      .map((x) => observeHistogram(emptyHistogram(limit), x))
      .reduce(mergeHistograms);
    for (const scheme of [int8Sym, int8Asym, uint8Asym]) {
      expect(mseRange({ range, histogram }, { scheme })).toEqual(mseRange(statsOf(v), { scheme }));
    }
  });

  it('on raw values (weights): empirical percentiles and exact loss', () => {
    const w = Float64Array.from([...g.subarray(0, 4096)]);
    const r = mseRangeOfValues(w, { scheme: int8Sym });
    const max = Math.max(...Array.from(w, Math.abs));
    expect(r.hi).toBeLessThanOrEqual(1.3 * max);
    const err = (c: { lo: number; hi: number }) =>
      valuesQuantError(w, activationParams(c, int8Sym));
    expect(err(r)).toBeLessThanOrEqual(err({ lo: -max, hi: max }));
    expect(mseRangeOfValues([])).toEqual({ lo: 0, hi: 0 });
    expect(mseRangeOfValues([0, 0])).toEqual({ lo: 0, hi: 0 });
  });
});
