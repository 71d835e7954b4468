import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { getTarget, type TargetId } from '../formats/targets.ts';
import { decodeModel } from '../onnx/index.ts';
import { quantizeLayer, quantizeModel } from '../quantize/quantize.ts';
import { globMatch, matchesAny } from './glob.ts';
import {
  assignTiers,
  binomialTail,
  DEFAULT_TIER_METHODS,
  KL_AVAILABLE,
  type LayerSensitivity,
  layerShards,
  measureSensitivity,
  mergeSensitivity,
  predictionAgreement,
  softmaxKl,
  sqnrDb,
  tierCounts,
  tierMethods,
  topTwo,
} from './sensitivity.ts';

describe('globMatch', () => {
  it.each([
    ['/features/*', '/features/features.0/Conv', true],
    ['*Conv', '/features/features.4/Conv', true],
    ['*Gemm', '/features/features.4/Conv', false],
    ['/features/features.?/Conv', '/features/features.4/Conv', true],
    ['/features/features.?/Conv', '/features/features.10/Conv', false],
    ['/features/features.??/Conv', '/features/features.10/Conv', true],
    ['*', '', true],
    ['', '', true],
    ['', 'a', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['*a*', 'bab', true],
    ['Conv#3', 'Conv#3', true],
    ['conv#3', 'Conv#3', false],
    ['**x', 'x', true],
  ])('%s ~ %s = %s', (p, n, want) => {
    expect(globMatch(p, n)).toBe(want);
  });

  it('matchesAny', () => {
    expect(matchesAny(['*Gemm', '/hm/*'], '/hm/hm.0/Conv')).toBe(true);
    expect(matchesAny([], 'x')).toBe(false);
  });
});

const row = (name: string, sqnrDb: number, agreement: number | null = 1): LayerSensitivity => ({
  name,
  sqnrDb,
  outputs: { y: sqnrDb },
  kl: null,
  agreement,
});

/** Ten layers L0..L9 with SQNR 10, 15, ..., 55 dB (L0 most sensitive). */
const ten = Object.fromEntries(
  Array.from({ length: 10 }, (_, i) => [`L${i}`, row(`L${i}`, 10 + 5 * i)]),
);

describe('assignTiers', () => {
  it('ranks by SQNR: top 20% high, bottom 40% low, the rest medium; methods per tier', () => {
    const t = assignTiers(ten);
    expect(t.map((x) => x.name)).toEqual(Array.from({ length: 10 }, (_, i) => `L${i}`));
    expect(t.map((x) => x.tier)).toEqual([
      'high',
      'high',
      'medium',
      'medium',
      'medium',
      'medium',
      'low',
      'low',
      'low',
      'low',
    ]);
    expect(tierCounts(t)).toEqual({ high: 2, medium: 4, low: 4 });
    expect(t[0]!.method).toEqual({ method: 'percentile', percentile: 99.99 });
    expect(t[9]!.method).toEqual({ method: 'max' });
    expect(t[4]!.method).toEqual(DEFAULT_TIER_METHODS.medium);
    expect(DEFAULT_TIER_METHODS.medium.method).toBe('mse');
    expect(KL_AVAILABLE).toBe(true);
    expect(tierMethods(t).L9).toEqual({ method: 'max' });
    expect(t.every((x) => !x.critical)).toBe(true);
  });

  it('without a sample count: any layer that flips > 0.5% of predictions is high, whatever its rank', () => {
    const t = assignTiers({ ...ten, L9: row('L9', 55, 0.99) });
    expect(t.find((x) => x.name === 'L9')!.tier).toBe('high');
    expect(
      assignTiers({ ...ten, L9: row('L9', 55, 0.995) }).find((x) => x.name === 'L9')!.tier,
    ).toBe('low');
  });

  it('with the sample count: one flip in 50 is not significant, two are (p = 0.22 vs 0.026)', () => {
    const at = (k: number, n: number) => ({ agreement: 1 - k / n, samples: n });
    const tier = (t: ReturnType<typeof assignTiers>, n: string) => t.find((x) => x.name === n)!;
    const one = assignTiers({ ...ten, L9: { ...row('L9', 55), ...at(1, 50) } });
    expect(tier(one, 'L9')).toMatchObject({ tier: 'low', reason: 'rank' });
    expect(tier(one, 'L9').agreementTest).toMatchObject({
      flips: 1,
      samples: 50,
      significant: false,
    });
    expect(tier(one, 'L9').agreementTest!.pValue).toBeCloseTo(1 - 0.995 ** 50, 12);
    const two = assignTiers({ ...ten, L9: { ...row('L9', 55), ...at(2, 50) } });
    expect(tier(two, 'L9')).toMatchObject({ tier: 'high', reason: 'agreement' });
    expect(tier(two, 'L9').agreementTest!.pValue).toBeCloseTo(
      1 - 0.995 ** 50 - 50 * 0.005 * 0.995 ** 49,
      12,
    );
    // 500 samples: 5 flips (1%) are within chance of a 0.5% rate (p = 0.108), 6 are not (0.042).
    expect(tier(assignTiers({ ...ten, L9: { ...row('L9', 55), ...at(5, 500) } }), 'L9').tier).toBe(
      'low',
    );
    expect(tier(assignTiers({ ...ten, L9: { ...row('L9', 55), ...at(6, 500) } }), 'L9').tier).toBe(
      'high',
    );
    // The sample count may come from the options when rows do not record it.
    const viaOptions = assignTiers({ ...ten, L9: row('L9', 55, 0.98) }, { samples: 50 });
    expect(tier(viaOptions, 'L9').tier).toBe('low');
  });

  it('every layer flipping one of 50 samples (the resnet/mobilenet case): ranks decide, not the flips', () => {
    const flipped = Object.fromEntries(
      Object.entries(ten).map(([k, v]) => [k, { ...v, agreement: 0.98, samples: 50 }]),
    );
    expect(tierCounts(assignTiers(flipped))).toEqual({ high: 2, medium: 4, low: 4 });
    // The rule before the test (significance: null) put all of them high.
    expect(tierCounts(assignTiers(flipped, { thresholds: { significance: null } }))).toEqual({
      high: 10,
      medium: 0,
      low: 0,
    });
    // With half the layers flipping 3 of 50 (p = 0.0022), those five go high.
    const some = Object.fromEntries(
      Object.entries(flipped).map(([k, v], i) => [k, i % 2 ? { ...v, agreement: 0.94 } : v]),
    );
    const t = assignTiers(some);
    expect(tierCounts(t)).toEqual({ high: 6, medium: 2, low: 2 });
    expect(t.filter((x) => x.reason === 'agreement').map((x) => x.name)).toEqual([
      'L3',
      'L5',
      'L7',
      'L9',
    ]);
  });

  it('classifiers: flips on near-tie samples do not count, flips where the reference was confident do', () => {
    const tier = (t: ReturnType<typeof assignTiers>, n: string) => t.find((x) => x.name === n)!;
    // 5 flips of 50 (all on the 5 edge samples), none of the 45 confident samples.
    const edge = assignTiers({
      ...ten,
      L9: { ...row('L9', 55, 0.9), samples: 50, confident: { margin: 0.1, samples: 45, flips: 0 } },
    });
    expect(tier(edge, 'L9')).toMatchObject({ tier: 'low', reason: 'rank' });
    expect(tier(edge, 'L9').agreementTest).toMatchObject({
      basis: 'confident',
      flips: 0,
      samples: 45,
      pValue: 1,
    });
    const real = assignTiers({
      ...ten,
      L9: { ...row('L9', 55, 0.9), samples: 50, confident: { margin: 0.1, samples: 45, flips: 2 } },
    });
    expect(tier(real, 'L9')).toMatchObject({ tier: 'high', reason: 'agreement' });
    expect(tier(real, 'L9').agreementTest!.pValue).toBeCloseTo(
      1 - 0.995 ** 45 - 45 * 0.005 * 0.995 ** 44,
      12,
    );
    // No agreement (structured predictions, e.g. detection): SQNR ranks alone.
    expect(
      tier(assignTiers({ ...ten, L9: { ...row('L9', 55, null), samples: 50 } }), 'L9')
        .agreementTest,
    ).toBeNull();
  });

  it('topTwo: argmax and softmax margin', () => {
    expect(topTwo([0, 0])).toEqual({ best: 0, margin: 0 });
    const m = topTwo([Math.log(3), 0, Number.NEGATIVE_INFINITY]);
    expect(m.best).toBe(0);
    expect(m.margin).toBeCloseTo(0.75 - 0.25, 12);
    expect(topTwo([5, 1, 9, 2], 1, 3).best).toBe(1);
  });

  it('ranks by the recipe metric: kl or agreement instead of SQNR', () => {
    // SQNR says L0 is the most sensitive; KL and agreement say L9.
    const rows = Object.fromEntries(
      Object.entries(ten).map(([k, v], i) => [
        k,
        { ...v, kl: 0.001 * (i + 1), agreement: 1 - 0.0001 * i },
      ]),
    );
    expect(assignTiers(rows)[0]!.name).toBe('L0');
    expect(assignTiers(rows, { rankBy: 'kl' }).map((x) => x.name)).toEqual(
      Array.from({ length: 10 }, (_, i) => `L${9 - i}`),
    );
    const byAgreement = assignTiers(rows, { rankBy: 'agreement' });
    expect(byAgreement.map((x) => [x.name, x.tier]).slice(0, 3)).toEqual([
      ['L9', 'high'],
      ['L8', 'high'],
      ['L7', 'medium'],
    ]);
    // Layers without KL (non-classifier outputs) rank after those with it, by SQNR.
    const mixed = assignTiers(
      { a: row('a', 10), b: { ...row('b', 50), kl: 0.1 }, c: row('c', 5) },
      {
        rankBy: 'kl',
      },
    );
    expect(mixed.map((x) => x.name)).toEqual(['b', 'c', 'a']);
  });

  it('binomialTail: exact upper tails', () => {
    expect(binomialTail(0, 10, 0.3)).toBe(1);
    expect(binomialTail(11, 10, 0.3)).toBe(0);
    expect(binomialTail(3, 10, 0.5)).toBeCloseTo(1 - (1 + 10 + 45) / 1024, 14);
    expect(binomialTail(1, 50, 0)).toBe(0);
    expect(binomialTail(1, 50, 1)).toBe(1);
    // Against a direct float64 sum of the pmf at n = 500.
    const direct = (k: number, n: number, p: number) => {
      let pmf = (1 - p) ** n;
      let below = 0;
      for (let i = 0; i < k; i++) {
        below += pmf;
        pmf *= ((n - i) / (i + 1)) * (p / (1 - p));
      }
      return 1 - below;
    };
    for (const k of [1, 2, 5, 6, 10])
      expect(binomialTail(k, 500, 0.005)).toBeCloseTo(direct(k, 500, 0.005), 12);
    // Far tails stay finite and tiny instead of underflowing to NaN.
    expect(binomialTail(4000, 5000, 0.1)).toBe(0);
    expect(binomialTail(600, 5000, 0.1)).toBeGreaterThan(0);
    expect(binomialTail(600, 5000, 0.1)).toBeLessThan(1e-3);
    expect(() => binomialTail(1.5, 10, 0.1)).toThrow(RangeError);
  });

  it('bumps critical layers (by name or glob) one tier up', () => {
    const t = assignTiers(ten, { critical: ['L9', 'L?'] });
    const tier = (n: string) => t.find((x) => x.name === n)!;
    expect(tier('L9')).toMatchObject({ tier: 'medium', critical: true });
    expect(tier('L5')).toMatchObject({ tier: 'high', critical: true });
    expect(tier('L0')).toMatchObject({ tier: 'high', critical: true });
    const only = assignTiers(ten, { critical: ['L4'] });
    expect(only.find((x) => x.name === 'L4')!.tier).toBe('high');
    expect(only.find((x) => x.name === 'L5')).toMatchObject({ tier: 'medium', critical: false });
  });

  it('honours overridden thresholds, absolute SQNR bounds and methods', () => {
    const t = assignTiers(ten, {
      thresholds: {
        highFraction: 0.1,
        lowFraction: 0.5,
        highBelowSqnrDb: 20,
        lowAtLeastSqnrDb: 50,
      },
      methods: { low: { method: 'percentile', percentile: 99.999 } },
    });
    expect(tierCounts(t)).toEqual({ high: 2, medium: 6, low: 2 });
    expect(t[9]!.method).toEqual({ method: 'percentile', percentile: 99.999 });
  });

  it('small models: 1 layer is high; 3 layers split 1/1/1; ties broken by agreement', () => {
    expect(assignTiers({ a: row('a', 40) }).map((x) => x.tier)).toEqual(['high']);
    expect(
      assignTiers({ a: row('a', 40), b: row('b', 30), c: row('c', 50) }).map((x) => [
        x.name,
        x.tier,
      ]),
    ).toEqual([
      ['b', 'high'],
      ['a', 'medium'],
      ['c', 'low'],
    ]);
    expect(assignTiers({ a: row('a', 40, 1), b: row('b', 40, 0.999) })[0]!.name).toBe('b');
  });
});

describe('helpers', () => {
  it('sqnr, KL and agreement', () => {
    expect(sqnrDb(100, 1)).toBeCloseTo(20, 12);
    expect(sqnrDb(1, 0)).toBe(200);
    expect(softmaxKl([1, 2, 3], [1, 2, 3])).toBe(0);
    // KL([.5,.5] || [.8,.2]) = .5 ln(.5/.8) + .5 ln(.5/.2)
    expect(softmaxKl([0, 0], [Math.log(4), 0])).toBeCloseTo(
      0.5 * Math.log(0.5 / 0.8) + 0.5 * Math.log(0.5 / 0.2),
      12,
    );
    expect(predictionAgreement([1, 2, 3, 4], [1, 2, 0, 4])).toBe(0.75);
    expect(predictionAgreement([{ a: 1 }], [{ a: 1 }])).toBe(1);
    expect(layerShards(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ]);
  });
});

/** smoke-fmnist quantized for a target from 50 evenly spaced calibration samples, no bias correction. */
async function quantizedSmoke(targetId: TargetId) {
  const task = getTask('smoke-fmnist');
  const target = getTarget(targetId);
  const split = await task.load(nodeDataSource(), 'calibration');
  const indices = Array.from({ length: 50 }, (_, i) => i * 10);
  const model = decodeModel(await readTaskModel(task.manifest));
  const q = await quantizeModel(model, split, {
    target,
    samples: { indices },
    biasCorrection: false,
  });
  return { task, target, split, indices, q };
}

describe('smoke-fmnist on ascend310', () => {
  beforeAll(() => useNodeRuntime());

  it('measures per-layer sensitivity in shards; a terribly scaled layer is the most sensitive', async () => {
    const { task, target, split, indices, q } = await quantizedSmoke('ascend310');
    const names = q.layers.map((l) => l.name);
    expect(names).toEqual([
      '/features/features.0/Conv',
      '/features/features.4/Conv',
      '/classifier/Gemm',
    ]);
    const options = {
      predict: (o: Parameters<typeof task.predict>[0], n: number) => task.predict(o, n),
    };
    const shards = await Promise.all(
      layerShards(names, 2).map((layers) =>
        measureSensitivity(
          q.prepared,
          q.layers,
          target,
          split,
          { indices },
          { ...options, layers },
        ),
      ),
    );
    const table = mergeSensitivity(...shards);
    expect(Object.keys(table.layers).sort()).toEqual([...names].sort());
    expect(table.outputs).toEqual(['logits']);
    // The fp16 float path alone: ~68 dB, no prediction changes.
    expect(table.floatPath!.sqnrDb).toBeCloseTo(68.4, 0);
    expect(table.floatPath!.agreement).toBe(1);
    const L = table.layers;
    expect(L['/features/features.0/Conv']!.sqnrDb).toBeCloseTo(56.0, 0);
    expect(L['/features/features.4/Conv']!.sqnrDb).toBeCloseTo(44.8, 0);
    expect(L['/classifier/Gemm']!.sqnrDb).toBeCloseTo(47.8, 0);
    for (const l of Object.values(L)) {
      expect(l.agreement).toBe(1);
      expect(l.samples).toBe(50);
      expect(l.confident!.flips).toBe(0);
      // Most of these 50 samples are confident (margin >= 0.1); the count is the same for every layer.
      expect(l.confident!.samples).toBe(L['/classifier/Gemm']!.confident!.samples);
      expect(l.confident!.samples).toBeGreaterThan(35);
      expect(l.kl).toBeGreaterThan(0);
      expect(l.kl).toBeLessThan(1e-4);
    }
    const tiers = assignTiers(L);
    expect(tiers.map((t) => [t.name, t.tier])).toEqual([
      ['/features/features.4/Conv', 'high'],
      ['/classifier/Gemm', 'medium'],
      ['/features/features.0/Conv', 'low'],
    ]);

    // Sabotage the least sensitive layer: activation scale x64 (6 bits of resolution lost).
    const bad = q.layers.map((l, k) =>
      l.name === '/features/features.0/Conv'
        ? quantizeLayer(
            q.prepared.layers[k]!,
            { ...l.act, scale: l.act.scale * 64 },
            target.weights,
            target.id,
          )
        : l,
    );
    const worse = await measureSensitivity(
      q.prepared,
      bad,
      target,
      split,
      { indices },
      {
        ...options,
        layers: ['/features/features.0/Conv'],
        floatPath: false,
      },
    );
    const w = worse.layers['/features/features.0/Conv']!;
    expect(w.sqnrDb).toBeLessThan(L['/features/features.4/Conv']!.sqnrDb - 10);
    expect(w.kl).toBeGreaterThan(L['/features/features.4/Conv']!.kl!);
    const merged = assignTiers({ ...L, ...worse.layers });
    expect(merged[0]).toMatchObject({ name: '/features/features.0/Conv', tier: 'high' });
  });
});

describe("smoke-fmnist on onnxruntime's own kernels", () => {
  beforeAll(() => useNodeRuntime());

  // cpu-wasm and cpu-wasm-dynamic have no emulation: each one-layer model is the target's export
  // (QDQ, or dynamic) run at optimization 'all', against the FP32 model (their float path).
  it.each([
    ['cpu-wasm', [56.81, 44.46, 49.17]],
    ['cpu-wasm-dynamic', [56.69, 44.74, 49.7]],
  ] as const)('%s: per-layer sensitivity of the one-layer exports', async (id, want) => {
    const { target, split, indices, q } = await quantizedSmoke(id);
    const table = await measureSensitivity(q.prepared, q.layers, target, split, { indices });
    expect(table.floatPath).toBeNull();
    // Measured (dB); beside ascend310's 56.0 / 44.8 / 47.8 above: the same layer is the most
    // sensitive on every target.
    for (const [k, l] of q.layers.entries())
      expect(table.layers[l.name]!.sqnrDb).toBeCloseTo(want[k]!, 2);
  });
});
