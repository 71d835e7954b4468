import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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

describe('score --stress', () => {
  const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));
  const run = promisify(execFile);
  it('adds the stress tests to the score, and refuses a threshold without them', async () => {
    const { stdout } = await run(process.execPath, [
      BIN,
      'score',
      '--task',
      'smoke-fmnist',
      '--stress',
      '--stress-threshold',
      '0.3',
      '--no-measure',
      '--no-reproduce',
      '--workers',
      '1',
      '--json',
    ]);
    const out = JSON.parse(stdout) as {
      stress: { threshold_points: number; rows: { id: string; int8: number; pass: boolean }[] };
      phases: { phase: string }[];
    };
    expect(out.stress.threshold_points).toBe(0.3);
    // the rows of test/node/pipeline.test.ts and cli/validate.test.ts
    expect(out.stress.rows.map((r) => [r.id, r.int8, r.pass])).toEqual([
      ['noise-0.1', 0.888, true],
      ['noise-0.3', 0.845, true],
      ['contrast-1.5', 0.883, true],
      ['brightness-0.5', 0.713, false],
    ]);
    expect(out.phases.map((p) => p.phase).slice(-2)).toEqual(['stress-range', 'stress']);
    const bad = await run(process.execPath, [
      BIN,
      'score',
      '--task',
      'smoke-fmnist',
      '--stress-threshold',
      '0.3',
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toMatch(/--stress-threshold needs --stress/);
  }, 300_000);
});
