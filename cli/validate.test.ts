/**
 * `calibrate --out` then `validate --quantized`: the model file carries the pipeline's loss
 * estimate (made before any labelled evaluation) and validate reports it beside the loss it
 * measures on the full evaluation split.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
let dir: string;
/** `calibrate --json` of smoke-fmnist's default recipe, whose model both tests validate. */
let cal: { estimated_loss_points: unknown };
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cq-validate-'));
  cal = JSON.parse(
    (
      await run(process.execPath, [
        BIN,
        'calibrate',
        '--task',
        'smoke-fmnist',
        '--target',
        'ascend310',
        '--out',
        join(dir, 'smoke'),
        '--json',
      ])
    ).stdout,
  );
}, 300_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

/** `validate --quantized` of that model, without the timing. */
const validate = (...extra: string[]) =>
  run(process.execPath, [
    BIN,
    'validate',
    '--task',
    'smoke-fmnist',
    '--quantized',
    join(dir, 'smoke', 'model.emulation.onnx'),
    '--no-measure',
    ...extra,
  ]);

describe('cann-quant validate --quantized (CLI)', () => {
  it('reports the recorded estimate beside the measured loss', async () => {
    expect(typeof cal.estimated_loss_points).toBe('number');
    const v = JSON.parse((await validate('--json')).stdout);
    expect(v.estimated_loss_points).toBe(cal.estimated_loss_points);
    // smoke-fmnist, default recipe: FP32 0.885 on the 1,000 evaluation images (task manifest)
    expect(v.fp32).toBe(0.885);
    expect(v.samples).toBe(1000);
    // the estimate is the L2.estimate evidence: within 0.3 points of the measured loss here
    expect(Math.abs(v.estimated_loss_points - v.loss_points)).toBeLessThanOrEqual(0.3);
    const human = await validate();
    expect(human.stdout).toMatch(
      /loss \d+\.\d\d points {2}\(estimated before evaluation: \d+\.\d\d points\)/,
    );
  }, 300_000);

  it('--stress: both models on perturbed copies of the split, each loss beside the clean one', async () => {
    const v = JSON.parse(
      (await validate('--stress', '--stress-threshold', '0.3', '--json')).stdout,
    );
    const s = v.stress;
    expect(s.clean).toEqual({ fp32: 0.885, int8: v.int8, loss_points: v.loss_points });
    // Measured 2026-11-29 on the 1,000 evaluation images (seeded perturbations, so exact): the
    // FP32 model's accuracy under each, and the default INT8 model's.
    expect(
      s.rows.map((r: { id: string; fp32: number; int8: number }) => [r.id, r.fp32, r.int8]),
    ).toEqual([
      ['noise-0.1', 0.887, 0.888],
      ['noise-0.3', 0.845, 0.845],
      ['contrast-1.5', 0.887, 0.883],
      ['brightness-0.5', 0.719, 0.713],
    ]);
    // INT8 loses 0.1 points clean, 0.4 under contrast and 0.6 under brightness: with a threshold
    // of 0.3 extra points, brightness (+0.5) is flagged and contrast (+0.3) is not.
    expect(s.threshold_points).toBe(0.3);
    expect(
      s.rows.map((r: { id: string; extra_loss_points: number; pass: boolean }) => [
        r.id,
        r.extra_loss_points,
        r.pass,
      ]),
    ).toEqual([
      ['noise-0.1', -0.2, true],
      ['noise-0.3', -0.1, true],
      ['contrast-1.5', 0.3, true],
      ['brightness-0.5', 0.5, false],
    ]);
    expect(s.pass).toBe(false);
    await expect(
      run(process.execPath, [
        BIN,
        'validate',
        '--cross-hardware',
        '--task',
        'smoke-fmnist',
        '--stress',
      ]),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--stress cannot be used with --cross-hardware'),
    });
  }, 300_000);
});
