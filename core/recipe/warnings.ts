/**
 * What a recipe asks for that a run cannot do on this model and data, found before the run
 * starts. The schema (schema.ts) rejects a recipe that is malformed on its own; these are
 * well-formed settings that meet a particular model: a critical-layer glob or a per-layer
 * override that names no quantizable layer (a typo would otherwise be ignored in silence), more
 * calibration samples than the split holds, critical layers with the sensitivity pass off,
 * feedback rounds asked of a run that does not do them.
 *
 * They are warnings, not errors: a recipe stays valid across models (a template's globs, the
 * feedback loop's overrides), and the run is still well defined. Every surface shows them: the
 * CLI on stderr and in `--json`, the service in the run report.
 */

import { globMatch } from '../calibrate/glob.ts';
import { getTarget, isDynamic } from '../formats/targets.ts';
import type { Recipe } from './schema.ts';

/** The facts of a run a recipe is checked against. */
export interface RecipeContext {
  /** Names of the model's quantizable layers (before any keep-in-float override). */
  layers: readonly string[];
  /** Samples in the calibration split. */
  calibrationSize: number;
}

/** How many names to quote in a warning before "and N more". */
const QUOTED_NAMES = 5;

function someNames(names: readonly string[]): string {
  const shown = names.slice(0, QUOTED_NAMES).join(', ');
  return names.length > QUOTED_NAMES ? `${shown} and ${names.length - QUOTED_NAMES} more` : shown;
}

/**
 * The recipe's warnings for this model and data, in a fixed order (calibration, sensitivity,
 * layers, feedback), each one line. Empty when the recipe applies as written.
 *
 * @example
 * recipeWarnings(recipe, { layers: ['/fc/Gemm'], calibrationSize: 500 });
 * // ["sensitivity.critical '/fc/Gem' matches no quantizable layer (layers: /fc/Gemm)"]
 */
export function recipeWarnings(recipe: Recipe, context: RecipeContext): string[] {
  const warnings: string[] = [];
  const { samples } = recipe.calibration;
  if (samples > context.calibrationSize)
    warnings.push(
      `calibration.samples (${samples}) is more than the calibration split holds: all ${context.calibrationSize} samples are used`,
    );
  const unmatched = (pattern: string) => !context.layers.some((name) => globMatch(pattern, name));
  const known =
    context.layers.length > 0 ? `layers: ${someNames(context.layers)}` : 'the model has none';
  const { critical, enabled } = recipe.sensitivity;
  if (critical.length > 0 && !enabled)
    warnings.push(
      'sensitivity.critical has no effect: sensitivity.enabled is false, so no layer has a tier to raise',
    );
  for (const pattern of critical)
    if (unmatched(pattern))
      warnings.push(`sensitivity.critical '${pattern}' matches no quantizable layer (${known})`);
  for (const pattern of Object.keys(recipe.layers))
    if (unmatched(pattern))
      warnings.push(`layers['${pattern}'] matches no quantizable layer (${known})`);
  if (isDynamic(getTarget(recipe.target))) {
    const methods = Object.keys(recipe.layers).filter(
      (k) => recipe.layers[k]!.method !== undefined || recipe.layers[k]!.percentile !== undefined,
    );
    if (recipe.format.activations !== 'target')
      warnings.push(
        `format.activations '${recipe.format.activations}' has no effect on ${recipe.target}: DynamicQuantizeLinear quantizes activations to uint8 with an offset`,
      );
    if (methods.length > 0)
      warnings.push(
        `layers[${methods.map((m) => `'${m}'`).join(', ')}].method has no effect on ${recipe.target}: it quantizes activations with scales computed from each input at run time`,
      );
  }
  if (recipe.feedback.rounds > 0)
    warnings.push(
      `feedback.rounds (${recipe.feedback.rounds}) is not run here: the feedback loop runs in \`cann-quant validate --feedback --recipe <file>\`, not in calibrate, score or the service`,
    );
  return warnings;
}
