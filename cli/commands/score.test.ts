import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../../core/recipe/schema.ts';
import { CliError } from '../errors.ts';
import { localRecipeWarnings, resolveRecipe } from './score.ts';

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

describe('resolveRecipe', () => {
  it('refuses a recipe naming an uploaded QAT model, which score would replace by the task model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cann-quant-qat-'));
    try {
      const file = join(dir, 'qat.json');
      await writeFile(
        file,
        JSON.stringify({
          version: 1,
          name: 'q',
          task: 'smoke-fmnist',
          target: 'ascend310',
          qat: { model: 'ab'.repeat(32) },
        }),
      );
      const err = await resolveRecipe({ recipe: file }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(2);
      expect((err as CliError).message).toMatch(
        /^recipe\.qat names a QAT model uploaded to a server \(abababababab\.\.\.\): score it there/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses --task, --target or --template beside --recipe, which the file would outvote', async () => {
    const err = await resolveRecipe({ recipe: 'r.json', target: 'ascend310p', task: 'x' }).catch(
      (e: unknown) => e,
    );
    expect(err).toEqual(
      new CliError('--recipe names the task, target itself: leave out --task, --target', 2),
    );
  });

  it('builds the task template for ascend310 when no target is named', async () => {
    const recipe = await resolveRecipe({ task: 'spam-transformer' });
    expect(recipe).toMatchObject({ task: 'spam-transformer', target: 'ascend310' });
    expect(recipe.name).toBe('text-classification:spam-transformer:ascend310');
  });
});
