import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../../core/recipe/schema.ts';
import { localRecipeWarnings } from './score.ts';

describe('localRecipeWarnings (what submit says before the upload)', () => {
  it("checks a zoo task's recipe against this machine's copy of the model", async () => {
    const recipe = parseRecipe({
      version: 1,
      name: 'r',
      task: 'smoke-fmnist',
      target: 'ascend310',
      calibration: { samples: 600 },
      layers: { '/classifier/Gemm': { keepFloat: true }, '/classifier/Gem': { method: 'max' } },
    });
    expect(await localRecipeWarnings(recipe)).toEqual([
      'calibration.samples (600) is more than the calibration split holds: all 500 samples are used',
      "layers['/classifier/Gem'] matches no quantizable layer (layers: /features/features.0/Conv, /features/features.4/Conv, /classifier/Gemm)",
    ]);
  });
  it('says nothing about a task this machine does not have', async () => {
    const recipe = parseRecipe({
      version: 1,
      name: 'r',
      task: 'imagenet-resnet50',
      target: 'ascend310',
      sensitivity: { critical: ['/nope'] },
    });
    expect(await localRecipeWarnings(recipe)).toEqual([]);
  });
});
