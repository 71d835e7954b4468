import { TARGETS } from '../formats/targets.ts';
import { parseRecipe, type Recipe, type RecipeInput } from './schema.ts';

/** A ready recipe for a scenario; `task` and `target` are filled in when it is used. */
export interface RecipeTemplate {
  name: string;
  scenario: string;
  description: string;
  recipe: Omit<RecipeInput, 'task' | 'target' | 'version' | 'name'>;
}

/**
 * The shared library of calibration-strategy templates by scenario. `cann-quant templates` lists
 * them; `calibrate`/`score` use the task's default (by task kind) unless told otherwise.
 */
export const TEMPLATES: readonly RecipeTemplate[] = [
  {
    name: 'industrial-vision',
    scenario: 'industrial',
    description:
      'Image classification on the line: 50 coverage-sampled images, sensitivity tiers (high: percentile 99.99, medium: MSE clip search (IFMR), low: max), per-channel weights, bias correction.',
    recipe: {},
  },
  {
    name: 'detection',
    scenario: 'automotive',
    description:
      'Dense detection heads keep small activations that matter: 100 samples, a larger high tier (30%), high: percentile 99.999, medium: MSE clip search, low: KL; bias correction.',
    recipe: {
      calibration: { samples: 100, sampler: 'coverage', seed: 0 },
      sensitivity: { highFraction: 0.3, lowFraction: 0.3 },
      strategies: {
        high: { method: 'percentile', percentile: 99.999 },
        medium: { method: 'mse' },
        low: { method: 'kl' },
      },
    },
  },
  {
    name: 'text-classification',
    scenario: 'text',
    description:
      'Transformer text classifiers: outlier-heavy activations, so no plain max anywhere: high: percentile 99.999, medium: MSE, low: percentile 99.99; bias correction.',
    recipe: {
      strategies: {
        high: { method: 'percentile', percentile: 99.999 },
        medium: { method: 'mse' },
        low: { method: 'percentile', percentile: 99.99 },
      },
    },
  },
  {
    name: 'medical',
    scenario: 'medical',
    description:
      'Conservative: 100 samples, 40% of layers in the high tier, percentile 99.999 there, KL with smoothing in the middle, MSE for the least sensitive; bias correction.',
    recipe: {
      calibration: { samples: 100, sampler: 'coverage', seed: 0 },
      sensitivity: { highFraction: 0.4, lowFraction: 0.2 },
      strategies: {
        high: { method: 'percentile', percentile: 99.999 },
        medium: { method: 'kl-smooth' },
        low: { method: 'mse' },
      },
    },
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
  const recipe = parseRecipe({
    version: 1,
    name: `${t.name}:${task}:${target}`,
    task,
    target,
    ...t.recipe,
  });
  // int4 weights (the W4A8 targets): the empirical bias correction runs in one pass, so each
  // layer's correction also absorbs the mean shift its inputs carry from upstream layers, which
  // those layers correct themselves: double counting. Harmless at int8; at int4 it ruins the
  // model (fmnist-mobilenet ascend310-w4a8: 16.32 points lost with it, 1.24 without; resnet
  // 2.30 vs 0.74; docs/CALIBRATION.md). Every template but the naive baseline turns it off there.
  const weights = (TARGETS as Readonly<Record<string, (typeof TARGETS)[keyof typeof TARGETS]>>)[
    target
  ]?.weights;
  if (
    weights?.type === 'int4' &&
    name !== 'naive-baseline' &&
    t.recipe.format?.biasCorrection === undefined
  )
    recipe.format.biasCorrection = false;
  return recipe;
}
