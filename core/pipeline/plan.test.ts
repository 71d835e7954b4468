import { describe, expect, it } from 'vitest';
import { captureGroups, planGroups, planRanges, planStrided, unstride } from './plan.ts';

describe('shard planning', () => {
  it('cuts on batch boundaries and covers everything once', () => {
    expect(planRanges(230, 3, 50)).toEqual([
      { start: 0, end: 50 },
      { start: 50, end: 150 },
      { start: 150, end: 230 },
    ]);
    for (const shards of [1, 2, 7, 100]) {
      const r = planRanges(3046, shards, 50);
      expect(r[0]!.start).toBe(0);
      expect(r.at(-1)!.end).toBe(3046);
      for (let i = 1; i < r.length; i++) {
        expect(r[i]!.start).toBe(r[i - 1]!.end);
        expect(r[i]!.start % 50).toBe(0);
      }
    }
  });
  it('never makes more shards than batches', () => {
    expect(planRanges(60, 7, 25)).toHaveLength(3);
  });
  it('groups items contiguously', () => {
    expect(planGroups(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ]);
    expect(planGroups(['a'], 7)).toEqual([['a']]);
  });
  it('deals items round-robin and puts per-item results back in item order', () => {
    expect(planStrided(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([
      ['a', 'c', 'e'],
      ['b', 'd'],
    ]);
    expect(planStrided(['a', 'b'], 7)).toEqual([['a'], ['b']]);
    expect(planStrided([], 3)).toEqual([]);
    for (const shards of [1, 2, 3, 7]) {
      const items = Array.from({ length: 11 }, (_, i) => i);
      const results = planStrided(items, shards).map((g) => g.map((i) => `r${i}`));
      expect(unstride(results)).toEqual(items.map((i) => `r${i}`));
    }
    expect(() => unstride([['a'], ['b', 'c']])).toThrow(/round-robin/);
  });
});

describe('captureGroups', () => {
  it('cuts tensors into consecutive near-equal groups of at most the group size', () => {
    const xs = Array.from({ length: 30 }, (_, i) => i);
    const g = captureGroups(xs, 8);
    expect(g.map((x) => x.length)).toEqual([8, 8, 8, 6]);
    expect(g.flat()).toEqual(xs);
    expect(captureGroups(xs.slice(0, 8), 8)).toEqual([xs.slice(0, 8)]);
    expect(captureGroups(xs.slice(0, 9), 8).map((x) => x.length)).toEqual([5, 4]);
    expect(captureGroups([], 8)).toEqual([]);
  });
});
