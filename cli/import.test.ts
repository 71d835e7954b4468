/**
 * `cann-quant import`: PyTorch's quantization of fmnist-resnet (zoo/fmnist-resnet/pytorch-ptq)
 * on the targets, from the command line (full-split numbers: bench/results/import-2026-11-29.md).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel } from '../core/onnx/index.ts';
import type { ImportResult } from './commands/import.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const QDQ = fileURLToPath(new URL('../zoo/fmnist-resnet/pytorch-ptq/model.onnx', import.meta.url));
const FLOAT = fileURLToPath(new URL('../zoo/fmnist-resnet/model.onnx', import.meta.url));
const cliJson = async (...args: string[]) =>
  JSON.parse((await run(process.execPath, [BIN, 'import', ...args, '--json'])).stdout);
async function fails(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [BIN, 'import', ...args]);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`import ${args.join(' ')} succeeded`);
}
const dir = mkdtempSync(join(tmpdir(), 'cq-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cann-quant import', () => {
  it("measures PyTorch's quantization on Ascend 310 and its W4A8 variant over the first 1,000 evaluation images", async () => {
    const ascend = (await cliJson(
      '--model',
      QDQ,
      '--task',
      'fmnist-resnet',
      '--limit',
      '1000',
    )) as ImportResult;
    expect(ascend.producer).toBe('pytorch 1.13.0');
    expect(ascend.samples).toBe(1000);
    expect(ascend.metric).toBe('top1');
    // Measured values (this code, this model, these 1,000 images).
    expect(ascend.fp32).toBe(0.925);
    expect(ascend.as_exported).toBe(0.925);
    const [t] = ascend.targets;
    expect(t!.target).toBe('ascend310');
    expect(t!.exact).toEqual({ activations: 8, weights: 8 });
    // On these images Ascend 310's arithmetic keeps every prediction's class right or wrong
    // as PyTorch's quantization does in float (the full split: 0.9106 against 0.9114).
    expect(t!.int8).toBe(0.925);
    expect(t!.loss_points).toBe(0);
    // int4 weights: the framework's int8 weights are re-quantized, and that costs 1.3 points.
    const w4 = (await cliJson(
      '--model',
      QDQ,
      '--task',
      'fmnist-resnet',
      '--limit',
      '1000',
      '--target',
      'ascend310-w4a8',
    )) as ImportResult;
    expect(w4.targets[0]!.exact).toEqual({ activations: 8, weights: 0 });
    expect(w4.targets[0]!.int8).toBe(0.912);
    expect(w4.targets[0]!.loss_points).toBe(1.3);
  });

  it('maps without data on every target and writes the target-format QDQ model', async () => {
    const all = (await cliJson('--model', QDQ, '--all-targets')) as ImportResult;
    expect(all.task).toBeUndefined();
    const by = Object.fromEntries(all.targets.map((t) => [t.target, t]));
    expect(by.ascend310!.exact).toEqual({ activations: 8, weights: 8 });
    expect(by.ascend310p!.exact).toEqual({ activations: 0, weights: 8 });
    expect(by['ascend310-w4a8']!.exact).toEqual({ activations: 8, weights: 0 });
    expect(by['cpu-wasm']!.exact).toEqual({ activations: 8, weights: 8 });
    const out = join(dir, 'p.onnx');
    await run(process.execPath, [
      BIN,
      'import',
      '--model',
      QDQ,
      '--target',
      'ascend310p',
      '--out',
      out,
    ]);
    const written = decodeModel(new Uint8Array(readFileSync(out)));
    expect(written.graph!.node.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThan(
      0,
    );
  });

  it('refuses bad input with one line and exit code 2', async () => {
    const float = await fails('--model', FLOAT);
    expect(float.code).toBe(2);
    expect(float.stderr).toMatch(
      /no QuantizeLinear\/DequantizeLinear found: this is a float model/,
    );
    const missing = await fails('--model', join(dir, 'nope.onnx'));
    expect([missing.code, missing.stderr.trim()]).toEqual([
      2,
      `cann-quant: model file '${join(dir, 'nope.onnx')}' does not exist`,
    ]);
    expect(
      (await fails('--model', QDQ, '--all-targets', '--out', join(dir, 'x.onnx'))).stderr,
    ).toMatch(/--out needs one --target/);
    expect((await fails('--model', QDQ, '--limit', '5')).stderr).toMatch(/--limit needs --task/);
    const wrongTask = await fails('--model', QDQ, '--task', 'spam-transformer');
    expect(wrongTask.code).toBe(2);
    expect(wrongTask.stderr).toMatch(
      /takes \[input\] and gives \[logits\]; task spam-transformer's model takes/,
    );
  });
});
