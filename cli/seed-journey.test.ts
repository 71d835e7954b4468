/**
 * The seed's user journey (../shared/docs/product.md, "Command line") as the CLI reads it:
 * `calibrate --sensitivity-aware --calib-data 50`, `format --hardware ascend_310 --asymmetric
 * --bias-correct`, `validate --accuracy-guard`. The seed names no task (`--task industrial` is a
 * template's scenario); these runs add `--task smoke-fmnist`, and `--out` where it is required.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const cli = async (...args: string[]) => (await run(process.execPath, [BIN, ...args])).stdout;
/** A command's --json output, parsed. */
const cliJson = async (...args: string[]) => JSON.parse(await cli(...args, '--json'));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cq-seed-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

interface QuantizationJson {
  target: string;
  layers: { activation: { zeroPoint: number } }[];
}

describe("the seed's command line", () => {
  it('calibrate without --target calibrates for Ascend 310', async () => {
    const out = await cliJson(
      'calibrate',
      '--sensitivity-aware',
      '--calib-data',
      '50',
      '--task',
      'smoke-fmnist',
      '--workers',
      '1',
      '--out',
      join(dir, 'cal'),
    );
    expect(out).toMatchObject({
      task: 'smoke-fmnist',
      target: 'ascend310',
      calibration_samples: 50,
    });
  });

  it('format reads --hardware ascend_310, and --asymmetric gives activations zero points', async () => {
    const format = async (name: string, ...flags: string[]) => {
      const out = join(dir, name);
      await cli('format', '--task', 'smoke-fmnist', '--out', out, '--json', ...flags);
      return JSON.parse(await readFile(join(out, 'quantization.json'), 'utf8')) as QuantizationJson;
    };
    const seed = await format('seed', '--hardware', 'ascend_310', '--asymmetric', '--bias-correct');
    expect(seed.target).toBe('ascend310');
    // Ascend 310P quantizes activations symmetrically; --asymmetric overrides it
    const zeroPoints = (q: QuantizationJson) => q.layers.map((l) => l.activation.zeroPoint);
    expect(zeroPoints(await format('p', '--hardware', 'Ascend-310P')).every((z) => z === 0)).toBe(
      true,
    );
    const asym = await format('p-asym', '--hardware', 'ascend310p', '--asymmetric');
    expect(asym.target).toBe('ascend310p');
    expect(zeroPoints(asym).some((z) => z !== 0)).toBe(true);
    await expect(
      cli('format', '--task', 'smoke-fmnist', '--hardware', 'h100', '--out', join(dir, 'x')),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/unknown target 'h100' \(known: /) });
  });

  it('validate --accuracy-guard without a value guards 0.5 points', async () => {
    const v = await cliJson(
      'validate',
      '--task',
      'smoke-fmnist',
      '--quantized',
      join(dir, 'seed', 'model.emulation.onnx'),
      '--accuracy-guard',
      '--no-measure',
    );
    // smoke-fmnist loses 0.2 points here (FP32 0.885, INT8 0.883 on its 1,000 images)
    expect(v.loss_points).toBeCloseTo(0.2, 6);
    expect(v.guard).toEqual({ max_loss_points: 0.5, pass: true });
  });

  it('validate --heatmap --cross-hardware --accuracy-guard does all three', async () => {
    const heatmap = join(dir, 'cross.html');
    const err = (await cli(
      'validate',
      '--task',
      'smoke-fmnist',
      '--heatmap',
      heatmap,
      '--cross-hardware',
      '--accuracy-guard',
      '0.05',
      '--no-measure',
      '--json',
    ).catch((e: unknown) => e)) as { code: number; stdout: string; stderr: string };
    // the four modelled targets lose 0.10 points on smoke-fmnist, cpu-wasm gains 0.40
    expect(err.code).toBe(3);
    expect(err.stderr).toMatch(/^cann-quant: accuracy guard: ascend310 lost 0\.100 points, /);
    const out = JSON.parse(err.stdout);
    expect(out.rows.map((r: { target: string }) => r.target)).toEqual([
      'ascend310',
      'ascend310p',
      'nvidia-t4',
      'snapdragon',
      'cpu-wasm',
    ]);
    expect(out.guard).toEqual({
      max_loss_points: 0.05,
      pass: false,
      failing: ['ascend310', 'ascend310p', 'nvidia-t4', 'snapdragon'],
    });
    expect(out.heatmap).toBe(heatmap);
    expect(out.layer_errors.layers).toHaveLength(3);
    expect(await readFile(heatmap, 'utf8')).toMatch(/^<!doctype html>/i);
  });

  it('validate refuses flags its mode would ignore', async () => {
    await expect(
      cli('validate', '--task', 'smoke-fmnist', '--feedback', '--heatmap'),
    ).rejects.toMatchObject({
      code: 2,
      stderr: 'cann-quant: --heatmap cannot be used with --feedback\n',
    });
  });

  it('`--task industrial` says it is a template scenario', async () => {
    await expect(cli('calibrate', '--task', 'industrial')).rejects.toMatchObject({
      stderr: expect.stringMatching(/add --template industrial-vision to a task\n$/),
    });
  });
});
