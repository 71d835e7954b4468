/**
 * `calibrate --recipe` with `format.weightRounding: 'gptq'`: the report names each layer's gain,
 * the model files carry GPTQ's integers (validate measures them), and a misspelt value is a
 * recipe error.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recipeFromTemplate } from '../core/recipe/templates.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
let dir: string;
const recipe = (weightRounding: string) => {
  const r = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
  return { ...r, format: { ...r.format, weightRounding } };
};
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cq-gptq-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('calibrate with GPTQ weight rounding (smoke-fmnist, ascend310)', () => {
  it('reports every layer and writes models with its integers', async () => {
    const file = join(dir, 'gptq.json');
    await writeFile(file, JSON.stringify(recipe('gptq')));
    const out = join(dir, 'out');
    const cal = JSON.parse(
      (await run(process.execPath, [BIN, 'calibrate', '--recipe', file, '--out', out, '--json']))
        .stdout,
    );
    expect(cal.weight_rounding.method).toBe('gptq');
    expect(cal.weight_rounding.layers).toHaveLength(3);
    for (const l of cal.weight_rounding.layers)
      expect(l.weight_sqnr_db_gptq).toBeGreaterThan(l.weight_sqnr_db_nearest);
    const text = (await run(process.execPath, [BIN, 'calibrate', '--recipe', file, '--out', out]))
      .stdout;
    expect(text).toMatch(
      /weight rounding gptq: 3 layers, the weights' output SQNR on the calibration inputs \+\d+\.\d dB/,
    );
    // The written emulation model is GPTQ's: the top-1 the pipeline test measured (0.885; round
    // to nearest gives 0.884).
    const v = JSON.parse(
      (
        await run(process.execPath, [
          BIN,
          'validate',
          '--task',
          'smoke-fmnist',
          '--quantized',
          join(out, 'model.emulation.onnx'),
          '--no-measure',
          '--json',
        ])
      ).stdout,
    );
    expect(v.int8).toBe(0.885);
  }, 300_000);

  it('refuses an unknown rounding in one line, exit code 2', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify(recipe('stochastic')));
    const err = await run(process.execPath, [BIN, 'calibrate', '--recipe', file]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toContain('format.weightRounding');
    expect((err as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);
});
