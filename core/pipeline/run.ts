import { captureSession, gatherBatch } from '../calibrate/capture.ts';
import {
  DEFAULT_ESTIMATE_SAMPLES,
  estimateLoss,
  estimatorFor,
  type LossEstimate,
} from '../calibrate/estimate.ts';
import { globMatch } from '../calibrate/glob.ts';
import {
  emptyHistogram,
  emptyRange,
  type Histogram,
  mergeHistograms,
  mergeRanges,
  observeHistogram,
  observeRange,
  type TensorRange,
} from '../calibrate/histogram.ts';
import type { TensorStats } from '../calibrate/methods.ts';
import { randomSamples, samplerPool, selectSamples, spreadIndices } from '../calibrate/sampler.ts';
import {
  chooseTrial,
  gainDb,
  methodKey,
  relativeNoise,
  type SearchTrial,
  sameActivation,
  searchMethods,
} from '../calibrate/search.ts';
import {
  assignTiers,
  type LayerTier,
  measureOneLayerModels,
  measureSensitivity,
  mergeSensitivity,
  type Tier,
} from '../calibrate/sensitivity.ts';
import { compareMetric, type MetricComparison, predictModel } from '../evaluate/evaluate.ts';
import { type BatchSource, DEFAULT_BATCH_SIZE } from '../evaluate/predict.ts';
import {
  defaultStresses,
  type StressReport,
  stressedSource,
  stressReportOf,
  valueRange,
} from '../evaluate/stress.ts';
import { getTarget, isDynamic, type Target } from '../formats/targets.ts';
import { type ImportedLayer, quantizeImported } from '../import/layers.ts';
import { importQdq, type QdqImport } from '../import/qdq.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { tensorTypeInfo } from '../onnx/shapes.ts';
import {
  buildBiasCorrectionModel,
  channelDiffSums,
  correctLayerBias,
  outputChannelAxis,
  quantizedPathModel,
} from '../quantize/bias-correction.ts';
import { buildEmulationModel } from '../quantize/emulation.ts';
import { type GptqReport, gptqWeights, InputGram } from '../quantize/gptq.ts';
import type { QuantizedLayer } from '../quantize/layer.ts';
import { type PreparedModel, prepareModel } from '../quantize/prepare.ts';
import { buildQdqModel } from '../quantize/qdq.ts';
import {
  type LayerMethod,
  type LayerPlan,
  layersFromStats,
  planLayers,
} from '../quantize/quantize.ts';
import type { Recipe } from '../recipe/schema.ts';
import { recipeWarnings } from '../recipe/warnings.ts';
import { createSession } from '../runtime/index.ts';
import {
  FIDELITY_BATCH,
  type FidelityReport,
  fidelityApplies,
  fidelityIndices,
  fidelityShard,
  mergeFidelity,
} from '../score/fidelity.ts';
import type { TensorData } from '../tensor/index.ts';
import {
  captureGroups,
  planRanges,
  planStrided,
  type Range,
  SHARD_OUTPUT_LIMIT,
  unstride,
} from './plan.ts';
import {
  boundedRangeSize,
  mergeReference,
  PREDICTION_BYTES,
  planReference,
  REFERENCE_RANGE,
  runReferenceShard,
} from './reference.ts';

/** What a run needs; adapters (CLI, Worker) load these. */
export interface PipelineInputs<L = unknown, P = unknown> {
  recipe: Recipe;
  task: {
    manifest: {
      id: string;
      metric: { primary: string };
      reference: { fp32: Record<string, number> };
    };
    predict(outputs: Record<string, TensorData>, n: number): P[];
    score(predictions: P[], labels: L): Record<string, number>;
    /**
     * Bound of one prediction's bytes in a shard output, when a prediction can take more than a
     * few bytes (detection lists, output tensors): the phases that return predictions (reference,
     * estimate, validate) size their ranges by it to stay under {@link SHARD_OUTPUT_LIMIT}.
     */
    predictionBytes?: number;
  };
  /** FP32 ONNX model bytes. */
  model: Uint8Array;
  /**
   * The QDQ model another framework quantized, when the recipe imports one (`recipe.imported`,
   * whose `model` is its sha256): its scales replace calibration (core/import).
   */
  imported?: Uint8Array;
  calibration: BatchSource & { labels?: unknown };
  evaluation: BatchSource & { labels: L };
}

/** What a phase tells its executor besides its shards. */
export interface PhaseMeta {
  /**
   * The outputs depend only on the model bytes, the data and the shard input, never on the
   * recipe (the FP32 reference pass): an executor may serve them from a cache keyed by that
   * content and report them as cached.
   */
  shared?: boolean;
}

/** Runs a phase's shards. The default runs them one after another in this process. */
export type ShardExecutor = <I, O>(
  phase: string,
  inputs: readonly I[],
  run: (input: I, index: number) => Promise<O>,
  meta?: PhaseMeta,
) => Promise<O[]>;

/** Sequential in-process execution (results in shard order). */
export const sequentialExecutor: ShardExecutor = async (_phase, inputs, run) => {
  const out = [];
  for (const [i, input] of inputs.entries()) out.push(await run(input, i));
  return out;
};

/** Options of {@link runPipeline}. */
export interface PipelineOptions {
  /** Shards per phase (default 1). Results do not depend on it. */
  shards?: number;
  /**
   * Shards per split of the two long sample-range phases, `reference` and `validate` (default:
   * `shards`). They split evenly into many small ranges at no extra cost per sample, so an
   * executor with a pool of workers asks for more of them than it has workers: a worker that
   * runs slow (a busy core) then takes fewer ranges instead of holding up the phase. Results do
   * not depend on it.
   */
  splitShards?: number;
  executor?: ShardExecutor;
  /** Run the validation phase (default true); `cann-quant calibrate` stops before it. */
  validate?: boolean;
  onProgress?: (phase: string, done: number, total: number) => void;
}

/** Capture batch size for calibration statistics and bias correction. */
export const CAPTURE_BATCH = 25;

/**
 * Tensors one capture session returns at most. Every captured output of a batch is held at once
 * (in ORT's WebAssembly memory and as JS copies), so the layers of a big model are captured in
 * groups, one forward pass per group: fmnist-mobilenet's 60 tensors in one session took its
 * `bias` shard to 143 MiB. Each tensor's statistics depend only on its own values over the same
 * batches, so the grouping changes no result.
 */
export const CAPTURE_GROUP = 8;

/**
 * Samples per model execution in the `ranges`, `histograms`, `bias`, `sensitivity` and `search`
 * shards. The statistics stay those of whole {@link CAPTURE_BATCH} batches: ranges and histogram
 * counts do not depend on how samples are grouped, and a batch's bias sums and output-deviation
 * sums continue over its parts in the same element order (`channelDiffSums`' partial sums,
 * `SampleSet.partSize` in measureOneLayerModels). Every captured tensor of an execution
 * is held at once, in ORT's WebAssembly memory and as a JS copy, so a part of 5 samples holds a
 * fifth of a batch's: for fmnist-detect's 64x64 canvases, 8 tensors of up to 128 KiB a sample
 * are 5 MiB per part against 25 MiB per batch.
 */
export const CAPTURE_PART = 5;

/** [start, end) offsets of the parts of a batch of `n` samples. */
function partsOf(n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += CAPTURE_PART) out.push([s, Math.min(n, s + CAPTURE_PART)]);
  return out;
}

/** The recipe's bias-correction setting and what the run did with it. */
export interface BiasCorrectionChoice {
  mode: Recipe['format']['biasCorrection'];
  applied: boolean;
  /** `auto`: the estimated loss of both candidates (the lower one was kept; ties: uncorrected). */
  estimatedLossPoints?: { corrected: number; uncorrected: number };
}

/** Everything a run produced. */
export interface PipelineResult {
  task: string;
  target: Target['id'];
  recipe: Recipe;
  calibration: { samples: number[]; sampler: string; report?: unknown };
  layers: QuantizedLayer[];
  /**
   * Calibration method per layer, its tier, and (searched layers) every method it tried with the
   * output SQNR of the model with only that layer quantized (core/calibrate/search.ts).
   */
  methods: Record<string, LayerMethod & { tier?: string; search?: SearchTrial[] }>;
  /** Per-layer sensitivity and tier, most sensitive first (absent when the recipe disables it). */
  sensitivity?: LayerTier[];
  /** The INT8 loss predicted from unlabelled calibration data, before any labelled evaluation. */
  estimate?: LossEstimate;
  /** Whether the bias correction was applied, and on what evidence (absent in older results). */
  biasCorrection?: BiasCorrectionChoice;
  /**
   * format.weightRounding 'gptq': per layer, the output SQNR of its weights alone on the
   * calibration inputs, rounded to nearest and as GPTQ chose them (core/quantize/gptq.ts).
   */
  rounding?: GptqReport[];
  /**
   * L3.fidelity: the emulation model against the reference kernels (null: not applicable, e.g.
   * cpu-wasm runs ORT's own QDQ kernels; absent in results made before the phase existed).
   */
  fidelity?: FidelityReport | null;
  skipped: PreparedModel['skipped'];
  emulation: ModelProto;
  qdq: ModelProto;
  evaluation?: {
    fp32: Record<string, number>;
    int8: Record<string, number>;
    comparison: MetricComparison;
    samples: number;
  };
  /**
   * Robustness stress tests (recipe.validation.stress): both models on perturbed copies of the
   * evaluation split. Absent when the recipe does not ask for them.
   */
  stress?: StressReport;
  /**
   * An imported quantization (recipe.imported): who produced it, and how each layer's
   * parameters became the target's (exact or re-fitted). Absent for calibrated runs.
   */
  imported?: {
    producer: string;
    /** How the file is quantized (core/import/qdq.ts; absent in reports from before it was kept). */
    format?: QdqImport['format'];
    layers: ImportedLayer[];
  };
  /** Wall time per phase; `cached`: shards of a shared phase served from a cache. */
  phases: { phase: string; shards: number; seconds: number; cached?: number }[];
  /**
   * What the recipe asks for that does not apply to this model and data, one line each
   * (core/recipe/warnings.ts): for example a critical glob or layer override matching no layer.
   */
  warnings: string[];
}

/**
 * Shards of a sample-range phase that returns per-sample predictions (estimate, validate): as
 * asked, and enough for ranges of at most {@link REFERENCE_RANGE} samples whose predictions
 * (`predictionBytes` each at most) fit in {@link PREDICTION_BYTES}, so that no shard output
 * passes {@link SHARD_OUTPUT_LIMIT} (fmnist-detect: 290 canvases of at most 20 detections).
 * Results do not depend on it.
 */
function rangeShards(samples: number, shards: number, predictionBytes?: number): number {
  const most = boundedRangeSize(predictionBytes, REFERENCE_RANGE, PREDICTION_BYTES);
  return Math.max(shards, Math.ceil(samples / most));
}

/** Elements per sample of the model's first output (the sampler's embedding), when static. */
function perSampleFloats(model: ModelProto): number | undefined {
  const dims = tensorTypeInfo(model.graph?.output[0]?.type)?.dims;
  if (dims === undefined || dims.length === 0) return undefined;
  let n = 1;
  for (const d of dims.slice(1)) {
    if (typeof d !== 'number' || d <= 0) return undefined;
    n *= d;
  }
  return n;
}

/** Recipe format options as quantizer options. */
function schemeOptions(recipe: Recipe) {
  return {
    ...(recipe.format.weights === 'per-tensor' ? { weightGranularity: 'per-tensor' as const } : {}),
    ...(recipe.format.weightClip ? { weightClip: recipe.format.weightClip } : {}),
    ...(recipe.format.activations !== 'target'
      ? { symmetricActivations: recipe.format.activations === 'symmetric' }
      : {}),
  };
}

/** The recipe's per-layer overrides matching a layer name (later entries win). */
function overridesFor(recipe: Recipe, name: string) {
  let out: Recipe['layers'][string] = {};
  for (const [pattern, o] of Object.entries(recipe.layers))
    if (globMatch(pattern, name)) out = { ...out, ...o };
  return out;
}

/**
 * Runs a recipe end to end: reference (FP32, shared) -> sample (pure) -> ranges -> histograms
 * -> sensitivity -> search -> quantize (pure) -> bias -> estimate -> fidelity -> validate. Each sample-wise phase is cut into batch-aligned shards and merged exactly, so the
 * result is identical for any shard count and executor.
 */
export async function runPipeline<L, P>(
  inputs: PipelineInputs<L, P>,
  options: PipelineOptions = {},
): Promise<PipelineResult> {
  const { recipe, task } = inputs;
  const shards = options.shards ?? 1;
  const splitShards = options.splitShards ?? shards;
  const exec = options.executor ?? sequentialExecutor;
  const target = getTarget(recipe.target);
  const phases: PipelineResult['phases'] = [];
  const timed = async <T>(phase: string, n: number, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    phases.push({ phase, shards: n, seconds: Math.round(performance.now() - t0) / 1000 });
    return r;
  };
  const fp32Model = decodeModel(inputs.model);
  const prepared = prepareModel(fp32Model, target);
  const plan: LayerPlan = planLayers(
    prepared,
    (name) => overridesFor(recipe, name).keepFloat === true,
  );

  // 1. reference: the FP32 model over the calibration split (sampler descriptions, the
  // estimate's FP32 half) and the evaluation split (validation's FP32 half), recipe-independent.
  const calib = inputs.calibration;
  const evalSplit = inputs.evaluation;
  const warnings = recipeWarnings(recipe, {
    layers: prepared.layers.map((l) => l.name),
    calibrationSize: calib.size,
  });
  // A range holds at least one batch: predictions larger than that cannot stay under the limit.
  const batchBytes = (task.predictionBytes ?? 0) * DEFAULT_BATCH_SIZE;
  if (batchBytes > PREDICTION_BYTES)
    warnings.push(
      `the model's outputs take ${Math.round(task.predictionBytes! / 1024)} KiB a sample: a batch of ${DEFAULT_BATCH_SIZE} passes the ${SHARD_OUTPUT_LIMIT / 1024 / 1024} MiB a shard output may take (the service records such shards)`,
    );
  const { samples: n, sampler, seed } = recipe.calibration;
  const validate = options.validate !== false;
  const pool = samplerPool(calib.size, recipe.calibration.pool);
  if (sampler === 'coverage' && pool < Math.min(n, calib.size))
    throw new RangeError(`calibration.pool (${pool}) is smaller than calibration.samples (${n})`);
  const refShards = planReference(
    { calibration: calib.size, evaluation: validate ? evalSplit.size : 0 },
    {
      describe: sampler === 'coverage' && !recipe.imported,
      validate,
      pool,
      embeddingFloats: perSampleFloats(fp32Model),
      ...(task.predictionBytes !== undefined ? { predictionBytes: task.predictionBytes } : {}),
    },
  );
  const reference = mergeReference(
    await timed('reference', refShards.length, () =>
      exec(
        'reference',
        refShards,
        (r) =>
          runReferenceShard(
            inputs.model,
            r.split === 'calibration' ? calib : evalSplit,
            (out, k) => task.predict(out, k),
            r,
          ),
        { shared: true },
      ),
    ),
  );

  // 7. estimate: INT8 vs the reference's FP32 on (up to 2,000 samples of) the unlabelled
  // calibration split; with `biasCorrection: 'auto'` for the uncorrected layers too.
  const estSamples = Math.min(calib.size, DEFAULT_ESTIMATE_SAMPLES);
  const estRanges = planRanges(
    estSamples,
    rangeShards(estSamples, shards, task.predictionBytes),
    DEFAULT_BATCH_SIZE,
  );
  const ref = reference.calibration;
  const primary = task.manifest.metric.primary;
  const estimateOf = async (phase: string, model: ModelProto): Promise<LossEstimate> => {
    const bytes = encodeModel(model);
    const int8Calib = await timed(phase, estRanges.length, () =>
      exec(phase, estRanges, (r) =>
        predictModel(task, bytes, calib, { start: r.start, end: r.end }),
      ),
    );
    const pairs = {
      start: 0,
      count: ref.predictions.length,
      fp32: ref.predictions,
      int8: int8Calib.flat(),
      ...(ref.classes !== undefined ? { classes: ref.classes, fp32Logits: ref.logits! } : {}),
    };
    return estimateLoss(pairs, {
      kind: estimatorFor(primary),
      reference: task.manifest.reference.fp32[primary] ?? 1,
    });
  };
  // 2-7. calibration: samples, ranges, histograms, sensitivity, method search, bias correction,
  // estimate; or, for an imported quantization, the framework's parameters on the target.
  const calibrate = async () => {
    // choose the calibration samples.
    let samples: number[];
    let samplerReport: unknown;
    if (sampler === 'random') samples = randomSamples(calib.size, n, seed);
    else if (sampler === 'spread') samples = spreadIndices(calib.size, n);
    else {
      const selection = selectSamples(reference.descriptions!, n, seed);
      samples = selection.indices;
      samplerReport = selection.report;
    }
    // Nothing after the selection reads the descriptions: every later shard of the replay would
    // hold them (fmnist-detect: 1,000 FP32 heatmaps, 10 MiB).
    reference.descriptions = undefined;

    // 2-3. ranges, then histograms with merged limits (two exact merges).
    const chunks = planRanges(samples.length, shards, CAPTURE_BATCH).map((r) =>
      samples.slice(r.start, r.end),
    );
    const tensors = plan.tensors;
    // Every part of the chunk (CAPTURE_PART), in order, for each group of tensors (CAPTURE_GROUP).
    const observe = async (
      chunk: number[],
      visit: (out: Record<string, TensorData>, group: readonly string[]) => void,
    ) => {
      for (const group of tensors.length > 0 ? captureGroups(tensors, CAPTURE_GROUP) : []) {
        const session = await captureSession(prepared.model, group);
        try {
          for (const [s, e] of partsOf(chunk.length))
            visit(await session.run(await gatherBatch(calib, chunk.slice(s, e)), group), group);
        } finally {
          await session.release();
        }
      }
    };
    const rangeParts = await timed('ranges', chunks.length, () =>
      exec('ranges', chunks, async (chunk) => {
        const ranges: Record<string, TensorRange> = Object.fromEntries(
          tensors.map((t) => [t, emptyRange()]),
        );
        await observe(chunk, (out, group) => {
          for (const t of group)
            ranges[t] = observeRange(ranges[t]!, out[t]!.data as Float32Array, t);
        });
        return ranges;
      }),
    );
    const ranges = Object.fromEntries(
      tensors.map((t) => [t, rangeParts.map((p) => p[t]!).reduce(mergeRanges, emptyRange())]),
    );
    const limits = Object.fromEntries(
      tensors.map((t) => [t, Math.max(-ranges[t]!.min, ranges[t]!.max, 0)]),
    );
    const histParts = await timed('histograms', chunks.length, () =>
      exec('histograms', chunks, async (chunk) => {
        const hists: Record<string, Histogram> = Object.fromEntries(
          tensors.map((t) => [t, emptyHistogram(limits[t]!)]),
        );
        await observe(chunk, (out, group) => {
          for (const t of group) observeHistogram(hists[t]!, out[t]!.data as Float32Array);
        });
        return hists;
      }),
    );
    const stats = new Map<string, TensorStats>(
      tensors.map((t) => [
        t,
        { range: ranges[t]!, histogram: histParts.map((p) => p[t]!).reduce(mergeHistograms) },
      ]),
    );

    // 4. sensitivity: each layer quantized alone (default calibration: the high-tier strategy),
    // measured at the model output against the target's all-float path; shards = layer groups.
    const scheme = schemeOptions(recipe);
    let tiers: LayerTier[] | undefined;
    // The one-layer models the sensitivity pass measured (the high tier's method), and their SQNR.
    const measured = new Map<string, OneLayerMeasurement>();
    if (recipe.sensitivity.enabled && plan.candidates.length > 0) {
      const base = layersFromStats(plan, stats, target, {
        ...scheme,
        method: recipe.strategies.high,
      }).layers;
      // The kind of prediction (class or structured), from the reference pass's FP32 predictions
      // of the first calibration samples; a model run only when the pass kept none.
      const probe =
        reference.calibration.predictions.length > 0
          ? reference.calibration.predictions
          : task.predict(await firstOutputs(fp32Model, calib), 1);
      const classPredictions = typeof probe[0] === 'number';
      // Round-robin: each shard walks the reference once, and early layers cost the most.
      const groups = planStrided(
        base.map((l) => l.name),
        shards,
      );
      const tables = await timed('sensitivity', groups.length, () =>
        exec('sensitivity', groups, (layerNames) =>
          measureSensitivity(
            prepared,
            base,
            target,
            calib,
            { indices: samples, batchSize: CAPTURE_BATCH, partSize: CAPTURE_PART },
            {
              layers: layerNames,
              // Prediction agreement only for class predictions: for structured predictions
              // (detections) exact equality would flag every layer; SQNR ranks those.
              ...(classPredictions
                ? { predict: (out: Record<string, TensorData>, k: number) => task.predict(out, k) }
                : {}),
              floatPath: false,
            },
          ),
        ),
      );
      const table = mergeSensitivity(...tables);
      for (const l of base) measured.set(l.name, { layer: l, ...table.layers[l.name]! });
      tiers = assignTiers(table.layers, {
        critical: recipe.sensitivity.critical,
        rankBy: recipe.sensitivity.metric,
        thresholds: {
          highFraction: recipe.sensitivity.highFraction,
          lowFraction: recipe.sensitivity.lowFraction,
        },
        methods: recipe.strategies,
      });
    }
    const tierOf = new Map((tiers ?? []).map((t) => [t.name, t.tier]));

    // 5. method per layer = recipe override > tier strategy (medium without tiers), then the
    // search among the tier's method and the candidates for the layers without an override.
    const methods: PipelineResult['methods'] = {};
    const overridden = new Set<string>();
    for (const c of plan.candidates) {
      const o = overridesFor(recipe, c.name);
      if (o.method !== undefined) overridden.add(c.name);
      const tier = o.tier ?? tierOf.get(c.name) ?? 'medium';
      const base = recipe.strategies[tier];
      methods[c.name] = {
        method: o.method ?? base.method,
        ...(o.percentile !== undefined
          ? { percentile: o.percentile }
          : base.percentile !== undefined
            ? { percentile: base.percentile }
            : {}),
        tier,
      };
    }
    // A dynamic target computes activation scales at run time: every method gives the same
    // model, so there is nothing to search.
    if (tiers && !isDynamic(target)) {
      const { tiers: searchTiers, candidates, minGainDb } = recipe.sensitivity.search;
      const searchable = plan.candidates.flatMap((c) => {
        const { tier, ...own } = methods[c.name]!;
        return overridden.has(c.name) || !searchTiers.includes(tier as Tier)
          ? []
          : [{ name: c.name, methods: searchMethods(own, candidates) }];
      });
      const chosen = await searchLayerMethods(searchable, measured, minGainDb, {
        measure: async (layers) =>
          (
            await measureOneLayerModels(
              prepared,
              layers,
              target,
              calib,
              { indices: samples, batchSize: CAPTURE_BATCH, partSize: CAPTURE_PART },
              { floatPath: false },
            )
          ).deviations,
        layersWith: (m) => layersFromStats(plan, stats, target, { ...scheme, method: m }).layers,
        run: (jobs, measureJob) =>
          timed('search', Math.min(shards, jobs.length), () =>
            exec('search', planStrided(jobs, shards), measureJob).then(unstride),
          ),
      });
      for (const [name, { search, index }] of chosen) {
        const { sqnrDb: _, gainDb: __, ...best } = search[index]!;
        methods[name] = { ...best, tier: methods[name]!.tier, search };
      }
    }

    // quantize (pure)
    const fromStats = layersFromStats(plan, stats, target, { ...scheme, layerMethods: methods });
    let layers = fromStats.layers;

    // 5b. rounding (format.weightRounding 'gptq', or a layer override's): each layer's integers chosen against the
    // Gram matrix of its inputs over the calibration samples (core/quantize/gptq.ts); shards =
    // layer groups, each layer's result depending only on the layer, so any shard count agrees.
    let rounding: GptqReport[] | undefined;
    const gptqLayers = layers.filter(
      (l) =>
        (overridesFor(recipe, l.name).weightRounding ?? recipe.format.weightRounding) === 'gptq',
    );
    if (gptqLayers.length > 0) {
      // The inputs as the INT8 model computes them (upstream layers quantized), as the bias
      // correction reads them; the layer quantizes them with its own parameters (InputGram).
      const { model, inputOf } = quantizedPathModel(
        prepared,
        layers,
        target,
        fromStats.outputParams,
      );
      const byName = new Map(gptqLayers.map((l) => [l.name, l]));
      const floats = new Map(plan.candidates.map((c) => [c.name, c.weight]));
      const results = await timed('rounding', Math.min(shards, gptqLayers.length), () =>
        exec(
          'rounding',
          planStrided(
            gptqLayers.map((l) => l.name),
            shards,
          ),
          async (names) => {
            const out: { q: Uint8Array; report: GptqReport }[] = [];
            for (const group of captureGroups(names, CAPTURE_GROUP)) {
              const members = group.map((name) => {
                const layer = byName.get(name)!;
                return { layer, gram: new InputGram(layer), input: inputOf(layer.input) };
              });
              const tensors = [...new Set(members.map((m) => m.input))];
              const session = await captureSession(model, tensors);
              try {
                for (let i = 0; i < samples.length; i += CAPTURE_BATCH) {
                  const batch = samples.slice(i, i + CAPTURE_BATCH);
                  for (const [s, e] of partsOf(batch.length)) {
                    const got = await session.run(
                      await gatherBatch(calib, batch.slice(s, e)),
                      tensors,
                    );
                    for (const m of members) m.gram.add(got[m.input]!);
                  }
                }
              } finally {
                await session.release();
              }
              for (const { layer, gram } of members) {
                const { q, report } = gptqWeights(layer, floats.get(layer.name)!, gram);
                // every scheme's integers fit one byte above qmin (int4, int8, uint8)
                out.push({ q: Uint8Array.from(q, (v) => v - layer.weight.qmin), report });
              }
            }
            return out;
          },
        ).then(unstride),
      );
      rounding = results.map((r) => r.report);
      const rounded = new Map(gptqLayers.map((l, i) => [l.name, results[i]!.q]));
      layers = layers.map((l) => {
        const bytes = rounded.get(l.name);
        if (!bytes) return l;
        const q = Int32Array.from(bytes, (v) => v + l.weight.qmin);
        return { ...l, weight: { ...l.weight, q } };
      });
    }

    // 6. bias: per-batch per-channel sums of (int8 - float reference on the same input), merged
    // in batch order.
    // `auto`: both candidates go through the estimate (step 7), the lower estimated loss wins.
    const biasMode = recipe.format.biasCorrection;
    const uncorrected = layers;
    let corrected: QuantizedLayer[] | undefined;
    if (biasMode !== false && layers.length > 0) {
      const { model: biasModel, pairs } = buildBiasCorrectionModel(
        prepared,
        layers,
        target,
        fromStats.outputParams,
      );
      const parts = await timed('bias', chunks.length, () =>
        exec('bias', chunks, async (chunk) => {
          // batches[batch][layer]: the same sums whichever group of layers computed them
          const batches: number[][][] = [];
          for (let i = 0; i < chunk.length; i += CAPTURE_BATCH) batches.push([]);
          // Two captured tensors per layer (its INT8 output and its float reference): groups of
          // CAPTURE_GROUP / 2 layers keep a session at CAPTURE_GROUP tensors.
          for (const group of captureGroups(
            pairs.map((p, li) => ({ p, li })),
            Math.max(1, CAPTURE_GROUP / 2),
          )) {
            const outputs = group.flatMap(({ p }) => [p.int8, p.reference]);
            const session = await captureSession(biasModel, outputs);
            try {
              for (let i = 0, k = 0; i < chunk.length; i += CAPTURE_BATCH, k++) {
                const batch = chunk.slice(i, i + CAPTURE_BATCH);
                for (const [s, e] of partsOf(batch.length)) {
                  const feeds = await gatherBatch(calib, batch.slice(s, e));
                  const out = await session.run(feeds, outputs);
                  for (const { p, li } of group) {
                    const ref = out[p.reference]!;
                    batches[k]![li] = channelDiffSums(
                      out[p.int8]!,
                      ref,
                      outputChannelAxis(p.layer, ref.dims.length),
                      batches[k]![li],
                    );
                  }
                }
              }
            } finally {
              await session.release();
            }
          }
          return batches;
        }),
      );
      const all = parts.flat();
      corrected = layers.map(
        (l, li) =>
          correctLayerBias(
            l,
            all.map((b) => b[li]!),
          ).layer,
      );
    }
    const modelsOf = (ls: QuantizedLayer[]) => {
      const q = buildQdqModel(prepared, ls, target, fromStats.outputParams);
      return {
        qdq: q,
        emulation: target.executor === 'ort-qdq' ? q : buildEmulationModel(prepared, ls, target),
      };
    };
    let chosen = modelsOf(corrected ?? uncorrected);
    let estimate = await estimateOf('estimate', chosen.emulation);
    let biasCorrection: BiasCorrectionChoice = { mode: biasMode, applied: corrected !== undefined };
    if (biasMode === 'auto' && corrected) {
      const without = modelsOf(uncorrected);
      const withoutEstimate = await estimateOf('estimate-uncorrected', without.emulation);
      // Ties keep the model unchanged: the correction has to earn its place.
      const applied = estimate.lossPoints < withoutEstimate.lossPoints;
      biasCorrection = {
        mode: 'auto',
        applied,
        estimatedLossPoints: {
          corrected: estimate.lossPoints,
          uncorrected: withoutEstimate.lossPoints,
        },
      };
      if (!applied) {
        chosen = without;
        estimate = withoutEstimate;
      }
    }
    layers = biasCorrection.applied ? corrected! : uncorrected;
    return {
      samples,
      samplerReport,
      tiers,
      methods,
      layers,
      estimate,
      biasCorrection,
      rounding,
      skipped: plan.skipped,
      importReport: undefined as PipelineResult['imported'],
      ...chosen,
    };
  };
  // An imported quantization (core/import): no calibration samples are chosen or observed and
  // nothing is corrected; the framework's parameters go onto the target, and the estimate still
  // predicts their loss from the unlabelled calibration split.
  const imported = async () => {
    if (!recipe.imported || !inputs.imported)
      throw new RangeError(
        recipe.imported
          ? 'the recipe imports a quantized model (imported.model) but its bytes were not given'
          : 'an imported model was given but the recipe does not import one (imported.model)',
      );
    const foreign = importQdq(decodeModel(inputs.imported));
    const placed = quantizeImported(foreign, target);
    const chosen = { qdq: placed.qdq, emulation: placed.emulation };
    return {
      samples: [] as number[],
      samplerReport: undefined as unknown,
      tiers: undefined as LayerTier[] | undefined,
      methods: {} as PipelineResult['methods'],
      layers: placed.layers,
      estimate: await estimateOf('estimate', placed.emulation),
      biasCorrection: { mode: false, applied: false } as BiasCorrectionChoice,
      rounding: undefined as GptqReport[] | undefined,
      skipped: placed.skipped,
      importReport: {
        producer: foreign.producer,
        format: foreign.format,
        layers: placed.report,
      } as PipelineResult['imported'],
      ...chosen,
    };
  };
  const calibrated = inputs.imported || recipe.imported ? await imported() : await calibrate();
  const { samples, samplerReport, tiers, methods, estimate, biasCorrection, qdq, emulation } =
    calibrated;
  const layers = calibrated.layers;
  const emulationBytes = encodeModel(emulation);

  // 8. fidelity (L3): the emulation model against the scalar reference kernels, bit for bit,
  // on the check set; shards = batch-aligned parts of it, counts summed.
  let fidelity: FidelityReport | null = null;
  if (fidelityApplies({ target: target.id, layers })) {
    const check = fidelityIndices(calib.size);
    const parts = planRanges(check.length, shards, FIDELITY_BATCH).map((r) =>
      check.slice(r.start, r.end),
    );
    const counts = await timed('fidelity', parts.length, () =>
      exec('fidelity', parts, (indices) => fidelityShard({ layers, emulation }, calib, indices)),
    );
    fidelity = mergeFidelity(counts, check.length);
  }

  const result: PipelineResult = {
    task: task.manifest.id,
    target: target.id,
    recipe,
    calibration: {
      samples,
      sampler: calibrated.importReport ? 'imported' : sampler,
      ...(samplerReport ? { report: samplerReport } : {}),
    },
    layers,
    methods,
    ...(tiers ? { sensitivity: tiers } : {}),
    estimate,
    biasCorrection,
    ...(calibrated.rounding ? { rounding: calibrated.rounding } : {}),
    fidelity,
    skipped: calibrated.skipped,
    ...(calibrated.importReport ? { imported: calibrated.importReport } : {}),
    emulation,
    qdq,
    phases,
    warnings,
  };
  if (options.validate === false) return result;

  // 9. validate: INT8 predictions over evaluation ranges, concatenated in order, scored beside
  // the reference's FP32 predictions.
  const evalRanges: Range[] = planRanges(
    evalSplit.size,
    rangeShards(evalSplit.size, splitShards, task.predictionBytes),
    DEFAULT_BATCH_SIZE,
  );
  const level = target.executor === 'ort-qdq' ? 'all' : 'disabled';
  const preds = await timed('validate', evalRanges.length, () =>
    exec('validate', evalRanges, (r) =>
      predictModel(task, emulationBytes, evalSplit, {
        start: r.start,
        end: r.end,
        graphOptimizationLevel: level,
      }),
    ),
  );
  const fp32 = task.score(reference.evaluation ?? [], evalSplit.labels);
  const int8 = task.score(preds.flat(), evalSplit.labels);
  result.evaluation = {
    fp32,
    int8,
    comparison: compareMetric(task.manifest.metric.primary, fp32, int8),
    samples: evalSplit.size,
  };

  // 10. stress (recipe.validation.stress; not for QAT models, whose FP32 side is not the task's
  // model): the clean split's value range (ranges merged exactly), then FP32 and INT8 over the
  // same evaluation ranges of each perturbed copy. Perturbations are seeded per sample index,
  // so every shard count gives the same predictions.
  const stressSpec = recipe.validation?.stress;
  if (stressSpec && !recipe.qat) {
    const primary = task.manifest.metric.primary;
    const stresses = defaultStresses(await evalSplit.batch(0, 1));
    const parts = await timed('stress-range', evalRanges.length, () =>
      exec('stress-range', evalRanges, (r) =>
        valueRange({
          size: r.end - r.start,
          batch: (a, b) => evalSplit.batch(r.start + a, r.start + b),
        }),
      ),
    );
    const range = mergeValueRanges(parts);
    const jobs = stresses.flatMap((_, k) =>
      (['fp32', 'int8'] as const).flatMap((model) =>
        evalRanges.map((r) => ({ stress: k, model, start: r.start, end: r.end })),
      ),
    );
    const out = await timed('stress', jobs.length, () =>
      exec('stress', jobs, (j) =>
        predictModel(
          task,
          j.model === 'fp32' ? inputs.model : emulationBytes,
          stressedSource(evalSplit, stresses[j.stress]!, 0, range),
          {
            start: j.start,
            end: j.end,
            graphOptimizationLevel: j.model === 'fp32' ? 'disabled' : level,
          },
        ),
      ),
    );
    const predsOf = (k: number, model: 'fp32' | 'int8') =>
      jobs.flatMap((j, i) => (j.stress === k && j.model === model ? out[i]! : []));
    const stressed = stresses.map((_, k) => ({
      fp32: predsOf(k, 'fp32'),
      int8: predsOf(k, 'int8'),
    }));
    result.stress = stressReportOf(
      primary,
      (p: P[], labels: L) => task.score(p, labels)[primary]!,
      evalSplit.labels,
      { fp32: reference.evaluation ?? [], int8: preds.flat() },
      stresses,
      stressed,
      stressSpec.thresholdPoints,
    );
  }
  return result;
}

/** The value range of each input over the whole split, from the ranges of its parts. */
function mergeValueRanges(
  parts: readonly Record<string, [number, number]>[],
): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const part of parts)
    for (const [name, [lo, hi]] of Object.entries(part)) {
      const r = out[name];
      out[name] = r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi];
    }
  return out;
}

/** A one-layer model's measured deviation at the model output. */
interface OneLayerMeasurement {
  layer: QuantizedLayer;
  sqnrDb: number;
  /** SQNR per compared output (dB). */
  outputs: Record<string, number>;
}

/** A (layer, method) pair of the search whose one-layer model has to run. */
interface SearchJob {
  name: string;
  trial: number;
  layer: QuantizedLayer;
}

/**
 * The per-layer method search (core/calibrate/search.ts): for each searchable layer, the one-layer
 * model of each method in its list (the tier's method first), measured against the all-float
 * emulation over the calibration samples; a method whose activation parameters equal an already
 * measured model's (an earlier trial's, or the sensitivity pass's in `measured`) reuses that
 * measurement. The remaining models run as jobs, sharded by `run`; a job's result depends only on
 * its layer and method, so the choice is the same for any shard count.
 */
async function searchLayerMethods(
  searchable: readonly { name: string; methods: LayerMethod[] }[],
  measured: ReadonlyMap<string, OneLayerMeasurement>,
  minGainDb: number,
  ops: {
    /** Measures one-layer models (a layer name may repeat) -> one result per model, in order. */
    measure: (layers: QuantizedLayer[]) => Promise<Omit<OneLayerMeasurement, 'layer'>[]>;
    /** Every layer calibrated with one method (pure). */
    layersWith: (m: LayerMethod) => QuantizedLayer[];
    /** Runs the jobs in groups of `measureJob`; one result per job, in job order. */
    run: (
      jobs: SearchJob[],
      measureJob: (group: SearchJob[]) => Promise<Omit<OneLayerMeasurement, 'layer'>[]>,
    ) => Promise<Omit<OneLayerMeasurement, 'layer'>[]>;
  },
): Promise<Map<string, { search: SearchTrial[]; index: number }>> {
  const sets = new Map<string, Map<string, QuantizedLayer>>();
  const layerWith = (m: LayerMethod, name: string) => {
    const key = methodKey(m);
    let set = sets.get(key);
    if (!set) {
      set = new Map(ops.layersWith(m).map((l) => [l.name, l]));
      sets.set(key, set);
    }
    return set.get(name)!;
  };
  type Trial = LayerMethod & { layer: QuantizedLayer; result?: OneLayerMeasurement };
  const trials = new Map<string, Trial[]>();
  const jobs: SearchJob[] = [];
  for (const { name, methods } of searchable) {
    const list: Trial[] = methods.map((m) => ({ ...m, layer: layerWith(m, name) }));
    const firstSame = (t: Trial) => list.findIndex((u) => sameActivation(u.layer.act, t.layer.act));
    if (list.every((t) => firstSame(t) === 0)) continue; // every method gives the same model
    const base = measured.get(name);
    for (const [i, t] of list.entries()) {
      if (firstSame(t) < i) continue;
      if (base && sameActivation(base.layer.act, t.layer.act)) t.result = base;
      else jobs.push({ name, trial: i, layer: t.layer });
    }
    trials.set(name, list);
  }
  if (jobs.length > 0) {
    const results = await ops.run(jobs, async (group) =>
      (await ops.measure(group.map((j) => j.layer))).map((r) => ({
        sqnrDb: r.sqnrDb,
        outputs: r.outputs,
      })),
    );
    for (const [k, r] of results.entries()) {
      const j = jobs[k]!;
      const t = trials.get(j.name)![j.trial]!;
      t.result = { layer: t.layer, ...r };
    }
  }
  const out = new Map<string, { search: SearchTrial[]; index: number }>();
  for (const [name, list] of trials) {
    const results = list.map(
      (t) => t.result ?? list.find((u) => sameActivation(u.layer.act, t.layer.act))!.result!,
    );
    const noise = results.map((r) => relativeNoise(r.outputs));
    const index = chooseTrial(noise, minGainDb);
    const search = list.map(
      ({ layer: _, result: __, ...m }, i): SearchTrial => ({
        ...m,
        sqnrDb: results[i]!.sqnrDb,
        ...(i > 0 ? { gainDb: gainDb(noise[0]!, noise[i]!) } : {}),
      }),
    );
    out.set(name, { search, index });
  }
  return out;
}

/** FP32 outputs of the first calibration sample (to see what kind of predictions a task makes). */
async function firstOutputs(
  model: ModelProto,
  source: PipelineInputs['calibration'],
): Promise<Record<string, TensorData>> {
  const session = await createSession(encodeModel(model));
  try {
    return await session.run(await source.batch(0, 1));
  } finally {
    await session.release();
  }
}
