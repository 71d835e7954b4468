import { TARGETS, type TargetId } from '../formats/targets.ts';
import { parseRecipe, type Recipe, type RecipeInput } from './schema.ts';

/** A ready recipe for a scenario; `task` and `target` are filled in when it is used. */
export interface RecipeTemplate {
  name: string;
  scenario: string;
  description: string;
  recipe: Omit<RecipeInput, 'task' | 'target' | 'version' | 'name'>;
  /**
   * Format settings added on targets with int4 weights (W4A8): what their 16 levels need beyond
   * the int8 recipe.
   */
  int4Format?: Partial<NonNullable<RecipeInput['format']>>;
}

/**
 * Bias correction in every template but the naive baseline: computed, then kept only where it
 * lowers the loss estimated on the unlabelled calibration split. Neither always-on nor always-off
 * wins on the zoo: measured with the correction vs without (points, own-error correction,
 * docs/CALIBRATION.md), fmnist-mobilenet W4A8 0.87 vs 1.24 but fmnist-resnet W4A8 1.14 vs 0.74,
 * fmnist-detect INT8 0.04 vs 0.08 but fmnist-mobilenet INT8 0.11 vs 0.02; the estimate ranked
 * every one of these pairs as the evaluation did.
 */
const AUTO_BIAS = { biasCorrection: 'auto' } as const;

/**
 * GPTQ weight rounding (core/quantize/gptq.ts) on int4 weights, in every template but the naive
 * baseline. Measured on ascend310-w4a8 (full evaluation splits, 50 coverage samples,
 * bench/results/calibration-quality-gptq-w4a8.md): fmnist-resnet 0.79 -> 0.37 points,
 * fmnist-mobilenet 0.87 -> 0.07, both gains with 95% intervals clear of 0. On int8 weights it
 * stays a recipe option: the output SQNR rose on four zoo tasks of five and the losses moved
 * within noise (bench/results/calibration-quality-gptq-int8.md).
 */
const INT4_GPTQ = { weightRounding: 'gptq' } as const;

/**
 * The shared library of calibration-strategy templates by scenario. `cann-quant templates` lists
 * them; `calibrate`/`score` use the task's default (by task kind) unless told otherwise.
 */
export const TEMPLATES: readonly RecipeTemplate[] = [
  {
    name: 'industrial-vision',
    scenario: 'industrial',
    description:
      'Image classification on the line: 50 coverage-sampled images, sensitivity tiers (high: percentile 99.99, medium: MSE clip search (IFMR), low: max), per-channel weights, bias correction where it lowers the estimated loss; GPTQ weight rounding on int4-weight (W4A8) targets.',
    recipe: { format: AUTO_BIAS },
    int4Format: INT4_GPTQ,
  },
  {
    name: 'detection',
    scenario: 'automotive',
    description:
      'Dense detection heads keep small activations that matter: 100 samples, a larger high tier (30%), high: percentile 99.999, medium: MSE clip search, low: KL; bias correction where it lowers the estimated loss; GPTQ weight rounding on int4-weight (W4A8) targets.',
    recipe: {
      calibration: { samples: 100, sampler: 'coverage', seed: 0 },
      sensitivity: { highFraction: 0.3, lowFraction: 0.3 },
      strategies: {
        high: { method: 'percentile', percentile: 99.999 },
        medium: { method: 'mse' },
        low: { method: 'kl' },
      },
      format: AUTO_BIAS,
    },
    int4Format: INT4_GPTQ,
  },
  {
    name: 'text-classification',
    scenario: 'text',
    description:
      'Transformer text classifiers: outlier-heavy activations, so no plain max anywhere: high: percentile 99.999, medium: MSE, low: percentile 99.99; bias correction where it lowers the estimated loss; GPTQ weight rounding on int4-weight (W4A8) targets.',
    recipe: {
      strategies: {
        high: { method: 'percentile', percentile: 99.999 },
        medium: { method: 'mse' },
        low: { method: 'percentile', percentile: 99.99 },
      },
      format: AUTO_BIAS,
    },
    int4Format: INT4_GPTQ,
  },
  {
    name: 'medical',
    scenario: 'medical',
    description:
      'Conservative: 100 samples, 40% of layers in the high tier, percentile 99.999 there, KL with smoothing in the middle, MSE for the least sensitive; bias correction where it lowers the estimated loss; GPTQ weight rounding on int4-weight (W4A8) targets.',
    recipe: {
      calibration: { samples: 100, sampler: 'coverage', seed: 0 },
      sensitivity: { highFraction: 0.4, lowFraction: 0.2 },
      strategies: {
        high: { method: 'percentile', percentile: 99.999 },
        medium: { method: 'kl-smooth' },
        low: { method: 'mse' },
      },
      format: AUTO_BIAS,
    },
    int4Format: INT4_GPTQ,
  },
  {
    name: 'naive-baseline',
    scenario: 'baseline',
    description:
      'The naive PTQ baseline every report compares against: max calibration everywhere, per-tensor symmetric weights, no bias correction, no sensitivity analysis (activations in the target scheme).',
    recipe: {
      calibration: { samples: 50, sampler: 'spread', seed: 0 },
      sensitivity: { enabled: false },
      strategies: { high: { method: 'max' }, medium: { method: 'max' }, low: { method: 'max' } },
      format: { weights: 'per-tensor', activations: 'target', biasCorrection: false },
    },
  },
];

/** Default template by task kind (zoo/task.ts `TaskManifest.kind`). */
export const DEFAULT_TEMPLATE_BY_KIND: Readonly<Record<string, string>> = {
  'image-classification': 'industrial-vision',
  smoke: 'industrial-vision',
  detection: 'detection',
  'text-classification': 'text-classification',
};

/** Looks a template up by name; throws a RangeError listing the known names. */
export function getTemplate(name: string): RecipeTemplate {
  const t = TEMPLATES.find((x) => x.name === name);
  if (!t)
    throw new RangeError(
      `unknown template '${name}' (known: ${TEMPLATES.map((x) => x.name).join(', ')})`,
    );
  return t;
}

/** A validated recipe from a template for a task and target. */
export function recipeFromTemplate(name: string, task: string, target: string): Recipe {
  const t = getTemplate(name);
  // an unknown target id is left to the schema's error
  const int4 =
    t.int4Format !== undefined &&
    Object.hasOwn(TARGETS, target) &&
    TARGETS[target as TargetId].weights.type === 'int4';
  const recipe = parseRecipe({
    version: 1,
    name: `${t.name}:${task}:${target}`,
    task,
    target,
    ...t.recipe,
    ...(int4 ? { format: { ...t.recipe.format, ...t.int4Format } } : {}),
  });
  return recipe;
}
