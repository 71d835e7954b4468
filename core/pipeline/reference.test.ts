import { describe, expect, it } from 'vitest';
import { mergeReference, planReference, type ReferenceOutput } from './reference.ts';

const out = (
  split: 'calibration' | 'evaluation',
  start: number,
  end: number,
  keep: number,
): ReferenceOutput<number> => {
  const n = Math.max(0, Math.min(end, keep) - start);
  return {
    split,
    start,
    end,
    predictions: Array.from({ length: n }, (_, i) => start + i),
    ...(split === 'calibration' && n > 0
      ? { logits: Float32Array.from({ length: 2 * n }, (_, i) => start * 2 + i), classes: 2 }
      : {}),
  };
};

describe('reference pass plan and merge', () => {
  it('plans batch-aligned ranges per split and keeps the estimate samples', () => {
    const plan = planReference({ calibration: 5000, evaluation: 1000 }, 2, {
      describe: true,
      validate: true,
    });
    expect(plan.map((p) => [p.split, p.start, p.end, p.keep])).toEqual([
      ['calibration', 0, 2500, 2000],
      ['calibration', 2500, 5000, 2000],
      ['evaluation', 0, 500, 1000],
      ['evaluation', 500, 1000, 1000],
    ]);
    // without the coverage sampler only the estimate samples are run
    expect(
      planReference({ calibration: 5000, evaluation: 0 }, 3, {
        describe: false,
        validate: false,
      }).map((p) => [p.start, p.end]),
    ).toEqual([
      [0, 650],
      [650, 1300],
      [1300, 2000],
    ]);
  });

  it('merges shards in any order, including calibration shards past the kept range', () => {
    // calibration 0..3000 in 3 shards, predictions kept below 1500: the last shard keeps none
    const parts = [
      out('evaluation', 400, 800, 800),
      out('calibration', 2000, 3000, 1500),
      out('calibration', 0, 1000, 1500),
      out('evaluation', 0, 400, 800),
      out('calibration', 1000, 2000, 1500),
    ];
    const r = mergeReference(parts);
    expect(r.calibration.predictions).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    expect(r.calibration.classes).toBe(2);
    expect(r.calibration.logits).toEqual(Float32Array.from({ length: 3000 }, (_, i) => i));
    expect(r.evaluation).toEqual(Array.from({ length: 800 }, (_, i) => i));
  });

  it('refuses gaps', () => {
    expect(() =>
      mergeReference([out('evaluation', 0, 400, 800), out('evaluation', 450, 800, 800)]),
    ).toThrow(/gap or overlap at evaluation sample 400/);
  });
});
