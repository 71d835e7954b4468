import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../recipe/schema.ts';
import {
  chooseTrial,
  gainDb,
  methodKey,
  relativeNoise,
  sameActivation,
  searchMethods,
} from './search.ts';

describe('method search helpers', () => {
  it('keys a method with its percentile (the default 99.99 spelled out)', () => {
    expect(methodKey({ method: 'max' })).toBe('max');
    expect(methodKey({ method: 'percentile' })).toBe('percentile:99.99');
    expect(methodKey({ method: 'percentile', percentile: 99.999 })).toBe('percentile:99.999');
    expect(methodKey({ method: 'kl-smooth' })).toBe('kl-smooth');
  });

  it("lists the tier's method first, then each candidate once", () => {
    expect(
      searchMethods({ method: 'percentile', percentile: 99.99 }, [
        { method: 'max' },
        { method: 'percentile' },
        { method: 'mse' },
        { method: 'max' },
      ]),
    ).toEqual([{ method: 'percentile', percentile: 99.99 }, { method: 'max' }, { method: 'mse' }]);
    expect(searchMethods({ method: 'max' }, [{ method: 'max' }])).toEqual([{ method: 'max' }]);
    expect(searchMethods({ method: 'mse' }, [])).toEqual([{ method: 'mse' }]);
  });

  it("sums the outputs' noise-to-signal ratios; gains in dB", () => {
    expect(relativeNoise({ logits: 40 })).toBeCloseTo(1e-4, 15);
    // detection-like: three outputs at 30, 40 and 50 dB
    expect(relativeNoise({ a: 30, b: 40, c: 50 })).toBeCloseTo(1e-3 + 1e-4 + 1e-5, 15);
    expect(gainDb(1e-4, 1e-5)).toBeCloseTo(10, 12);
    expect(gainDb(1e-5, 1e-4)).toBeCloseTo(-10, 12);
    expect(gainDb(2e-5, 2e-5)).toBe(0);
    // 0.5 dB: 10.9% less noise
    expect(gainDb(1, 10 ** -0.05)).toBeCloseTo(0.5, 12);
  });

  it("keeps the tier's method unless a candidate is quieter by the margin, then the quietest", () => {
    const db = (x: number) => 10 ** (-x / 10);
    // smoke-fmnist's measured one-layer SQNRs: 43.70 (percentile) vs 43.88 dB (max), kept.
    expect(chooseTrial([db(43.7046), db(43.8822)], 0.5)).toBe(0);
    // ... and taken with no margin.
    expect(chooseTrial([db(43.7046), db(43.8822)], 0)).toBe(1);
    // fmnist-resnet layers.1/conv1: 46.64 -> 52.54 dB, taken.
    expect(chooseTrial([db(46.64), db(52.54)], 0.5)).toBe(1);
    // Two qualify: the quietest wins, whatever the order; a tie keeps the earlier.
    expect(chooseTrial([db(42.01), db(43.63), db(47.31)], 0.5)).toBe(2);
    expect(chooseTrial([db(42.01), db(47.31), db(43.63)], 0.5)).toBe(1);
    expect(chooseTrial([db(42), db(47), db(47)], 0.5)).toBe(1);
    // Exactly the margin qualifies; louder never does.
    expect(chooseTrial([db(40), db(40.5)], 0.5)).toBe(1);
    expect(chooseTrial([db(40), db(39)], 0)).toBe(0);
    expect(chooseTrial([db(40)], 0.5)).toBe(0);
    expect(() => chooseTrial([], 0.5)).toThrow(RangeError);
  });

  it('compares activation parameters field by field', () => {
    const a = { scale: 0.02, zeroPoint: -128, qmin: -128, qmax: 127 };
    expect(sameActivation(a, { ...a })).toBe(true);
    expect(sameActivation(a, { ...a, scale: 0.020000001 })).toBe(false);
    expect(sameActivation(a, { ...a, zeroPoint: -127 })).toBe(false);
  });

  it('is on by default for every tier (max and percentile 99.99), and can be turned off', () => {
    const base = { version: 1, name: 'r', task: 'smoke-fmnist', target: 'ascend310' };
    expect(parseRecipe(base).sensitivity.search).toEqual({
      tiers: ['high', 'medium', 'low'],
      candidates: [{ method: 'max' }, { method: 'percentile', percentile: 99.99 }],
      minGainDb: 0.5,
    });
    expect(
      parseRecipe({ ...base, sensitivity: { search: { candidates: [] } } }).sensitivity.search,
    ).toEqual({ tiers: ['high', 'medium', 'low'], candidates: [], minGainDb: 0.5 });
    expect(() => parseRecipe({ ...base, sensitivity: { search: { tiers: ['top'] } } })).toThrow(
      /sensitivity\.search\.tiers\.0/,
    );
    // Defaults are fresh objects: a parsed recipe does not share arrays with another.
    const r1 = parseRecipe(base);
    r1.sensitivity.search.tiers.pop();
    expect(parseRecipe(base).sensitivity.search.tiers).toHaveLength(3);
  });
});
