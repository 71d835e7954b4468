/**
 * Shard invariance of the whole pipeline: the same recipe run with 1, 2 (with 5 reference and
 * validation ranges per split) and 7 shards, the shards of each phase executed in reverse
 * order, gives identical samples, scales, zero points, int32 biases, emulation model bytes and
 * metrics.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPipelineInputs } from '../../cli/inputs.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { encodeModel } from '../../core/onnx/index.ts';
import { runByReplay } from '../../core/pipeline/replay.ts';
import {
  type PipelineInputs,
  type PipelineResult,
  runPipeline,
  type ShardExecutor,
} from '../../core/pipeline/run.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';

const reverseExecutor: ShardExecutor = async (_phase, inputs, run) => {
  const out = new Array(inputs.length);
  for (let i = inputs.length - 1; i >= 0; i--) out[i] = await run(inputs[i]!, i);
  return out;
};

const fingerprint = (r: PipelineResult) =>
  createHash('sha256')
    .update(
      JSON.stringify({
        samples: r.calibration.samples,
        layers: r.layers.map((l) => ({
          act: l.act,
          scales: [...l.weight.scales],
          q: [...l.weight.q],
          bias: [...l.bias],
        })),
        fp32: r.evaluation?.fp32,
        int8: r.evaluation?.int8,
      }),
    )
    .update(encodeModel(r.emulation))
    .digest('hex');

beforeAll(() => useNodeRuntime());

/** Shards a phase of a run took. */
const shardsOf = (r: PipelineResult, phase: string) =>
  r.phases.find((p) => p.phase === phase)!.shards;

/** smoke-fmnist's default recipe on ascend310 with validation, loaded once for the file. */
let smoke: Promise<PipelineInputs<unknown, unknown>> | undefined;
const smokeInputs = () =>
  (smoke ??= loadPipelineInputs(
    recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
    true,
  ));
/** Its run with one shard per phase, the baseline the sharded runs are compared with. */
let smokeOne: Promise<PipelineResult> | undefined;
const smokeOneShard = () =>
  (smokeOne ??= smokeInputs().then((inputs) => runPipeline(inputs, { shards: 1 })));

describe('pipeline shard invariance (smoke-fmnist, ascend310)', () => {
  it('gives identical results for 1, 2 and 7 shards in any order', async () => {
    const inputs = await smokeInputs();
    const one = await smokeOneShard();
    // splitShards: more validation ranges than shards of the other phases.
    const two = await runPipeline(inputs, { shards: 2, splitShards: 5 });
    const seven = await runPipeline(inputs, { shards: 7, executor: reverseExecutor });
    // At most 500 samples a validation range (shard outputs under 1 MiB): 1,000 samples in 2.
    expect(shardsOf(one, 'validate')).toBe(2);
    expect(shardsOf(seven, 'validate')).toBe(7);
    expect(shardsOf(two, 'validate')).toBe(5);
    // The reference pass has the same ranges in every run (500 samples: 1 + 2 here).
    for (const r of [one, two, seven]) expect(shardsOf(r, 'reference')).toBe(3);
    expect(shardsOf(two, 'sensitivity')).toBe(2);
    expect(one.calibration.samples).toHaveLength(50);
    expect(fingerprint(two)).toBe(fingerprint(one));
    expect(fingerprint(seven)).toBe(fingerprint(one));
    // FP32 reference of the 1,000-image smoke split, reproduced inside the pipeline.
    expect(one.evaluation?.fp32.top1).toBe(0.885);
    expect(one.layers).toHaveLength(3);
    // Distributed execution: every shard a separate replay whose output crossed the byte codec,
    // shards of each phase run in reverse order (as Queue consumers or worker threads would).
    const replayed = await runByReplay(inputs, { shards: 3 }, (n) =>
      Array.from({ length: n }, (_, i) => n - 1 - i),
    );
    expect(fingerprint(replayed)).toBe(fingerprint(one));
  }, 600_000);
});

describe('GPTQ weight rounding (format.weightRounding gptq; smoke-fmnist, ascend310)', () => {
  it("changes integers only, lowers every layer's weight noise, and is shard invariant", async () => {
    const inputs = await smokeInputs();
    const nearest = await smokeOneShard();
    const recipe = {
      ...inputs.recipe,
      format: { ...inputs.recipe.format, weightRounding: 'gptq' as const },
    };
    const gptq = { ...inputs, recipe };
    const one = await runPipeline(gptq, { shards: 1 });
    expect(one.phases.find((p) => p.phase === 'rounding')?.shards).toBe(1);
    // The same activation parameters and weight scales: only the integers move.
    for (const [i, l] of one.layers.entries()) {
      expect(l.act).toEqual(nearest.layers[i]!.act);
      expect(l.weight.scales).toEqual(nearest.layers[i]!.weight.scales);
    }
    const changed = one.layers.map(
      (l, i) => l.weight.q.filter((v, j) => v !== nearest.layers[i]!.weight.q[j]).length,
    );
    expect(changed.every((n) => n > 0)).toBe(true);
    // Per layer, the weights' own output SQNR on the calibration inputs (measured: the 8-, 8-
    // and 10-channel layers each gain several dB) and never a loss.
    const report = one.rounding!;
    expect(report.map((r) => r.layer)).toEqual(one.layers.map((l) => l.name));
    for (const r of report) expect(r.gptqDb).toBeGreaterThan(r.nearestDb + 1);
    // Measured on the whole evaluation split: 0.885, FP32's top-1 (round to nearest: 0.884).
    expect(one.evaluation!.int8.top1).toBe(0.885);
    expect(nearest.evaluation!.int8.top1).toBe(0.884);
    const seven = await runPipeline(gptq, { shards: 7, executor: reverseExecutor });
    expect(seven.phases.find((p) => p.phase === 'rounding')?.shards).toBe(3); // one per layer
    const replayed = await runByReplay(gptq, { shards: 2 }, (n) =>
      Array.from({ length: n }, (_, i) => n - 1 - i),
    );
    expect(fingerprint(seven)).toBe(fingerprint(one));
    expect(fingerprint(replayed)).toBe(fingerprint(one));
    expect(seven.rounding).toEqual(report);
    // Per layer: the classifier alone by GPTQ (a layer override), the rest to nearest; and the
    // reverse (GPTQ for the recipe, nearest for the classifier).
    const only = await runPipeline(
      {
        ...inputs,
        recipe: { ...inputs.recipe, layers: { '/classifier/*': { weightRounding: 'gptq' } } },
      },
      { shards: 1, validate: false },
    );
    expect(only.rounding!.map((r) => r.layer)).toEqual(['/classifier/Gemm']);
    const but = await runPipeline(
      {
        ...gptq,
        recipe: { ...recipe, layers: { '/classifier/*': { weightRounding: 'nearest' } } },
      },
      { shards: 1, validate: false },
    );
    expect(but.rounding!.map((r) => r.layer)).toEqual(one.layers.slice(0, 2).map((l) => l.name));
    expect(only.layers[2]!.weight.q).toEqual(one.layers[2]!.weight.q);
    expect(but.layers[2]!.weight.q).toEqual(nearest.layers[2]!.weight.q);
    for (const i of [0, 1]) {
      expect(only.layers[i]!.weight.q).toEqual(nearest.layers[i]!.weight.q);
      expect(but.layers[i]!.weight.q).toEqual(one.layers[i]!.weight.q);
    }
  }, 600_000);
});

describe('an imported quantization (recipe.imported; smoke-fmnist, ascend310)', () => {
  it("the run's own QDQ export imported back: the same integers and metric, for 1 and 7 shards and by replay", async () => {
    const inputs = await smokeInputs();
    const one = await smokeOneShard();
    const qdq = encodeModel(one.qdq);
    const model = createHash('sha256').update(qdq).digest('hex');
    const recipe = { ...inputs.recipe, imported: { model } };
    const imported = { ...inputs, recipe, imported: qdq };
    const a = await runPipeline(imported, { shards: 1 });
    // No calibration phase ran: the reference pass, then the estimate, fidelity and validate.
    expect(a.phases.map((p) => p.phase)).toEqual(['reference', 'estimate', 'fidelity', 'validate']);
    expect(a.calibration).toEqual({ samples: [], sampler: 'imported' });
    expect(a.imported!.layers.map((l) => [l.activation.mapping, l.weight.mapping])).toEqual(
      one.layers.map(() => ['exact', 'exact']),
    );
    for (const [i, l] of one.layers.entries()) {
      expect(a.layers[i]!.weight.q).toEqual(l.weight.q);
      expect(a.layers[i]!.bias).toEqual(l.bias);
    }
    // Scales went through the file as float32: Ascend 310's fp16 arithmetic rounds them the
    // same way, so the predictions and the metric are the calibrated run's.
    expect(a.evaluation!.int8).toEqual(one.evaluation!.int8);
    expect(a.fidelity!.mismatches).toBe(0);
    const seven = await runPipeline(imported, { shards: 7, executor: reverseExecutor });
    const replayed = await runByReplay(imported, { shards: 3 }, (n) =>
      Array.from({ length: n }, (_, i) => n - 1 - i),
    );
    expect(fingerprint(seven)).toBe(fingerprint(a));
    expect(fingerprint(replayed)).toBe(fingerprint(a));
    // The recipe and the bytes go together.
    await expect(runPipeline({ ...inputs, recipe }, { shards: 1 })).rejects.toThrow(
      'the recipe imports a quantized model (imported.model) but its bytes were not given',
    );
  }, 600_000);
});

describe('ranges sized by the bytes of a prediction (smoke-fmnist, ascend310)', () => {
  it('shortens the reference, estimate and validate ranges, with the same results', async () => {
    const inputs = await smokeInputs();
    const one = await smokeOneShard();
    // 20,000 bytes a prediction: 49 fit in 960 KiB, ranges of 40 samples
    const large = await runPipeline(
      { ...inputs, task: { ...inputs.task, predictionBytes: 20_000 } },
      { shards: 1 },
    );
    expect(shardsOf(one, 'validate')).toBe(2);
    expect(shardsOf(large, 'validate')).toBe(25); // 1,000 evaluation samples
    expect(shardsOf(large, 'estimate')).toBe(13); // 500 calibration samples
    // described calibration ranges share DESCRIPTION_BYTES with their embeddings: 20 samples
    expect(shardsOf(large, 'reference')).toBe(25 + 25);
    expect(fingerprint(large)).toBe(fingerprint(one));
    expect(large.estimate).toEqual(one.estimate);
    expect(large.warnings).toEqual(one.warnings);
    // a single batch over the limit cannot be split: the run says so
    const huge = await runPipeline(
      { ...inputs, task: { ...inputs.task, predictionBytes: 200_000 } },
      { shards: 1, validate: false },
    );
    expect(huge.warnings).toContain(
      "the model's outputs take 195 KiB a sample: a batch of 10 passes the 1 MiB a shard output may take (the service records such shards)",
    );
  }, 300_000);
});

describe('the coverage sampler pool (smoke-fmnist, ascend310)', () => {
  it('chooses among the first `pool` samples, the same for any shard count', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
    const pooled = { ...recipe, calibration: { ...recipe.calibration, pool: 120 } };
    const inputs = await loadPipelineInputs(pooled, false);
    const one = await runPipeline(inputs, { shards: 1, validate: false });
    const three = await runPipeline(inputs, { shards: 3, splitShards: 3, validate: false });
    expect(one.calibration.samples).toHaveLength(50);
    expect(Math.max(...one.calibration.samples)).toBeLessThan(120);
    expect(three.calibration.samples).toEqual(one.calibration.samples);
    expect(fingerprint(three)).toBe(fingerprint(one));
    // the whole split (500) gives another choice, with samples past 120
    const whole = await runPipeline(await loadPipelineInputs(recipe, false), { validate: false });
    expect(Math.max(...whole.calibration.samples)).toBeGreaterThanOrEqual(120);
    // a pool smaller than the sample count (e.g. after --calib-data) is refused
    await expect(
      runPipeline(
        {
          ...inputs,
          recipe: { ...pooled, calibration: { ...pooled.calibration, samples: 200 } },
        },
        { validate: false },
      ),
    ).rejects.toThrow('calibration.pool (120) is smaller than calibration.samples (200)');
  }, 300_000);
});

describe("biasCorrection 'auto' (smoke-fmnist, ascend310)", () => {
  it('keeps the candidate with the lower estimated loss: the same run as true or false', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
    expect(recipe.format.biasCorrection).toBe('auto');
    const withMode = async (mode: boolean | 'auto', shards = 1) =>
      runPipeline(
        await loadPipelineInputs(
          { ...recipe, format: { ...recipe.format, biasCorrection: mode } },
          true,
        ),
        { shards },
      );
    const auto = await withMode('auto');
    const on = await withMode(true);
    const off = await withMode(false);
    expect(on.biasCorrection).toEqual({ mode: true, applied: true });
    expect(off.biasCorrection).toEqual({ mode: false, applied: false });
    const choice = auto.biasCorrection!;
    expect(choice.mode).toBe('auto');
    // Both candidates were estimated, each exactly as its own run estimates it.
    expect(choice.estimatedLossPoints).toEqual({
      corrected: on.estimate!.lossPoints,
      uncorrected: off.estimate!.lossPoints,
    });
    expect(choice.applied).toBe(on.estimate!.lossPoints < off.estimate!.lossPoints);
    const same = choice.applied ? on : off;
    expect(fingerprint(auto)).toBe(fingerprint(same));
    expect(auto.estimate).toEqual(same.estimate);
    expect(auto.phases.map((p) => p.phase)).toContain('estimate-uncorrected');
    // Shard-invariant like every other phase.
    expect(fingerprint(await withMode('auto', 3))).toBe(fingerprint(auto));
  }, 600_000);
});

describe('per-layer method search (smoke-fmnist, ascend310)', () => {
  it("keeps the tier's method unless a candidate is 0.5 dB quieter, and is shard-invariant", async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
    expect(recipe.sensitivity.search.minGainDb).toBe(0.5);
    const run = async (r: typeof recipe, shards = 1) =>
      runPipeline(await loadPipelineInputs(r, true), { shards, validate: false });
    const check = (r: PipelineResult) => {
      const sensitivity = new Map(r.sensitivity!.map((t) => [t.name, t]));
      for (const [name, m] of Object.entries(r.methods)) {
        if (!m.search) continue;
        const tierMethod = r.recipe.strategies[m.tier as 'high' | 'medium' | 'low'];
        expect(m.search[0]).toMatchObject(tierMethod);
        // The winner: the quietest trial at least 0.5 dB quieter than the tier's method, else
        // the tier's method.
        const qualified = m.search.filter((t) => (t.gainDb ?? 0) >= 0.5);
        const quietest = qualified.length
          ? qualified.reduce((a, b) => (b.gainDb! > a.gainDb! ? b : a))
          : m.search[0]!;
        expect({ method: m.method, percentile: m.percentile }).toEqual({
          method: quietest.method,
          percentile: quietest.percentile,
        });
        // The trial with the high tier's method is the sensitivity pass's one-layer model.
        const high = r.recipe.strategies.high;
        for (const t of m.search)
          if (t.method === high.method && t.percentile === high.percentile)
            expect(t.sqnrDb).toBe(sensitivity.get(name)!.sqnrDb);
      }
    };

    // The industrial-vision template: max is quieter by 0.18 and 0.38 dB only, so each layer
    // keeps its tier's method and the run equals one without the search.
    const searched = await run(recipe);
    check(searched);
    expect(searched.phases.map((p) => p.phase)).toContain('search');
    expect(searched.methods['/features/features.4/Conv']).toEqual({
      method: 'percentile',
      percentile: 99.99,
      tier: 'high',
      search: [
        { method: 'percentile', percentile: 99.99, sqnrDb: expect.closeTo(43.7046, 3) },
        { method: 'max', sqnrDb: expect.closeTo(43.8822, 3), gainDb: expect.closeTo(0.1776, 3) },
      ],
    });
    const off = await run({
      ...recipe,
      sensitivity: {
        ...recipe.sensitivity,
        search: { ...recipe.sensitivity.search, candidates: [] },
      },
    });
    expect(off.phases.map((p) => p.phase)).not.toContain('search');
    expect(fingerprint(searched)).toBe(fingerprint(off));

    // Percentile 99.9 in the high and medium tiers clips this model hard: 36.38 and 44.88 dB
    // against max's 43.88 and 48.63. The search replaces it in both layers.
    const clipped = {
      ...recipe,
      strategies: {
        ...recipe.strategies,
        high: { method: 'percentile' as const, percentile: 99.9 },
        medium: { method: 'percentile' as const, percentile: 99.9 },
      },
    };
    const fixed = await run(clipped);
    check(fixed);
    expect(fixed.methods['/features/features.4/Conv']!.method).toBe('max');
    expect(fixed.methods['/classifier/Gemm']!.method).toBe('max');
    expect(fixed.methods['/features/features.4/Conv']!.search![1]!.gainDb).toBeCloseTo(7.5, 1);
    // Shard-invariant like every other phase.
    expect(fingerprint(await run(clipped, 3))).toBe(fingerprint(fixed));

    // A layer with a method override is not searched.
    const pinned = await run({ ...clipped, layers: { '/classifier/Gemm': { method: 'kl' } } });
    expect(pinned.methods['/classifier/Gemm']).toMatchObject({ method: 'kl', tier: 'medium' });
    expect(pinned.methods['/classifier/Gemm']!.search).toBeUndefined();
    expect(pinned.methods['/features/features.4/Conv']!.method).toBe('max');
  }, 600_000);
});

describe('robustness stress tests in the pipeline (smoke-fmnist, ascend310)', () => {
  it('run after validation when the recipe asks, the same for any shard count and order', async () => {
    const recipe = {
      ...recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
      validation: { stress: { thresholdPoints: 0.3 } },
    };
    const inputs = await loadPipelineInputs(recipe, true);
    const one = await runPipeline(inputs, { shards: 1 });
    const seven = await runPipeline(inputs, { shards: 7, executor: reverseExecutor });
    const replayed = await runByReplay(inputs, { shards: 3 }, (n) =>
      Array.from({ length: n }, (_, i) => n - 1 - i),
    );
    // the rows `cann-quant validate --stress` gives for this recipe's model (cli/validate.test.ts)
    expect(one.stress!.rows.map((r) => [r.id, r.fp32, r.int8])).toEqual([
      ['noise-0.1', 0.887, 0.888],
      ['noise-0.3', 0.845, 0.845],
      ['contrast-1.5', 0.887, 0.883],
      ['brightness-0.5', 0.719, 0.713],
    ]);
    expect(one.stress!.rows.filter((r) => !r.pass).map((r) => r.id)).toEqual(['brightness-0.5']);
    // jackknife standard errors (points): brightness's +0.50 is under two of them
    expect(one.stress!.rows.map((r) => [r.extra_se_points, r.significant])).toEqual([
      [0.133333, false],
      [0.179505, false],
      [0.213437, false],
      [0.268742, false],
    ]);
    expect(seven.stress).toEqual(one.stress);
    expect(replayed.stress).toEqual(one.stress);
    // 4 perturbations x 2 models x the validation ranges
    expect(shardsOf(seven, 'stress')).toBe(4 * 2 * shardsOf(seven, 'validate'));
    // the run itself is the run without stress tests
    expect(fingerprint(one)).toBe(fingerprint(await smokeOneShard()));
    expect((await smokeOneShard()).stress).toBeUndefined();
  }, 600_000);
});
