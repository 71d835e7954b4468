import { describe, expect, it } from 'vitest';
import { parseRecipe } from './schema.ts';
import { recipeWarnings } from './warnings.ts';

const minimal = { version: 1, name: 'r', task: 'smoke-fmnist', target: 'ascend310' };
// smoke-fmnist's three quantizable layers, as prepareModel names them.
const layers = ['/features/features.0/Conv', '/features/features.4/Conv', '/classifier/Gemm'];
const context = { layers, calibrationSize: 500 };

describe('recipeWarnings', () => {
  it('has nothing to say about a recipe that applies as written', () => {
    const recipe = parseRecipe({
      ...minimal,
      calibration: { samples: 500 },
      sensitivity: { critical: ['*Gemm', '/features/features.?/Conv'] },
      layers: { '/features/features.0/Conv': { keepFloat: true } },
    });
    expect(recipeWarnings(recipe, context)).toEqual([]);
  });

  it('names a critical glob and a layer override that match no layer, with the layers there are', () => {
    const recipe = parseRecipe({
      ...minimal,
      sensitivity: { critical: ['/classifier/Gem', '*Gemm'] },
      layers: { '/features.0/Conv': { method: 'max' } },
    });
    expect(recipeWarnings(recipe, context)).toEqual([
      "sensitivity.critical '/classifier/Gem' matches no quantizable layer (layers: /features/features.0/Conv, /features/features.4/Conv, /classifier/Gemm)",
      "layers['/features.0/Conv'] matches no quantizable layer (layers: /features/features.0/Conv, /features/features.4/Conv, /classifier/Gemm)",
    ]);
  });

  it.each([
    [
      'more calibration samples than the split holds',
      { calibration: { samples: 800 } },
      'calibration.samples (800) is more than the calibration split holds: all 500 samples are used',
    ],
    [
      'critical layers with the sensitivity pass off',
      { sensitivity: { enabled: false, critical: ['*Gemm'] } },
      'sensitivity.critical has no effect: sensitivity.enabled is false, so no layer has a tier to raise',
    ],
    [
      'feedback rounds, which only validate --feedback runs',
      { feedback: { rounds: 2 } },
      'feedback.rounds (2) is not run here: the feedback loop runs in `cann-quant validate --feedback --recipe <file>`, not in calibrate, score or the service',
    ],
  ])('says so for %s', (_what, extra, warning) => {
    expect(recipeWarnings(parseRecipe({ ...minimal, ...extra }), context)).toEqual([warning]);
  });

  it('quotes at most five layer names, and says when a model has none', () => {
    const many = Array.from({ length: 8 }, (_, i) => `/l${i}/MatMul`);
    const recipe = parseRecipe({ ...minimal, sensitivity: { critical: ['/attn/*'] } });
    expect(recipeWarnings(recipe, { layers: many, calibrationSize: 50 })).toEqual([
      "sensitivity.critical '/attn/*' matches no quantizable layer (layers: /l0/MatMul, /l1/MatMul, /l2/MatMul, /l3/MatMul, /l4/MatMul and 3 more)",
    ]);
    expect(recipeWarnings(recipe, { layers: [], calibrationSize: 50 })).toEqual([
      "sensitivity.critical '/attn/*' matches no quantizable layer (the model has none)",
    ]);
  });
});
