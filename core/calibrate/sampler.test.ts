import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { decodeModel } from '../onnx/index.ts';
import {
  describeSamples,
  mergeDescriptions,
  randomSamples,
  type SampleDescriptions,
  seededPrng,
  selectSamples,
} from './sampler.ts';

/** Clusters in 2-D around far-apart centres; strata = cluster id (or all 0); margins random. */
function clusters(
  sizes: number[],
  opts: { strata: boolean; margins: boolean },
): SampleDescriptions {
  const rand = seededPrng(7);
  const count = sizes.reduce((a, b) => a + b, 0);
  const embeddings = new Float32Array(count * 2);
  const strata = new Int32Array(count);
  const margins = new Float32Array(count).fill(Number.NaN);
  const cluster = new Int32Array(count);
  // Interleave the clusters so that index order says nothing about them.
  const order: number[] = sizes.flatMap((n, c) => Array.from({ length: n }, () => c));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  order.forEach((c, i) => {
    cluster[i] = c;
    embeddings[i * 2] = c * 10 + rand();
    embeddings[i * 2 + 1] = (c % 2) * 10 + rand();
    strata[i] = opts.strata ? c : 0;
    if (opts.margins) margins[i] = 0.05 + rand();
  });
  return Object.assign({ start: 0, count, dim: 2, embeddings, strata, margins }, { cluster });
}

const clusterOf = (d: SampleDescriptions, i: number) =>
  (d as SampleDescriptions & { cluster: Int32Array }).cluster[i]!;

describe('selectSamples', () => {
  const sizes = [300, 120, 60, 15, 5];

  it('covers every cluster by k-center even without strata or margins', () => {
    const d = clusters(sizes, { strata: false, margins: false });
    const s = selectSamples(d, 8, 1);
    expect(s.indices).toHaveLength(8);
    expect(new Set(s.indices.map((i) => clusterOf(d, i))).size).toBe(sizes.length);
    expect(s.report).toMatchObject({ chosen: 8, edge: 0, strata: [{ stratum: 0, size: 500 }] });
  });

  it('stratifies by predicted class, adds edge and rare samples, and reports them', () => {
    const d = clusters(sizes, { strata: true, margins: true });
    const s = selectSamples(d, 50, 3);
    expect(s.indices).toHaveLength(50);
    expect(new Set(s.indices).size).toBe(50);
    expect([...s.indices].sort((a, b) => a - b)).toEqual(s.indices);
    const per = s.report.strata.map((x) => x.chosen);
    expect(per.every((n) => n >= 1)).toBe(true);
    expect(per.reduce((a, b) => a + b, 0)).toBe(50);
    expect(s.report.edge).toBe(5);
    expect(s.report.rare).toBeGreaterThan(0);
    expect(s.report.edge + s.report.rare + s.report.normal).toBe(50);
    // The edge samples are the lowest margins of the split.
    const lowest = Array.from(d.margins.keys())
      .sort((a, b) => d.margins[a]! - d.margins[b]!)
      .slice(0, 5)
      .sort((a, b) => a - b);
    expect(s.indices.filter((_, k) => s.kinds[k] === 'edge')).toEqual(lowest);
    // The smallest stratum (5 members, 0.5 proportional) gets more than its proportional share.
    expect(per[4]).toBeGreaterThan(1);
    // Proportional: the largest stratum keeps the most samples.
    expect(per[0]).toBe(Math.max(...per));
  });

  it('is deterministic for a seed; the random baseline differs and misses small clusters', () => {
    const d = clusters(sizes, { strata: false, margins: false });
    expect(selectSamples(d, 10, 5)).toEqual(selectSamples(d, 10, 5));
    const r = randomSamples(d.count, 10, 5);
    expect(randomSamples(d.count, 10, 5)).toEqual(r);
    expect(randomSamples(d.count, 10, 6)).not.toEqual(r);
    expect(r).not.toEqual(selectSamples(d, 10, 5).indices);
    expect(new Set(r).size).toBe(10);
    // Over 20 seeds the random baseline misses at least one cluster most of the time.
    let missed = 0;
    for (let seed = 0; seed < 20; seed++) {
      const covered = new Set(randomSamples(d.count, 8, seed).map((i) => clusterOf(d, i)));
      if (covered.size < sizes.length) missed++;
      expect(new Set(selectSamples(d, 8, seed).indices.map((i) => clusterOf(d, i))).size).toBe(5);
    }
    expect(missed).toBeGreaterThan(10);
  });

  it('handles n larger than the split and n = 0', () => {
    const d = clusters([3, 2], { strata: true, margins: true });
    expect(selectSamples(d, 50, 1).indices).toEqual([0, 1, 2, 3, 4]);
    expect(selectSamples(d, 0, 1).indices).toEqual([]);
  });

  it('merges shard descriptions in index order and rejects gaps', () => {
    const d = clusters([6, 4], { strata: true, margins: true });
    const part = (a: number, b: number): SampleDescriptions => ({
      start: a,
      count: b - a,
      dim: 2,
      embeddings: d.embeddings.slice(a * 2, b * 2),
      strata: d.strata.slice(a, b),
      margins: d.margins.slice(a, b),
    });
    const m = mergeDescriptions([part(7, 10), part(0, 3), part(3, 7)]);
    expect(m.embeddings).toEqual(d.embeddings);
    expect(m.strata).toEqual(d.strata);
    expect(() => mergeDescriptions([part(0, 3), part(4, 10)])).toThrow(/gap/);
  });
});

describe('smoke-fmnist', () => {
  beforeAll(() => useNodeRuntime());

  it('describes the calibration split in shards and picks 50 covering samples', async () => {
    const task = getTask('smoke-fmnist');
    const split = await task.load(nodeDataSource(), 'calibration');
    const model = decodeModel(await readTaskModel(task.manifest));
    const whole = await describeSamples(model, split);
    const shards = await Promise.all([
      describeSamples(model, split, { start: 250, end: 500 }),
      describeSamples(model, split, { start: 0, end: 250 }),
    ]);
    const merged = mergeDescriptions(shards);
    expect(merged.embeddings).toEqual(whole.embeddings);
    expect(merged.strata).toEqual(whole.strata);
    expect(whole.dim).toBe(10);
    const s = selectSamples(whole, 50, 20261125);
    expect(s.report.chosen).toBe(50);
    expect(s.report.strata).toHaveLength(10);
    expect(s.report.strata.every((x) => x.chosen >= 1)).toBe(true);
    expect(s.report.edge).toBe(5);
    expect(s.report.rare).toBe(5);
    expect(selectSamples(whole, 50, 20261125)).toEqual(s);
  });
});
