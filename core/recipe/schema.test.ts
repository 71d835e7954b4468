import { describe, expect, it } from 'vitest';
import { qatScoringRecipe } from './qat.ts';
import {
  forImportedQuantization,
  parseRecipe,
  parseRecipeJson,
  RecipeError,
  withoutStress,
} from './schema.ts';

const minimal = { version: 1, name: 'r', task: 'fmnist-resnet', target: 'ascend310' };

function issuesOf(input: unknown) {
  try {
    parseRecipe(input);
  } catch (err) {
    if (err instanceof RecipeError) return err.issues;
    throw err;
  }
  throw new Error('expected a RecipeError');
}

describe('recipe schema', () => {
  it('fills every default of a minimal recipe', () => {
    const r = parseRecipe(minimal);
    expect(r.calibration).toEqual({ samples: 50, sampler: 'coverage', seed: 0 });
    expect(r.strategies.medium).toEqual({ method: 'mse' });
    expect(r.format).toEqual({
      weights: 'per-channel',
      activations: 'target',
      biasCorrection: true,
    });
    expect(r.layers).toEqual({});
  });
  it('asks for stress tests with validation.stress (threshold 0.5 points by default)', () => {
    // absent: the parsed recipe has no validation key (so hashes of older recipes stay)
    expect('validation' in parseRecipe(minimal)).toBe(false);
    const r = parseRecipe({ ...minimal, validation: { stress: {} } });
    expect(r.validation).toEqual({ stress: { thresholdPoints: 0.5 } });
    const [issue] = issuesOf({ ...minimal, validation: { stress: { thresholdPoints: -1 } } });
    expect(issue).toMatchObject({ path: 'validation.stress.thresholdPoints', got: 'number -1' });
    expect(issuesOf({ ...minimal, validation: { robust: true } })[0]!.path).toBe('validation');
    // the runs that only reproduce or compare a primary run drop them
    expect(withoutStress(r)).toEqual(parseRecipe(minimal));
    expect(withoutStress(parseRecipe(minimal))).toEqual(parseRecipe(minimal));
  });
  it('reports path, expected and got for a wrong type', () => {
    const [issue] = issuesOf({ ...minimal, calibration: { samples: '50' } });
    expect(issue).toMatchObject({ path: 'calibration.samples', expected: 'number', got: '"50"' });
    expect(issue!.message).toBe('expected number, got "50"');
  });
  it("states a bound as the value it wants: a number >= 1, not zod's sentence", () => {
    const [issue] = issuesOf({ ...minimal, calibration: { samples: -3 } });
    expect(issue).toMatchObject({
      path: 'calibration.samples',
      expected: 'number >=1',
      got: 'number -3',
    });
    expect(issue!.message).toBe('expected number >=1, got number -3');
  });
  it('takes a sampler pool no smaller than the sample count', () => {
    expect(parseRecipe({ ...minimal, calibration: { pool: 500 } }).calibration.pool).toBe(500);
    const [issue] = issuesOf({ ...minimal, calibration: { samples: 100, pool: 60 } });
    expect(issue).toMatchObject({
      path: 'calibration.pool',
      expected: 'at least calibration.samples (100)',
      got: 'number 60',
    });
  });
  it('lists the allowed targets for an unknown one', () => {
    const [issue] = issuesOf({ ...minimal, target: 'tpu' });
    expect(issue!.path).toBe('target');
    expect(issue!.expected).toContain('"ascend310"');
    expect(issue!.got).toBe('"tpu"');
  });
  it('rejects unknown keys (a recipe carries no code and no extras)', () => {
    const [issue] = issuesOf({ ...minimal, script: 'rm -rf /' });
    expect(issue!.expected).toBe("no key 'script'");
  });
  it('reports every problem at once, with nested layer paths', () => {
    const issues = issuesOf({ ...minimal, version: 2, layers: { 'conv*': { method: 'best' } } });
    expect(issues.map((i) => i.path).sort()).toEqual(['layers.conv*.method', 'version']);
  });
  it('refuses a percentile beside another method, which would be ignored', () => {
    const issues = issuesOf({
      ...minimal,
      strategies: {
        high: { method: 'kl', percentile: 99.9 },
        medium: { method: 'mse' },
        low: { method: 'max' },
      },
      layers: { '/fc/*': { method: 'max', percentile: 99 } },
    });
    expect(issues).toEqual([
      {
        path: 'strategies.high.percentile',
        expected: "no percentile with method 'kl' (it applies to method 'percentile' only)",
        got: 'number 99.9',
        message:
          "expected no percentile with method 'kl' (it applies to method 'percentile' only), got number 99.9",
      },
      expect.objectContaining({ path: 'layers./fc/*.percentile', got: 'number 99' }),
    ]);
    // a percentile alone in a layer override applies to a percentile tier: accepted
    expect(parseRecipe({ ...minimal, layers: { x: { percentile: 99.9 } } }).layers.x).toEqual({
      percentile: 99.9,
    });
  });
  it('turns a JSON syntax error into a RecipeError', () => {
    expect(() => parseRecipeJson('{"version": 1,')).toThrow(RecipeError);
  });
});

import { recipeFromTemplate, TEMPLATES } from './templates.ts';

describe('templates', () => {
  it('every template yields a valid recipe', () => {
    for (const t of TEMPLATES)
      expect(recipeFromTemplate(t.name, 'fmnist-resnet', 'ascend310').task).toBe('fmnist-resnet');
  });
  it('the naive baseline is max everywhere with per-tensor symmetric weights and no bias correction', () => {
    const r = recipeFromTemplate('naive-baseline', 'fmnist-resnet', 'ascend310');
    expect(r.strategies).toEqual({
      high: { method: 'max' },
      medium: { method: 'max' },
      low: { method: 'max' },
    });
    expect(r.format).toEqual({
      weights: 'per-tensor',
      activations: 'target',
      biasCorrection: false,
    });
    expect(r.sensitivity.enabled).toBe(false);
  });
});

describe('bias correction in the templates', () => {
  it("is 'auto' in every template but the naive baseline, on int8 and int4 targets alike", () => {
    for (const t of TEMPLATES)
      for (const target of ['ascend310', 'ascend310-w4a8'])
        expect(recipeFromTemplate(t.name, 'fmnist-resnet', target).format.biasCorrection).toBe(
          t.name === 'naive-baseline' ? false : 'auto',
        );
    expect(
      recipeFromTemplate('industrial-vision', 'fmnist-resnet', 'ascend310-w4a8').format.weightClip,
    ).toBeUndefined();
  });

  it("accepts true, false and 'auto', and says what else would do", () => {
    const base = { version: 1, name: 'x', task: 'fmnist-resnet', target: 'ascend310' };
    expect(parseRecipe(base).format.biasCorrection).toBe(true);
    expect(parseRecipe({ ...base, format: { biasCorrection: 'auto' } }).format.biasCorrection).toBe(
      'auto',
    );
    expect(() => parseRecipe({ ...base, format: { biasCorrection: 'sometimes' } })).toThrow(
      /format\.biasCorrection/,
    );
  });
});

describe('weight rounding', () => {
  const base = { version: 1, name: 'x', task: 'fmnist-resnet', target: 'ascend310' };
  it('is GPTQ on int4 weights in every template but the naive baseline, nearest on int8', () => {
    for (const t of TEMPLATES) {
      expect(
        recipeFromTemplate(t.name, 'fmnist-resnet', 'ascend310').format.weightRounding,
      ).toBeUndefined();
      for (const target of ['ascend310-w4a8', 'ascend310p-w4a8'])
        expect(recipeFromTemplate(t.name, 'fmnist-resnet', target).format.weightRounding).toBe(
          t.name === 'naive-baseline' ? undefined : 'gptq',
        );
    }
    // the rest of the template's format is kept
    expect(
      recipeFromTemplate('industrial-vision', 'fmnist-resnet', 'ascend310-w4a8').format,
    ).toEqual({
      weights: 'per-channel',
      activations: 'target',
      biasCorrection: 'auto',
      weightRounding: 'gptq',
    });
    // the recipes that keep weights as they are drop it
    const w4 = recipeFromTemplate('industrial-vision', 'fmnist-resnet', 'ascend310-w4a8');
    expect(forImportedQuantization(w4).format.weightRounding).toBeUndefined();
    expect(qatScoringRecipe(w4).format).toEqual({
      weights: 'per-channel',
      activations: 'target',
      biasCorrection: false,
    });
    expect(parseRecipe({ ...base, format: { weightRounding: 'gptq' } }).format.weightRounding).toBe(
      'gptq',
    );
  });

  it("is refused beside an imported quantization, whose integers are the file's", () => {
    const [issue, ...rest] = issuesOf({
      ...base,
      format: { weightRounding: 'gptq' },
      imported: { model: 'a'.repeat(64) },
    });
    expect(rest).toEqual([]);
    expect(issue!.path).toBe('format.weightRounding');
    expect(issue!.message).toBe(
      'expected no GPTQ rounding beside an imported quantization (the file\'s integers are kept), got "gptq"',
    );
    expect(issue!.got).toBe('"gptq"');
    // a layer override asking for it too
    const [byLayer] = issuesOf({
      ...base,
      layers: { 'conv*': { weightRounding: 'gptq' } },
      imported: { model: 'a'.repeat(64) },
    });
    expect(byLayer!.path).toBe('layers.conv*.weightRounding');
  });
});
