/**
 * `cann-quant risk`: the data-free risk predictor from the command line, on smoke-fmnist's
 * shipped model (numbers: bench/results/risk-2026-11-29.md, from the same code).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ONNX_TESTDATA } from '../core/onnx/testing.ts';
import type { RiskReport } from '../core/risk/risk.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const MODEL = fileURLToPath(new URL('../zoo/smoke-fmnist/model.onnx', import.meta.url));
const cliJson = async (...args: string[]) =>
  JSON.parse((await run(process.execPath, [BIN, 'risk', ...args, '--json'])).stdout);
/** A failing run's exit code and stderr. */
async function fails(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [BIN, 'risk', ...args]);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`risk ${args.join(' ')} succeeded`);
}

describe('cann-quant risk', () => {
  it("reports smoke-fmnist's layers on Ascend 310, the same for --task and --model", async () => {
    const byTask = (await cliJson('--task', 'smoke-fmnist')) as RiskReport & { model: string };
    expect(byTask.target).toBe('ascend310');
    expect(byTask.layers).toHaveLength(3);
    expect(byTask.covered).toBe(2);
    expect(byTask.predictedSqnrDb).toBeCloseTo(35.7, 1);
    expect(byTask.weightOnlySqnrDb).toBeCloseTo(38.5, 1);
    const shares = byTask.layers.map((l) => l.share);
    expect(shares).toEqual([...shares].sort((a, b) => b - a));
    const byFile = (await cliJson('--model', MODEL)) as RiskReport;
    expect(byFile.layers).toEqual(byTask.layers);
  });

  it('compares every target in one run, and per-tensor weights cost weight SQNR', async () => {
    const all = (await cliJson('--task', 'smoke-fmnist', '--all-targets')) as {
      reports: RiskReport[];
    };
    const by = Object.fromEntries(all.reports.map((r) => [r.target, r]));
    expect(Object.keys(by)).toContain('ascend310p-w4a8');
    expect(by['ascend310-w4a8']!.predictedSqnrDb).toBeCloseTo(13.4, 1);
    expect(by.ascend310p!.predictedSqnrDb).toBeCloseTo(31.8, 1);
    const perTensor = (await cliJson(
      '--task',
      'smoke-fmnist',
      '--per-tensor-weights',
    )) as RiskReport;
    expect(perTensor.weights.granularity).toBe('per-tensor');
    expect(perTensor.weightOnlySqnrDb).toBeCloseTo(35.5, 1);
  });

  it('covers the first layer with stated input statistics', async () => {
    const r = (await cliJson(
      '--task',
      'smoke-fmnist',
      '--input-stats',
      '0,1,-0.8102,2.0227',
    )) as RiskReport;
    expect(r.covered).toBe(3);
    const first = r.layers.find((l) => l.name === '/features/features.0/Conv')!;
    expect(first.input!.source).toMatch(/^input input \(stated: mean 0, std 1/);
    // [-0.8102, 2.0227] on the asymmetric int8 grid, E[x^2] = 1
    expect(first.inputSqnrDb!).toBeCloseTo(10 * Math.log10(12 / ((2.0227 + 0.8102) / 255) ** 2), 6);
  });

  it('says so when no layer runs in integers (official ONNX test model: MatMul of two inputs)', async () => {
    const file = `${ONNX_TESTDATA}/node/test_matmul_2d/model.onnx`;
    const { stdout } = await run(process.execPath, [BIN, 'risk', '--model', file]);
    expect(stdout).toContain('no layer of this model runs in integers on ascend310');
    expect(stdout).toContain('activation x activation MatMul stays float');
    const r = (await cliJson('--model', file)) as RiskReport;
    expect(r.layers).toEqual([]);
    expect(r.predictedSqnrDb).toBeNull(); // Infinity (no noise) has no JSON spelling
  });

  it('says what is wrong in one line with exit code 2', async () => {
    for (const [args, message] of [
      [['--model', '/no/such.onnx'], /model file '\/no\/such.onnx' does not exist/],
      [['--model', '/tmp'], /model '\/tmp' is not a file/],
      [['--model', BIN], /is not a usable ONNX model/],
      [['--task', 'smoke-fmnist', '--model', MODEL], /give --task or --model, not both/],
      [[], /give --task <id> or --model <file.onnx>/],
      [['--task', 'smoke-fmnist', '--weight-clip', 'p99'], /--weight-clip must be max or mse/],
      [['--task', 'smoke-fmnist', '--z', '-1'], /--z must be > 0/],
      [['--task', 'smoke-fmnist', '--input-stats', '0,1,2'], /four numbers/],
      [
        ['--task', 'smoke-fmnist', '--input-stats', 'pixels=0,1,-1,2'],
        /'pixels' is not a float input/,
      ],
      [['--task', 'spam-transformer', '--input-stats', '0,1,-1,2'], /float inputs: none/],
    ] as const) {
      const r = await fails(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
