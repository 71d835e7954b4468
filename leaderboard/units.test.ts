/** The pure pieces of the pages: Pareto front, axis ticks, URL parameters, badge specs. */
import { describe, expect, it } from 'vitest';
import { badgeEndpoint, GREY, LEVEL_COLORS, NOT_FOUND_BADGE, resultBadge } from './badge.ts';
import { boardQuery, boardSearch, parseBoardParams } from './leaderboard-page.tsx';
import { paretoFront, ticks } from './scatter.tsx';

describe('paretoFront', () => {
  it('keeps the points no other point beats on both QQI (higher) and loss (lower)', () => {
    const pts = [
      { id: 'a', loss: 0.2, qqi: 1.11 },
      { id: 'b', loss: -0.1, qqi: 1.11 },
      { id: 'c', loss: 0, qqi: 1.37 },
      { id: 'd', loss: 0.5, qqi: 1.5 },
      { id: 'e', loss: 0.5, qqi: 1.2 },
      { id: 'f', loss: 1.0, qqi: 1.5 },
    ];
    // a is beaten by b (same QQI, lower loss); e by d; f by d (same QQI, lower loss).
    expect(paretoFront(pts).map((p) => p.id)).toEqual(['b', 'c', 'd']);
    expect(paretoFront([])).toEqual([]);
  });
});

describe('ticks', () => {
  it('gives round steps inside the range', () => {
    expect(ticks(-0.124, 0.224)).toEqual([-0.1, 0, 0.1, 0.2]);
    expect(ticks(1.0892, 1.3908)).toEqual([1.1, 1.2, 1.3]);
    expect(ticks(2, 2)).toEqual([2]);
  });
});

describe('leaderboard URL parameters', () => {
  it('round-trip through the query string and drop invalid values', () => {
    const p = parseBoardParams(
      new URLSearchParams('task=smoke-fmnist&target=nvidia-t4&level=2&min_qqi=1.2&sort=loss'),
    );
    expect(p).toEqual({
      task: 'smoke-fmnist',
      target: 'nvidia-t4',
      level: 2,
      minQqi: 1.2,
      sort: 'loss',
    });
    expect(boardSearch(p)).toBe(
      '?task=smoke-fmnist&target=nvidia-t4&level=2&min_qqi=1.2&sort=loss',
    );
    expect(boardQuery(p)).toEqual({
      task: 'smoke-fmnist',
      target: 'nvidia-t4',
      level: 2,
      minQqi: 1.2,
      sort: 'loss',
    });
    expect(parseBoardParams(new URLSearchParams('task=<x>&level=7&min_qqi=abc&sort=evil'))).toEqual(
      { sort: 'qqi' },
    );
    expect(boardSearch({ sort: 'qqi' }, { format: 'csv' })).toBe('?sort=qqi&format=csv');
  });
});

describe('badge specs', () => {
  it('say what core/score/checks.ts badgeText says, coloured by level', () => {
    expect(resultBadge(3, 1.3735)).toEqual({
      label: 'quantization',
      message: 'L3 · QQI 1.37',
      color: LEVEL_COLORS[3],
    });
    expect(resultBadge(0, null).message).toBe('L0 · QQI n/a');
    expect(NOT_FOUND_BADGE.color).toBe(GREY);
    expect(badgeEndpoint(NOT_FOUND_BADGE, 60)).toEqual({
      schemaVersion: 1,
      label: 'quantization',
      message: 'not found',
      color: GREY,
      cacheSeconds: 300,
    });
  });
});
