import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { describeSamples } from '../calibrate/sampler.ts';
import { decodeModel } from '../onnx/index.ts';
import {
  boundedRangeSize,
  DESCRIPTION_BYTES,
  describedRangeSize,
  mergeReference,
  PREDICTION_BYTES,
  planReference,
  REFERENCE_RANGE,
  type ReferenceOutput,
  runReferenceShard,
} from './reference.ts';

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
  it('plans ranges of a fixed size per split, whatever the shard count, and keeps the estimate samples', () => {
    // the default size, REFERENCE_RANGE
    expect(
      planReference({ calibration: 1200, evaluation: 0 }, { describe: true, validate: false }).map(
        (p) => [p.start, p.end],
      ),
    ).toEqual([
      [0, 500],
      [500, 1000],
      [1000, 1200],
    ]);
    const plan = planReference(
      { calibration: 5000, evaluation: 2500 },
      { describe: true, validate: true, rangeSize: 1000 },
    );
    expect(plan.map((p) => [p.split, p.start, p.end, p.keep])).toEqual([
      ['calibration', 0, 1000, 2000],
      ['calibration', 1000, 2000, 2000],
      ['calibration', 2000, 3000, 2000],
      ['calibration', 3000, 4000, 2000],
      ['calibration', 4000, 5000, 2000],
      ['evaluation', 0, 1000, 2500],
      ['evaluation', 1000, 2000, 2500],
      ['evaluation', 2000, 2500, 2500],
    ]);
    // without the coverage sampler only the estimate samples are run
    expect(
      planReference(
        { calibration: 5000, evaluation: 0 },
        { describe: false, validate: false, rangeSize: 1000 },
      ).map((p) => [p.start, p.end]),
    ).toEqual([
      [0, 1000],
      [1000, 2000],
    ]);
    // large embeddings (fmnist-detect's 2,560-float heatmaps) make shorter described ranges,
    // the evaluation ranges keep the size
    const detect = planReference(
      { calibration: 100, evaluation: 600 },
      { describe: true, validate: true, embeddingFloats: 2560 },
    );
    expect(detect.map((p) => [p.split, p.start, p.end])).toEqual([
      ['calibration', 0, 30],
      ['calibration', 30, 60],
      ['calibration', 60, 90],
      ['calibration', 90, 100],
      ['evaluation', 0, 500],
      ['evaluation', 500, 600],
    ]);
    // not describing: no embeddings in the output, the usual size
    expect(
      planReference(
        { calibration: 600, evaluation: 0 },
        { describe: false, validate: false, embeddingFloats: 2560 },
      ).map((p) => p.end),
    ).toEqual([500, 600]);
    // the range size is a multiple of the batch
    expect(() =>
      planReference(
        { calibration: 500, evaluation: 0 },
        { describe: true, validate: false, rangeSize: 125 },
      ),
    ).toThrow(/range size 125 is not a positive multiple of 10/);
  });

  it("describes only the sampler's pool, a prefix of the calibration split", () => {
    const plan = (pool: number) =>
      planReference(
        { calibration: 5000, evaluation: 0 },
        { describe: true, validate: false, pool, rangeSize: 1000 },
      ).map((p) => [p.start, p.end, p.describe, p.describeEnd]);
    // a pool of the estimate's 2,000 samples: no FP32 run beyond them
    expect(plan(2000)).toEqual([
      [0, 1000, true, 2000],
      [1000, 2000, true, 2000],
    ]);
    // a pool smaller than the estimate's range: the later shard describes nothing
    expect(plan(120)).toEqual([
      [0, 1000, true, 120],
      [1000, 2000, false, 120],
    ]);
    // a larger pool extends the pass beyond the estimate's samples, with the same first ranges
    expect(plan(2500)).toEqual([
      [0, 1000, true, 2500],
      [1000, 2000, true, 2500],
      [2000, 2500, true, 2500],
    ]);
    expect(() =>
      planReference(
        { calibration: 10, evaluation: 0 },
        { describe: true, validate: false, pool: -1 },
      ),
    ).toThrow(/bad sampler pool -1/);
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

describe('reference shards on smoke-fmnist', () => {
  beforeAll(() => useNodeRuntime());

  it('describe the pool exactly as describeSamples does, across a batch cut by the pool', async () => {
    const task = getTask('smoke-fmnist');
    const split = await task.load(nodeDataSource(), 'calibration');
    const bytes = await readTaskModel(task.manifest);
    const shards = planReference(
      { calibration: split.size, evaluation: 0 },
      { describe: true, validate: false, pool: 120, rangeSize: 250 },
    );
    // 500 samples in two shards; the pool ends inside the third batch of the first
    expect(shards.map((p) => [p.start, p.end, p.describe])).toEqual([
      [0, 250, true],
      [250, 500, false],
    ]);
    const parts = await Promise.all(
      shards.map((r) => runReferenceShard(bytes, split, (out, k) => task.predict(out, k), r)),
    );
    const merged = mergeReference(parts.reverse());
    const direct = await describeSamples(decodeModel(bytes), split, { end: 120 });
    expect(merged.descriptions!.count).toBe(120);
    expect(merged.descriptions!.embeddings).toEqual(direct.embeddings);
    expect(merged.descriptions!.strata).toEqual(direct.strata);
    expect(merged.descriptions!.margins).toEqual(direct.margins);
    expect(merged.calibration.predictions).toHaveLength(500);
  });
});

describe('describedRangeSize', () => {
  it('keeps the embeddings of a range under DESCRIPTION_BYTES, in whole batches', () => {
    expect(describedRangeSize(undefined)).toBe(REFERENCE_RANGE);
    expect(describedRangeSize(10)).toBe(REFERENCE_RANGE); // a classifier's logits
    // 2,560 floats: 13,654 base64 bytes a sample, 38 fit in 512 KiB, 30 in whole batches of 10
    expect(describedRangeSize(2560)).toBe(30);
    expect(30 * Math.ceil((2560 * 16) / 3)).toBeLessThanOrEqual(DESCRIPTION_BYTES);
    expect(40 * Math.ceil((2560 * 16) / 3)).toBeGreaterThan(DESCRIPTION_BYTES);
    // at least one batch, however large the embedding
    expect(describedRangeSize(10_000_000)).toBe(10);
    expect(describedRangeSize(2560, 20)).toBe(20);
  });
});

describe('ranges sized by the bytes of their predictions', () => {
  it('boundedRangeSize: whole batches within the budget, at least one batch', () => {
    expect(boundedRangeSize(undefined, 500, PREDICTION_BYTES)).toBe(500);
    expect(boundedRangeSize(12, 500, PREDICTION_BYTES)).toBe(500);
    // fmnist-detect's bound, 3,361 bytes a canvas: 292 fit, 290 in batches of 10
    expect(boundedRangeSize(3361, 500, PREDICTION_BYTES)).toBe(290);
    expect(290 * 3361).toBeLessThanOrEqual(PREDICTION_BYTES);
    expect(boundedRangeSize(2_000_000, 500, PREDICTION_BYTES)).toBe(10);
  });

  it('plans shorter evaluation and calibration ranges for large predictions', () => {
    const plan = planReference(
      { calibration: 1000, evaluation: 2000 },
      { describe: false, validate: true, predictionBytes: 3361 },
    );
    const ranges = (split: string) =>
      plan.filter((p) => p.split === split).map((p) => p.end - p.start);
    expect(ranges('evaluation')).toEqual([290, 290, 290, 290, 290, 290, 260]);
    expect(ranges('calibration')).toEqual([290, 290, 290, 130]);
    // described: embeddings and predictions share DESCRIPTION_BYTES (13,654 + 3,361 a canvas)
    const described = planReference(
      { calibration: 1000, evaluation: 0 },
      { describe: true, validate: false, embeddingFloats: 2560, predictionBytes: 3361 },
    );
    expect(described[0]!.end - described[0]!.start).toBe(30);
    expect(describedRangeSize(2560, 500, 3361)).toBe(30);
    expect(describedRangeSize(1000, 500, 0)).toBe(90);
    expect(describedRangeSize(1000, 500, 3361)).toBe(60);
  });
});
