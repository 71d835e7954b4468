/**
 * Issue "sensitivity-aware calibration" numbers, per zoo task on one target: the task's default
 * template (sensitivity tiers, 50 coverage-sampled calibration samples), the same recipe with 500
 * random samples, and the naive baseline; FP32 vs INT8 on the full evaluation split, with the
 * loss estimated before evaluation.
 *
 * Noise. Every loss is a difference on a finite evaluation split, so each row also gets a 95%
 * paired bootstrap interval (evaluation samples resampled with replacement, the same resample
 * for the FP32 model and every variant; percentile interval), and so does each paired
 * difference between variants (default vs naive, 50 coverage vs 500 random). `--seeds 0,1,2`
 * repeats the two sampled variants with other sampler seeds: the spread over seeds is the
 * other noise source, the choice of calibration samples.
 *
 * The calibration runs through the pipeline (`runRecipe`, validation off); the evaluation is the
 * pipeline's own validation step (predictModel over the evaluation split, the same options),
 * done here so that the per-sample predictions are kept for the bootstrap and the FP32 model is
 * evaluated once per task instead of once per variant.
 *
 *   npx tsx bench/calibration-quality.ts [--target ascend310] [--tasks a,b] [--seeds 0]
 *     [--bootstrap 1000] [--variants default50,random500,naive] [--out bench/results/calibration-quality]
 *
 * Variants: default50, random50, random500, naiverandom (the naive baseline on 50 random samples;
 * all four per seed), naive, poolN (the coverage sampler's pool,
 * e.g. pool5000), and ablations of default50 with one
 * ingredient changed: nobias (no bias correction), bias (bias correction on, for targets whose
 * template has it off), maxall (max calibration in every tier),
 * nosearch (no per-layer method search: each tier's method as is), pertensor (per-tensor weights),
 * gptq (GPTQ weight rounding, core/quantize/gptq.ts), nearest (round to nearest, what the
 * W4A8 templates did before GPTQ), gptqbias (the same with bias correction
 * forced on), wclipmse (MSE weight clipping),
 * floatpath (every layer kept in float: what the target's fp16 float path alone costs, the floor
 * under every quantized variant).
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { runRecipe } from '../cli/commands/score.ts';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import {
  assignTiers,
  binomialTail,
  type LayerSensitivity,
  type LayerTier,
  sqnrDb,
  type TierThresholds,
  tierCounts,
} from '../core/calibrate/sensitivity.ts';
import { predictModel } from '../core/evaluate/evaluate.ts';
import { encodeModel } from '../core/onnx/index.ts';
import type { PipelineResult } from '../core/pipeline/run.ts';
import { seededPrng as rng } from '../core/random.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { DEFAULT_TEMPLATE_BY_KIND, recipeFromTemplate } from '../core/recipe/templates.ts';
import type { TensorData } from '../core/tensor/index.ts';
import { TASKS } from '../zoo/registry.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'ascend310' },
    tasks: { type: 'string' },
    seeds: { type: 'string', default: '0' },
    bootstrap: { type: 'string', default: '1000' },
    variants: { type: 'string', default: 'default50,random500,naive' },
    out: { type: 'string', default: 'bench/results/calibration-quality' },
  },
});
const target = values.target!;
const taskIds = values.tasks
  ? values.tasks.split(',')
  : Object.keys(TASKS).filter((t) => t !== 'smoke-fmnist');
const seeds = values.seeds!.split(',').map(Number);
const B = Number(values.bootstrap);
const wanted = new Set(values.variants!.split(','));
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const started = { date: new Date().toISOString(), uptime: uptime() };
const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
/** The commit measured, and how many tracked files differed from it when the run started. */
const revision = {
  commit: git('rev-parse', '--short', 'HEAD'),
  modifiedTrackedFiles: git('status', '--short', '--untracked-files=no').split('\n').filter(Boolean)
    .length,
};

/** Labels restricted to (and repeated as) the given indices: arrays and typed arrays. */
function pick<L>(labels: L, idx: readonly number[]): L {
  if (Array.isArray(labels)) return idx.map((i) => labels[i]) as L;
  if (ArrayBuffer.isView(labels)) {
    const src = labels as unknown as { constructor: new (n: number) => Record<number, number> };
    const out = new src.constructor(idx.length);
    const a = labels as unknown as Record<number, number>;
    for (let k = 0; k < idx.length; k++) out[k] = a[idx[k]!]!;
    return out as L;
  }
  throw new TypeError('bench: labels are neither an array nor a typed array');
}

/** 2.5% and 97.5% percentiles. */
function interval(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))]!;
  return [q(0.025), q(0.975)];
}

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

interface Row {
  task: string;
  target: string;
  variant: string;
  recipe: string;
  seed: number;
  metric: string;
  fp32: number;
  int8: number;
  loss_points: number;
  loss_ci95: [number, number];
  /**
   * Evaluation samples whose INT8 prediction differs from the FP32 prediction (classifiers; null
   * for tasks whose predictions are not single classes). Finer than the loss: a flip that loses
   * one correct answer and one that gains another cancel in the metric, not here.
   */
  fp32_disagreements: number | null;
  /**
   * Output SQNR of INT8 against FP32 over the whole evaluation split, every float output of the
   * model (dB): 10 log10(sum FP32^2 / sum (FP32 - INT8)^2). Continuous, so it separates two
   * recipes whose predictions flip too rarely to compare.
   */
  output_sqnr_db: number;
  estimated_loss_points: number | null;
  calibration_samples: number;
  tiers: Record<string, number>;
  high_by_agreement: number;
  /** The same sensitivity table under the earlier rules (same measurement, other tier rule). */
  tiers_rule_fixed: Record<string, number> | null;
  tiers_rule_binomial_all_samples: Record<string, number> | null;
  /** What the run did with the recipe's biasCorrection ('auto': both estimates). */
  bias: string;
  seconds: number;
}

/** Tier counts of a measured table under other agreement rules (before/after on one measurement). */
function retier(
  tiers: readonly LayerTier[] | undefined,
  recipe: Recipe,
  rule: 'fixed' | 'all-samples',
): Record<string, number> | null {
  if (!tiers) return null;
  const table: Record<string, LayerSensitivity> = {};
  for (const t of tiers) {
    const { tier, method, critical, rank, agreementTest, reason, confident, ...row } = t;
    void [tier, method, critical, rank, agreementTest, reason, confident];
    table[t.name] = row;
  }
  const thresholds: Partial<TierThresholds> = {
    highFraction: recipe.sensitivity.highFraction,
    lowFraction: recipe.sensitivity.lowFraction,
    ...(rule === 'fixed' ? { significance: null } : {}),
  };
  return tierCounts(
    assignTiers(table, {
      critical: recipe.sensitivity.critical,
      thresholds,
      methods: recipe.strategies,
    }),
  );
}
interface Diff {
  task: string;
  a: string;
  b: string;
  /** INT8 metric of a minus that of b, in points (positive: a is better). */
  points: number;
  ci95: [number, number];
  /** Output SQNR of a minus that of b (dB; positive: a is closer to FP32), paired bootstrap. */
  sqnr_db: number;
  sqnr_ci95: [number, number];
  /** Disagreements with FP32 of a only and of b only, McNemar p (classifiers; else null). */
  disagreements: { onlyA: number; onlyB: number; p: number } | null;
}
/** Keeps every float32 output of each evaluated sample (outputs in name order, concatenated). */
class OutputRecorder {
  rows: Float32Array[] = [];
  wrap<P>(task: { predict(out: Record<string, TensorData>, n: number): P[] }) {
    return {
      predict: (out: Record<string, TensorData>, n: number): P[] => {
        const names = Object.keys(out)
          .filter((k) => out[k]!.type === 'float32')
          .sort();
        for (let i = 0; i < n; i++) {
          const parts = names.map((k) => {
            const d = out[k]!.data as Float32Array;
            const per = d.length / n;
            return d.subarray(i * per, (i + 1) * per);
          });
          const row = new Float32Array(parts.reduce((m, p) => m + p.length, 0));
          let o = 0;
          for (const p of parts) {
            row.set(p, o);
            o += p.length;
          }
          this.rows.push(row);
        }
        return task.predict(out, n);
      },
    };
  }
}

/** Per sample: signal = sum ref^2, noise = sum (ref - q)^2. */
function sampleEnergies(
  ref: readonly Float32Array[],
  q: readonly Float32Array[],
): { signal: Float64Array; noise: Float64Array } {
  if (ref.length !== q.length) throw new Error(`bench: ${ref.length} FP32 rows, ${q.length} INT8`);
  const signal = new Float64Array(ref.length);
  const noise = new Float64Array(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const a = ref[i]!;
    const b = q[i]!;
    if (a.length !== b.length) throw new Error(`bench: output sizes differ at sample ${i}`);
    for (let j = 0; j < a.length; j++) {
      signal[i]! += a[j]! * a[j]!;
      noise[i]! += (a[j]! - b[j]!) ** 2;
    }
  }
  return { signal, noise };
}

/** Output SQNR (core's `sqnrDb`) of the summed per-sample energies: all samples, or the resample `idx`. */
function samplesSqnrDb(signal: Float64Array, noise: Float64Array, idx?: readonly number[]): number {
  let s = 0;
  let e = 0;
  for (const i of idx ?? signal.keys()) {
    s += signal[i]!;
    e += noise[i]!;
  }
  return sqnrDb(s, e);
}

const rows: Row[] = [];
const diffs: Diff[] = [];
/** Per classifier task: the evaluation samples some variant's INT8 prediction moves off FP32's. */
const flipTables: string[] = [];
/** Rows listed per task in the changed-predictions table (the nearest FP32 ties first). */
const MAX_FLIP_ROWS = 25;
useNodeRuntime();
const source = nodeDataSource();

for (const id of taskIds) {
  const task = TASKS[id]!;
  const template = DEFAULT_TEMPLATE_BY_KIND[task.manifest.kind] ?? 'industrial-vision';
  const base = recipeFromTemplate(template, id, target);
  const primary = task.manifest.metric.primary;
  const evaluation = await task.load(source, 'evaluation');
  const fp32Model = await readTaskModel(task.manifest);
  const t0 = performance.now();
  const fp32Out = new OutputRecorder();
  const fp32Preds = await predictModel(fp32Out.wrap(task), fp32Model, evaluation);
  console.error(`${id}: FP32 evaluated in ${Math.round(performance.now() - t0) / 1000} s`);

  const variants: [string, string, number, Recipe][] = [];
  for (const seed of seeds) {
    if (wanted.has('default50'))
      variants.push([
        `${template} (50, coverage)`,
        'default50',
        seed,
        { ...base, calibration: { samples: 50, sampler: 'coverage', seed } },
      ]);
    if (wanted.has('random50'))
      variants.push([
        `${template} (50, random)`,
        'random50',
        seed,
        { ...base, calibration: { samples: 50, sampler: 'random', seed } },
      ]);
    if (wanted.has('random500'))
      variants.push([
        `${template} (500, random)`,
        'random500',
        seed,
        { ...base, calibration: { samples: 500, sampler: 'random', seed } },
      ]);
    // The naive baseline's own samples are a fixed spread (no seed); this draws them at random
    // instead, so that its loss too is seen over several draws of the calibration samples.
    if (wanted.has('naiverandom')) {
      const naive = recipeFromTemplate('naive-baseline', id, target);
      variants.push([
        'naive-baseline (50, random)',
        'naiverandom',
        seed,
        { ...naive, calibration: { ...naive.calibration, samples: 50, sampler: 'random', seed } },
      ]);
    }
  }
  // Ablations of the default (50 coverage samples, first seed): one ingredient changed each.
  const abl = {
    ...base,
    calibration: { samples: 50, sampler: 'coverage' as const, seed: seeds[0]! },
  };
  if (wanted.has('nobias'))
    variants.push([
      `${template} (50, coverage) without bias correction`,
      'nobias',
      seeds[0]!,
      { ...abl, format: { ...abl.format, biasCorrection: false } },
    ]);
  if (wanted.has('bias'))
    variants.push([
      `${template} (50, coverage) with bias correction`,
      'bias',
      seeds[0]!,
      { ...abl, format: { ...abl.format, biasCorrection: true } },
    ]);
  if (wanted.has('maxall'))
    variants.push([
      `${template} (50, coverage) with max in every tier`,
      'maxall',
      seeds[0]!,
      {
        ...abl,
        strategies: { high: { method: 'max' }, medium: { method: 'max' }, low: { method: 'max' } },
      },
    ]);
  if (wanted.has('nosearch'))
    variants.push([
      `${template} (50, coverage) without the per-layer method search`,
      'nosearch',
      seeds[0]!,
      {
        ...abl,
        sensitivity: { ...abl.sensitivity, search: { ...abl.sensitivity.search, candidates: [] } },
      },
    ]);
  if (wanted.has('pertensor'))
    variants.push([
      `${template} (50, coverage) with per-tensor weights`,
      'pertensor',
      seeds[0]!,
      { ...abl, format: { ...abl.format, weights: 'per-tensor' } },
    ]);
  if (wanted.has('wclipmse'))
    variants.push([
      `${template} (50, coverage) with mse weight clipping`,
      'wclipmse',
      seeds[0]!,
      { ...abl, format: { ...abl.format, weightClip: 'mse' } },
    ]);
  if (wanted.has('gptq'))
    variants.push([
      `${template} (50, coverage) with GPTQ weight rounding`,
      'gptq',
      seeds[0]!,
      { ...abl, format: { ...abl.format, weightRounding: 'gptq' } },
    ]);
  if (wanted.has('nearest'))
    variants.push([
      `${template} (50, coverage) with weights rounded to nearest`,
      'nearest',
      seeds[0]!,
      { ...abl, format: { ...abl.format, weightRounding: 'nearest' } },
    ]);
  if (wanted.has('gptqbias'))
    variants.push([
      `${template} (50, coverage) with GPTQ weight rounding and bias correction on`,
      'gptqbias',
      seeds[0]!,
      { ...abl, format: { ...abl.format, weightRounding: 'gptq', biasCorrection: true } },
    ]);
  if (wanted.has('floatpath'))
    variants.push([
      `${template} with every layer kept in float (the target's fp16 float path alone)`,
      'floatpath',
      seeds[0]!,
      { ...abl, layers: { '*': { keepFloat: true } } },
    ]);
  // poolN: the coverage sampler choosing among the first N calibration samples (the default
  // is max(2000, samples); pool5000 on the Fashion-MNIST tasks = the whole split, the earlier
  // default).
  for (const v of wanted) {
    const m = /^pool(\d+)$/.exec(v);
    if (m)
      variants.push([
        `${template} (50, coverage) choosing among the first ${m[1]} calibration samples`,
        v,
        seeds[0]!,
        { ...abl, calibration: { ...abl.calibration, pool: Number(m[1]) } },
      ]);
  }
  if (wanted.has('naive'))
    variants.push(['naive-baseline', 'naive', 0, recipeFromTemplate('naive-baseline', id, target)]);

  const preds: unknown[][] = [];
  /** Per variant, per evaluation sample: its float outputs (the classifiers' logits). */
  const outRows: Float32Array[][] = [];
  /** Per variant, per evaluation sample: sum of (FP32 - INT8)^2 over every float output. */
  const noises: Float64Array[] = [];
  /** Per evaluation sample: sum of FP32^2 over every float output. */
  let signal: Float64Array = new Float64Array(0);
  const taskRows: Row[] = [];
  for (const [name, key, seed, recipe] of variants) {
    const t1 = performance.now();
    const r = await runRecipe(recipe, { validate: false, progress: false });
    const emulation = encodeModel(r.emulation);
    const level = r.emulation === r.qdq ? 'all' : 'disabled';
    const int8Out = new OutputRecorder();
    const int8Preds = await predictModel(int8Out.wrap(task), emulation, evaluation, {
      graphOptimizationLevel: level,
    });
    preds.push(int8Preds);
    outRows.push(int8Out.rows);
    const energy = sampleEnergies(fp32Out.rows, int8Out.rows);
    noises.push(energy.noise);
    signal = energy.signal;
    const classifier = typeof (fp32Preds as unknown[])[0] === 'number';
    const flips = classifier
      ? (int8Preds as unknown[]).reduce<number>(
          (n, p, i) => n + (p !== (fp32Preds as unknown[])[i] ? 1 : 0),
          0,
        )
      : null;
    const fp32 = task.score(fp32Preds as never, evaluation.labels as never)[primary]!;
    const int8 = task.score(int8Preds as never, evaluation.labels as never)[primary]!;
    const row: Row = {
      task: id,
      target,
      variant: key,
      recipe: name,
      seed,
      metric: primary,
      fp32,
      int8,
      loss_points: Math.round((fp32 - int8) * 100 * 1e9) / 1e9,
      loss_ci95: [Number.NaN, Number.NaN],
      fp32_disagreements: flips,
      output_sqnr_db: r4(samplesSqnrDb(signal, energy.noise)),
      estimated_loss_points: r.estimate?.lossPoints ?? null,
      calibration_samples: r.calibration.samples.length,
      tiers: r.sensitivity
        ? tierCounts(r.sensitivity)
        : { high: 0, medium: Object.keys(r.methods).length, low: 0 },
      high_by_agreement: (r.sensitivity ?? []).filter((t) => t.reason === 'agreement').length,
      tiers_rule_fixed: retier(r.sensitivity, recipe, 'fixed'),
      tiers_rule_binomial_all_samples: retier(r.sensitivity, recipe, 'all-samples'),
      bias: biasText(r.biasCorrection),
      seconds: Math.round(performance.now() - t1) / 1000,
    };
    taskRows.push(row);
    console.error(JSON.stringify(row));
  }

  // Paired bootstrap over the evaluation split: one resample for FP32 and every variant.
  const n = evaluation.size;
  const rand = rng(20261126);
  const losses: number[][] = variants.map(() => []);
  const pairs: [number, number][] = [];
  const firstOf = (k: string) => variants.findIndex((v) => v[1] === k && v[2] === seeds[0]);
  const d50 = firstOf('default50');
  const nai = firstOf('naive');
  const r500 = firstOf('random500');
  const r50 = firstOf('random50');
  if (d50 >= 0 && nai >= 0) pairs.push([d50, nai]);
  if (d50 >= 0 && r500 >= 0) pairs.push([d50, r500]);
  if (d50 >= 0 && r50 >= 0) pairs.push([d50, r50]);
  if (r50 >= 0 && r500 >= 0) pairs.push([r50, r500]);
  for (const k of [
    'nobias',
    'bias',
    'maxall',
    'nosearch',
    'pertensor',
    'gptq',
    'gptqbias',
    'wclipmse',
  ]) {
    const v = firstOf(k);
    if (d50 >= 0 && v >= 0) pairs.push([d50, v]);
    if (nai >= 0 && v >= 0) pairs.push([v, nai]);
  }
  const pairDiffs: number[][] = pairs.map(() => []);
  const sqnrDiffs: number[][] = pairs.map(() => []);
  const tb = performance.now();
  for (let b = 0; b < B; b++) {
    const idx = Array.from({ length: n }, () => Math.floor(rand() * n));
    const labels = pick(evaluation.labels, idx);
    const m = (p: unknown[]) =>
      task.score(idx.map((i) => p[i]) as never, labels as never)[primary]!;
    const f = m(fp32Preds as unknown[]);
    const q = preds.map(m);
    for (const [k, v] of q.entries()) losses[k]!.push((f - v) * 100);
    for (const [k, [a, c]] of pairs.entries()) pairDiffs[k]!.push((q[a]! - q[c]!) * 100);
    for (const [k, [a, c]] of pairs.entries())
      sqnrDiffs[k]!.push(
        samplesSqnrDb(signal, noises[a]!, idx) - samplesSqnrDb(signal, noises[c]!, idx),
      );
  }
  console.error(
    `${id}: ${B} bootstrap resamples in ${Math.round(performance.now() - tb) / 1000} s`,
  );
  taskRows.forEach((row, k) => {
    row.loss_ci95 = interval(losses[k]!).map(r4) as [number, number];
  });
  pairs.forEach(([a, c], k) => {
    const A = taskRows[a]!;
    const C = taskRows[c]!;
    diffs.push({
      task: id,
      a: A.recipe,
      b: C.recipe,
      points: r4((A.int8 - C.int8) * 100),
      ci95: interval(pairDiffs[k]!).map(r4) as [number, number],
      sqnr_db: r4(A.output_sqnr_db - C.output_sqnr_db),
      sqnr_ci95: interval(sqnrDiffs[k]!).map(r4) as [number, number],
      disagreements:
        A.fp32_disagreements === null
          ? null
          : mcnemarCounts(fp32Preds as unknown[], preds[a]!, preds[c]!),
    });
  });
  rows.push(...taskRows);
  if (typeof (fp32Preds as unknown[])[0] === 'number')
    flipTables.push(
      ...changedPredictions(
        id,
        fp32Preds as number[],
        fp32Out.rows,
        evaluation.labels as ArrayLike<number>,
        variants.map(([, key, seed]) => `${key}${seeds.length > 1 ? ` s${seed}` : ''}`),
        preds as number[][],
        outRows,
      ),
    );
}

const finished = { date: new Date().toISOString(), uptime: uptime() };
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const command = `npx tsx bench/calibration-quality.ts ${process.argv.slice(2).join(' ')}`.trim();
const f = (x: unknown) => (typeof x === 'number' ? x.toFixed(2) : 'n/a');
const hml = (t: Record<string, number> | null) => (t ? `${t.high}/${t.medium}/${t.low}` : 'n/a');
const ci = (c: [number, number]) => `[${c[0].toFixed(2)}, ${c[1].toFixed(2)}]`;
/**
 * Over seeds: each sampled variant's loss, output SQNR and disagreements across the sampler seeds
 * (the spread the choice of calibration samples causes), and per seed the default (50 coverage)
 * against the naive baseline on random samples of the same seed.
 */
const overSeeds: string[] = [];
if (seeds.length > 1) {
  // r4: ten copies of 50.405 sum to a mean of 50.40499..., which would print below its own min.
  const mean = (xs: number[]) => r4(xs.reduce((a, b) => a + b, 0) / xs.length);
  overSeeds.push(
    `Over the ${seeds.length} sampler seeds (${seeds.join(', ')}): mean (min..max) per variant.`,
    '',
    '| task | variant | seeds | loss (points) | output SQNR (dB) | disagreements with FP32 |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  const comparisons: string[] = [];
  for (const id of taskIds) {
    const own = rows.filter((r) => r.task === id);
    for (const key of [...new Set(own.map((r) => r.variant))]) {
      const rs = own.filter((r) => r.variant === key);
      if (rs.length < 2) continue;
      const stat = (xs: number[], d: number) =>
        `${mean(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)})`;
      const dis = rs.map((r) => r.fp32_disagreements);
      overSeeds.push(
        `| ${id} | ${rs[0]!.recipe} | ${rs.length} | ${stat(
          rs.map((r) => r.loss_points),
          2,
        )} | ${stat(
          rs.map((r) => r.output_sqnr_db),
          2,
        )} | ${dis.every((x) => x !== null) ? stat(dis as number[], 1) : 'n/a'} |`,
      );
    }
    const byVariant = (k: string) =>
      new Map(own.filter((r) => r.variant === k).map((r) => [r.seed, r]));
    const d = byVariant('default50');
    const nr = byVariant('naiverandom');
    const both = seeds.filter((x) => d.has(x) && nr.has(x));
    if (both.length > 1) {
      const lossDiff = both.map((x) => nr.get(x)!.loss_points - d.get(x)!.loss_points);
      const sqnrDiff = both.map((x) => d.get(x)!.output_sqnr_db - nr.get(x)!.output_sqnr_db);
      const count = (xs: number[]) =>
        `${xs.filter((x) => x > 1e-9).length} / ${xs.filter((x) => Math.abs(x) <= 1e-9).length} / ${xs.filter((x) => x < -1e-9).length}`;
      comparisons.push(
        `| ${id} | ${both.length} | ${mean(lossDiff).toFixed(3)} | ${count(lossDiff)} | ${mean(sqnrDiff).toFixed(2)} | ${count(sqnrDiff)} |`,
      );
    }
  }
  if (comparisons.length)
    overSeeds.push(
      '',
      'The default (50 coverage) against the naive baseline on 50 random samples, seed by seed (positive: the default is closer to FP32):',
      '',
      '| task | seeds | naive loss - default loss, mean (points) | seeds default better / tie / worse in loss | default SQNR - naive SQNR, mean (dB) | seeds default better / tie / worse in SQNR |',
      '| --- | --- | --- | --- | --- | --- |',
      ...comparisons,
    );
  overSeeds.push('');
}
const md = [
  `# Calibration quality on ${target}`,
  '',
  `- command: \`${command}\``,
  `- started: ${started.date}; \`uptime\`: ${started.uptime}`,
  `- finished: ${finished.date}; \`uptime\`: ${finished.uptime}`,
  `- machine: ${machine}`,
  `- commit: ${revision.commit} (${revision.modifiedTrackedFiles} tracked files modified in the working tree at the start)`,
  `- loss = FP32 - INT8 of the primary metric on the full evaluation split, in points; 95% CI: paired bootstrap over the evaluation samples (${B} resamples, percentile interval).`,
  '- tier rule: rank by SQNR + the agreement test (core/calibrate/sensitivity.ts: a layer goes high on agreement only when its flips are significantly above 0.5% at the sample count, one-sided exact binomial, 5%, counted on the samples where the reference is confident, softmax margin >= 0.1); "by agreement" counts the layers it sent high. The same measured table under the earlier rules: "fixed" (agreement < 99.5% -> high) and "binomial, all samples" (the test over every sample, near-ties included).',
  '',
  '- output SQNR = 10 log10(sum FP32^2 / sum (FP32 - INT8)^2) over every float output of the model on the whole evaluation split; its paired differences get the same bootstrap resamples as the metric.',
  '- disagreements = evaluation samples whose INT8 prediction differs from the FP32 prediction (classifiers only): finer than the loss, where a lost and a gained correct answer cancel.',
  '',
  '| task | recipe | seed | metric | FP32 | INT8 | loss (points) | 95% CI | disagreements with FP32 | output SQNR (dB) | estimated (points) | samples | tiers h/m/l | high by agreement | tiers, fixed rule | tiers, binomial all samples | bias correction | seconds |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.task} | ${r.recipe} | ${r.seed} | ${r.metric} | ${r.fp32.toFixed(4)} | ${r.int8.toFixed(4)} | ${f(r.loss_points)} | ${ci(r.loss_ci95)} | ${r.fp32_disagreements ?? 'n/a'} | ${f(r.output_sqnr_db)} | ${f(r.estimated_loss_points)} | ${r.calibration_samples} | ${hml(r.tiers)} | ${r.high_by_agreement} | ${hml(r.tiers_rule_fixed)} | ${hml(r.tiers_rule_binomial_all_samples)} | ${r.bias} | ${r.seconds} |`,
  ),
  '',
  'Paired differences of the INT8 metric (a - b, points; positive: a is better), first seed; and of the disagreements with FP32: samples only a gets wrong against FP32, samples only b does, and the exact two-sided McNemar p-value (binomial test of the two counts, p = 1/2):',
  '',
  '| task | a | b | a - b (points) | 95% CI | SQNR a - b (dB) | 95% CI | disagreements only a / only b | McNemar p |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...diffs.map(
    (d) =>
      `| ${d.task} | ${d.a} | ${d.b} | ${d.points.toFixed(2)} | ${ci(d.ci95)} | ${d.sqnr_db.toFixed(2)} | ${ci(d.sqnr_ci95)} | ${d.disagreements ? `${d.disagreements.onlyA} / ${d.disagreements.onlyB}` : 'n/a'} | ${d.disagreements ? d.disagreements.p.toPrecision(2) : 'n/a'} |`,
  ),
  '',
  ...overSeeds,
  ...flipTables,
].join('\n');
await writeFile(
  `${values.out}.json`,
  `${JSON.stringify({ machine, command, revision, started, finished, bootstrap: B, rows, diffs }, null, 1)}\n`,
);
await writeFile(`${values.out}.md`, md);
console.log(md);

/**
 * Paired comparison of two variants' agreement with the FP32 predictions: onlyA = samples where a disagrees with FP32 and b agrees, onlyB the reverse; p =
 * exact two-sided McNemar test (under "a and b are equally close to FP32", each discordant
 * sample is a fair coin).
 */
function mcnemarCounts(
  fp32: readonly unknown[],
  a: readonly unknown[],
  b: readonly unknown[],
): { onlyA: number; onlyB: number; p: number } {
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < fp32.length; i++) {
    const da = a[i] !== fp32[i];
    const db = b[i] !== fp32[i];
    if (da && !db) onlyA++;
    else if (db && !da) onlyB++;
  }
  const n = onlyA + onlyB;
  const p = n === 0 ? 1 : Math.min(1, 2 * binomialTail(Math.max(onlyA, onlyB), n, 0.5));
  return { onlyA, onlyB, p };
}

/** Softmax of one sample's logits: the top class's probability minus the runner-up's. */
function softmaxMargin(logits: Float32Array): number {
  const m = Math.max(...logits);
  const e = Array.from(logits, (x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / z).sort((a, b) => b - a);
  return p[0]! - (p[1] ?? 0);
}

/**
 * Markdown: the evaluation samples whose INT8 prediction differs from FP32's under at least one
 * variant, nearest FP32 ties first: how close FP32 itself was (softmax margin of its logits,
 * top class minus runner-up), the label, and per variant that moves it the new class and that
 * variant's own margin. A sample that flips under a variant at a margin of 0.001 is a coin toss
 * any noise decides; one at 0.3 is an error the quantization made.
 */
function changedPredictions(
  task: string,
  fp32: readonly number[],
  fp32Logits: readonly Float32Array[],
  labels: ArrayLike<number>,
  names: readonly string[],
  preds: readonly (readonly number[])[],
  logits: readonly (readonly Float32Array[])[],
): string[] {
  const changed = fp32
    .map((_p, i) => i)
    .filter((i) => preds.some((v) => v[i] !== fp32[i]))
    .map((i) => ({ i, margin: softmaxMargin(fp32Logits[i]!) }))
    .sort((a, b) => a.margin - b.margin);
  if (changed.length === 0) return [];
  const lines = changed.slice(0, MAX_FLIP_ROWS).map(({ i, margin }) => {
    const moved = names
      .map((n, v) =>
        preds[v]![i] !== fp32[i]
          ? `${n}: ${preds[v]![i]} (${softmaxMargin(logits[v]![i]!).toFixed(4)})`
          : null,
      )
      .filter((x) => x !== null);
    return `| ${task} | ${i} | ${labels[i]} | ${fp32[i]} | ${margin.toFixed(4)} | ${moved.length} of ${names.length} | ${moved.join('; ')} |`;
  });
  return [
    `${task}: the ${changed.length} evaluation samples whose prediction some variant changes${changed.length > MAX_FLIP_ROWS ? ` (the ${MAX_FLIP_ROWS} nearest FP32 ties listed)` : ''}; margin = softmax probability of the top class minus the runner-up's:`,
    '',
    '| task | sample | label | FP32 class | FP32 margin | variants that change it | variant: its class (its margin) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...lines,
    '',
  ];
}

/** 'on' / 'off' / 'auto: applied (0.015 vs 0.006 estimated)'. */
function biasText(b: PipelineResult['biasCorrection']): string {
  if (!b) return 'n/a';
  const e = b.estimatedLossPoints;
  if (!e) return b.applied ? 'on' : 'off';
  return `auto: ${b.applied ? 'applied' : 'left off'} (${e.corrected.toFixed(3)} corrected vs ${e.uncorrected.toFixed(3)} uncorrected, estimated)`;
}
