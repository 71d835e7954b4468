import { z } from 'zod';
import {
  dynamicRefusal,
  getTarget,
  isDynamic,
  TARGETS,
  type TargetId,
} from '../formats/targets.ts';

/**
 * The recipe: a declarative, versioned JSON document (no code) that the CLI and the service
 * re-execute. One zod schema validates it everywhere; `parseRecipe` turns zod's issues into
 * readable errors with the field path, what was expected and what was given.
 */

const targetIds = Object.keys(TARGETS) as [string, ...string[]];

const MethodIdSchema = z.enum(['max', 'percentile', 'kl', 'kl-smooth', 'mse']);

/**
 * A percentile given beside another method would be ignored: refused instead, where both are
 * written (a strategy, a search candidate, a layer override with a method).
 */
const percentileOnlyWithPercentile = (
  m: { method?: string; percentile?: number | undefined },
  ctx: z.RefinementCtx,
) => {
  if (m.percentile !== undefined && m.method !== undefined && m.method !== 'percentile')
    ctx.addIssue({
      code: 'custom',
      path: ['percentile'],
      message: `no percentile with method '${m.method}' (it applies to method 'percentile' only)`,
    });
};

/** A calibration method and its parameter. */
export const MethodSchema = z
  .object({
    method: MethodIdSchema,
    percentile: z.number().gt(50).lte(100).optional(),
  })
  .strict()
  .superRefine(percentileOnlyWithPercentile);

const TierSchema = z.enum(['high', 'medium', 'low']);

/**
 * The default method search: every layer tries max and percentile 99.99 beside its tier's method,
 * and takes one only if it is at least 0.5 dB quieter at the model output. Clipping helps a layer
 * whose activations have rare outliers and costs one whose extremes carry signal: measured, the
 * tiers' clipping cost fmnist-resnet 0.59 dB of output SQNR against max everywhere, and gained
 * fmnist-detect 7.5 dB (docs/CALIBRATION.md), so each layer is asked. Percentile 99.99 is the
 * high tier's default, whose one-layer models the sensitivity pass has measured already: trying
 * it costs no model run. The margin keeps the tiers' methods where the 50 samples barely tell the
 * methods apart (smoke-fmnist: 0.18 and 0.38 dB).
 */
export const defaultSearch = () => ({
  tiers: ['high', 'medium', 'low'] as ('high' | 'medium' | 'low')[],
  candidates: [
    { method: 'max' as const },
    { method: 'percentile' as const, percentile: 99.99 },
  ] as z.output<typeof MethodSchema>[],
  minGainDb: 0.5,
});

const SearchSchema = z
  .object({
    tiers: z
      .array(TierSchema)
      .max(3)
      .default(() => defaultSearch().tiers),
    candidates: z
      .array(MethodSchema)
      .max(4)
      .default(() => defaultSearch().candidates),
    /** A candidate replaces the tier's method when at least this much quieter (dB). */
    minGainDb: z
      .number()
      .min(0)
      .max(20)
      .default(() => defaultSearch().minGainDb),
  })
  .strict();

/** Per-layer override (by layer name or glob with * and ?). */
export const LayerOverrideSchema = z
  .object({
    method: MethodIdSchema.optional(),
    percentile: z.number().gt(50).lte(100).optional(),
    tier: TierSchema.optional(),
    keepFloat: z.boolean().optional(),
    /** This layer's weight rounding, over the recipe's `format.weightRounding`. */
    weightRounding: z.enum(['nearest', 'gptq']).optional(),
  })
  .strict()
  .superRefine(percentileOnlyWithPercentile);

/** Recipe version 1. */
export const RecipeSchema = z
  .object({
    version: z.literal(1),
    name: z.string().min(1).max(100),
    description: z.string().max(2000).optional(),
    task: z.string().min(1).max(64),
    target: z.enum(targetIds),
    calibration: z
      .object({
        samples: z.number().int().min(1).max(5000).default(50),
        sampler: z.enum(['coverage', 'random', 'spread']).default('coverage'),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1)
          .default(0),
        /**
         * The coverage sampler chooses among the first `pool` calibration samples (default: the
         * whole split). Each costs one FP32 execution; fewer cover the data less well
         * (core/calibrate/sampler.ts `samplerPool`).
         */
        pool: z.number().int().min(1).max(1_000_000).optional(),
      })
      .strict()
      .superRefine((c, ctx) => {
        if (c.pool !== undefined && c.pool < c.samples)
          ctx.addIssue({
            code: 'custom',
            path: ['pool'],
            message: `at least calibration.samples (${c.samples})`,
          });
      })
      .default({ samples: 50, sampler: 'coverage', seed: 0 }),
    sensitivity: z
      .object({
        enabled: z.boolean().default(true),
        metric: z.enum(['sqnr', 'kl', 'agreement']).default('sqnr'),
        critical: z.array(z.string().min(1).max(200)).max(100).default([]),
        /** Fraction of layers in the high tier (most sensitive) and the low tier. */
        highFraction: z.number().min(0).max(1).default(0.2),
        lowFraction: z.number().min(0).max(1).default(0.4),
        /**
         * Per-layer method search (core/calibrate/search.ts): each layer of these tiers is
         * measured alone with its tier's method and with each candidate, like the sensitivity
         * pass; a candidate at least `minGainDb` quieter at the output replaces the tier's method
         * (the quietest such). Layers with a method override are not searched. `tiers: []` or
         * `candidates: []` turns it off.
         */
        search: SearchSchema.default(defaultSearch),
      })
      .strict()
      .default(() => ({
        enabled: true,
        metric: 'sqnr' as const,
        critical: [],
        highFraction: 0.2,
        lowFraction: 0.4,
        search: defaultSearch(),
      })),
    strategies: z
      .object({ high: MethodSchema, medium: MethodSchema, low: MethodSchema })
      .strict()
      // The seed's default for the medium tier is KL; measured here, KL's entropy threshold
      // clips spiky activations (normalised image inputs, saturated ReLU6) far too hard: 39
      // points lost on smoke-fmnist and 79 on fmnist-mobilenet when it calibrates medium-tier
      // layers (bench/results/calibration-quality-*.md). The default medium tier uses AMCT's
      // IFMR clip search (mse) instead; KL stays available per tier or per layer.
      .default({
        high: { method: 'percentile', percentile: 99.99 },
        medium: { method: 'mse' },
        low: { method: 'max' },
      }),
    format: z
      .object({
        weights: z.enum(['per-channel', 'per-tensor']).default('per-channel'),
        /**
         * Weight clip range per channel: 'max' (absent: the channel's extreme values) or 'mse'
         * (AMCT IFMR-style search minimising the channel's squared error; helps int4 weights).
         */
        weightClip: z.enum(['max', 'mse']).optional(),
        /**
         * Which integer each weight takes, on the scales the clip gives: 'nearest' (absent) or
         * 'gptq' (core/quantize/gptq.ts: chosen against the layer's inputs over the calibration
         * samples, so that the rounding errors of correlated inputs cancel).
         */
        weightRounding: z.enum(['nearest', 'gptq']).optional(),
        activations: z.enum(['target', 'symmetric', 'asymmetric']).default('target'),
        /**
         * Empirical bias correction (core/quantize/bias-correction.ts): true, false, or 'auto'
         * (computed, then kept only if it lowers the loss estimated on the unlabelled calibration
         * split; the run reports both estimates).
         */
        biasCorrection: z.union([z.boolean(), z.literal('auto')]).default(true),
      })
      .strict()
      .default({ weights: 'per-channel', activations: 'target', biasCorrection: true }),
    layers: z.record(z.string().min(1).max(200), LayerOverrideSchema).default({}),
    /**
     * The feedback loop's settings (core/feedback/loop.ts), read by `cann-quant validate
     * --feedback` (its --rounds and --threshold override them); calibrate, score and the service
     * do not run the loop and warn when `rounds` asks for it (core/recipe/warnings.ts).
     */
    feedback: z
      .object({
        /** Rounds at most; 0: none asked for (`validate --feedback` then runs 2). */
        rounds: z.number().int().min(0).max(5).default(0),
        /**
         * A layer whose own quantization costs more than this many points is revisited: its
         * prediction flips with only it quantized, in points (layers of non-class outputs, whose
         * cost is not counted in points, stay eligible).
         */
        thresholdPoints: z.number().min(0).default(2),
      })
      .strict()
      .default({ rounds: 0, thresholdPoints: 2 }),
    /**
     * Validation extras. `stress`: the robustness stress tests (core/evaluate/stress.ts) after
     * validation, in `cann-quant score` and the service's primary run: the FP32 and INT8 models
     * on perturbed copies of the evaluation split (noise, contrast, brightness for images; token
     * swaps and drops for text). A perturbation that adds more than `thresholdPoints` to the
     * clean loss is flagged. Absent: not run (each perturbation costs two evaluation passes).
     */
    validation: z
      .object({
        stress: z
          .object({ thresholdPoints: z.number().min(0).max(100).default(0.5) })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    /**
     * Cross-framework quantization (core/import): a QDQ ONNX model another framework quantized
     * (PyTorch, ONNX Runtime, TensorRT's toolkit), its sha256 (hex) as uploaded with
     * `POST /api/v1/models?task=<id>&format=qdq` (or `cann-quant submit --qdq <file>`). Its
     * scales replace calibration: the calibration, sensitivity, strategies, format and layers
     * fields are not used. `producer` names the framework for the leaderboard.
     */
    imported: z
      .object({
        model: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lowercase hex'),
        producer: z.string().min(1).max(100).optional(),
      })
      .strict()
      .optional(),
    /**
     * A QAT model (`cann-quant train`) scored instead of the task's model: its sha256 (hex) as
     * uploaded with `POST /api/v1/models?task=<id>` (or `cann-quant submit --qat <dir>`), and
     * the training's stages from its stage log (the L4.stages evidence).
     */
    qat: z
      .object({
        model: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lowercase hex'),
        stages: z
          .array(
            z
              .object({
                tiers: z.array(TierSchema).min(1).max(3),
                simulatedArithmetic: z.boolean(),
              })
              .strict(),
          )
          .max(10)
          .default([]),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.imported && r.qat)
      ctx.addIssue({
        code: 'custom',
        path: ['imported'],
        message: 'an imported quantization and a QAT model are two submissions (give one)',
      });
    if (r.imported) {
      // An imported quantization keeps the file's integer weights.
      const message =
        "no GPTQ rounding beside an imported quantization (the file's integers are kept)";
      if (r.format.weightRounding === 'gptq')
        ctx.addIssue({ code: 'custom', path: ['format', 'weightRounding'], message });
      for (const [pattern, o] of Object.entries(r.layers))
        if (o.weightRounding === 'gptq')
          ctx.addIssue({ code: 'custom', path: ['layers', pattern, 'weightRounding'], message });
    }
    const dynamic = isDynamic(getTarget(r.target));
    if (dynamic && r.qat)
      ctx.addIssue({
        code: 'custom',
        path: ['qat'],
        message: dynamicRefusal(r.target as TargetId),
      });
  });

/**
 * The recipe without its stress tests: runs that only reproduce or compare a primary run (the
 * reproduction, cross-hardware and QAT comparison runs, `score`'s second execution) skip them.
 */
export function withoutStress<R extends { validation?: { stress?: unknown } | undefined }>(
  recipe: R,
): R {
  if (!recipe.validation?.stress) return recipe;
  const { stress: _stress, ...validation } = recipe.validation;
  const { validation: _v, ...rest } = recipe;
  return (Object.keys(validation).length > 0 ? { ...rest, validation } : rest) as R;
}

/**
 * The recipe of an imported quantization: the file's integer weights are kept, so no weight
 * rounding is asked for (a template's W4A8 recipe asks for GPTQ).
 */
export function forImportedQuantization<R extends { format: { weightRounding?: unknown } }>(
  recipe: R,
): R {
  const { weightRounding: _, ...format } = recipe.format;
  return { ...recipe, format: format as R['format'] };
}

/** A validated recipe, defaults filled in. */
export type Recipe = z.output<typeof RecipeSchema>;
/** A recipe as written (defaults optional). */
export type RecipeInput = z.input<typeof RecipeSchema>;

/** One problem found in a recipe. */
export interface RecipeIssue {
  /** JSON path, e.g. `calibration.samples`. */
  path: string;
  expected: string;
  got: string;
  message: string;
}

/** Raised for an invalid recipe; `issues` lists every problem. */
export class RecipeError extends Error {
  override name = 'RecipeError';
  constructor(readonly issues: RecipeIssue[]) {
    super(issues.map((i) => `${i.path || '(recipe)'}: ${i.message}`).join('; '));
  }
}

const describe = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
};

const valueAt = (root: unknown, path: readonly PropertyKey[]): unknown => {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
};

/**
 * Validates a recipe (parsed JSON) and fills defaults. Throws {@link RecipeError} with one issue
 * per problem: path, expected, got.
 */
export function parseRecipe(input: unknown): Recipe {
  const r = RecipeSchema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i): RecipeIssue => {
    const path = i.path.map(String).join('.');
    const got = describe(valueAt(input, i.path));
    let expected = i.message;
    if (i.code === 'invalid_type') expected = `${i.expected}`;
    else if (i.code === 'invalid_value')
      expected = `one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
    else if (i.code === 'unrecognized_keys')
      expected = `no key ${i.keys.map((k) => `'${k}'`).join(', ')}`;
    else if (i.code === 'too_small' || i.code === 'too_big')
      // zod's 'Too small: expected number to be >=1' -> 'number >=1' ('array >=1 items', ...)
      expected = i.message.replace(/^Too (?:small|big): expected (\w+) to (?:be|have) /, '$1 ');
    return { path, expected, got, message: `expected ${expected}, got ${got}` };
  });
  throw new RecipeError(issues);
}

/** Parses recipe JSON text; a syntax error becomes a RecipeError too. */
export function parseRecipeJson(text: string): Recipe {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RecipeError([
      {
        path: '',
        expected: 'JSON',
        got: 'invalid JSON',
        message: `not JSON: ${(err as Error).message}`,
      },
    ]);
  }
  return parseRecipe(json);
}
