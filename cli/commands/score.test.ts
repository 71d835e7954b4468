import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../../core/recipe/schema.ts';
import { localRecipeWarnings } from './score.ts';

/** A version-1 recipe for `task` on ascend310 with the given extra fields. */
const recipeFor = (task: string, extra: Record<string, unknown>) =>
  parseRecipe({ version: 1, name: 'r', task, target: 'ascend310', ...extra });

describe('localRecipeWarnings (what submit says before the upload)', () => {
  it("checks a zoo task's recipe against this machine's copy of the model", async () => {
    const recipe = recipeFor('smoke-fmnist', {
      calibration: { samples: 600 },
      layers: { '/classifier/Gemm': { keepFloat: true }, '/classifier/Gem': { method: 'max' } },
    });
    expect(await localRecipeWarnings(recipe)).toEqual([
      'calibration.samples (600) is more than the calibration split holds: all 500 samples are used',
      "layers['/classifier/Gem'] matches no quantizable layer (layers: /features/features.0/Conv, /features/features.4/Conv, /classifier/Gemm)",
    ]);
  });
  it('says nothing about a task this machine does not have', async () => {
    const recipe = recipeFor('imagenet-resnet50', { sensitivity: { critical: ['/nope'] } });
    expect(await localRecipeWarnings(recipe)).toEqual([]);
  });
});
