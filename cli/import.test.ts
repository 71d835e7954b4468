/**
 * `cann-quant import`: PyTorch's quantization of fmnist-resnet (zoo/fmnist-resnet/pytorch-ptq)
 * on the targets, from the command line (full-split numbers: bench/results/import-2026-11-29.md).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { predictModel } from '../core/evaluate/evaluate.ts';
import { getTarget } from '../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../core/onnx/index.ts';
import { quantizeModel } from '../core/quantize/quantize.ts';
import { getTask } from '../zoo/registry.ts';
import type { ImportResult } from './commands/import.ts';
import { nodeDataSource } from './data-source.ts';
import { useNodeRuntime } from './runtime-node.ts';
import { readTaskModel } from './zoo-files.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const QDQ = fileURLToPath(new URL('../zoo/fmnist-resnet/pytorch-ptq/model.onnx', import.meta.url));
const FLOAT = fileURLToPath(new URL('../zoo/fmnist-resnet/model.onnx', import.meta.url));
const cliJson = async (...args: string[]) =>
  JSON.parse((await run(process.execPath, [BIN, 'import', ...args, '--json'])).stdout);
/** A failing `cann-quant <args>` run's exit code and stderr (`env`: its environment). */
async function failsRun(
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [BIN, ...args], env ? { env } : {});
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`${args.join(' ')} succeeded`);
}
const fails = (...args: string[]) => failsRun(['import', ...args]);
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
    expect(ascend.same_model).toEqual({ same: true, matched: 8, layers: 8 });
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
      /cannot stand in for spam-transformer's model: it takes \[input\] and gives \[logits\]; the task's model takes \[/,
    );
  });
});

describe('cann-quant import of a dynamically quantized file', () => {
  const DYNAMIC = fileURLToPath(
    new URL('../zoo/smoke-fmnist/ort-dynamic/model.onnx', import.meta.url),
  );

  it("measures ONNX Runtime's quantize_dynamic output on cpu-wasm-dynamic: the file's own top-1, every layer exact", async () => {
    const r = (await cliJson(
      '--model',
      DYNAMIC,
      '--task',
      'smoke-fmnist',
      '--all-targets',
    )) as ImportResult;
    expect(r.removed).toEqual({
      quantizeLinear: 0,
      dequantizeLinear: 0,
      dynamicQuantizeLinear: 3,
      integerOps: 3,
    });
    expect(r.same_model).toEqual({ same: true, matched: 3, layers: 3 });
    // --all-targets: the targets of the file's kind only.
    expect(r.targets.map((t) => t.target)).toEqual(['cpu-wasm-dynamic']);
    const t = r.targets[0]!;
    expect(t.exact).toEqual({ activations: 3, weights: 3 });
    // Measured 2026-11-29 (1,000 images): FP32 0.885; the file as exported at batch 1 and the
    // dynamic target both 0.886 (its folded BatchNorm scales round differently: the same top-1).
    expect([r.fp32, r.as_exported, t.int8]).toEqual([0.885, 0.886, 0.886]);
    expect(t.vs_exported_points).toBe(0);
  });

  it('refuses a dynamic file on a static target and a QDQ file on the dynamic one, in one line', async () => {
    const onStatic = await fails('--model', DYNAMIC, '--target', 'ascend310');
    expect(onStatic.code).toBe(2);
    expect(onStatic.stderr.trim()).toMatch(
      /^cann-quant: .*ort-dynamic\/model\.onnx: the file is quantized dynamically .*: ascend310 needs calibrated activation scales; place it on a dynamic target \(cpu-wasm-dynamic\), or calibrate the task's model for ascend310$/,
    );
    const onDynamic = await fails('--model', QDQ, '--target', 'cpu-wasm-dynamic');
    expect(onDynamic.code).toBe(2);
    expect(onDynamic.stderr).toMatch(
      /the file is quantized statically \(calibrated activation scales, QDQ or QOperator\); cpu-wasm-dynamic quantizes activations at run time/,
    );
    // score --qdq (and submit --qdq) refuse it before any run, with the recipe's target
    const score = await failsRun(['score', '--task', 'smoke-fmnist', '--qdq', DYNAMIC]);
    expect(score.code).toBe(2);
    expect(score.stderr).toMatch(
      /: ascend310 needs calibrated activation scales; place it on a dynamic target/,
    );
  });
});

describe('cann-quant score --qdq', () => {
  it('scores an imported quantization like any recipe: no calibration, level L1, its producer named', async () => {
    // A QDQ file: smoke-fmnist quantized by cann-quant itself for Ascend 310 (any producer's
    // file is read the same way).
    const task = getTask('smoke-fmnist');
    const calibration = await task.load(nodeDataSource(), 'calibration');
    useNodeRuntime();
    const q = await quantizeModel(decodeModel(await readTaskModel(task.manifest)), calibration, {
      target: getTarget('ascend310'),
      samples: { indices: spreadIndices(calibration.size, 50) },
    });
    const file = join(dir, 'smoke.qdq.onnx');
    writeFileSync(file, encodeModel(q.qdq));
    const env = { ...process.env, CANN_QUANT_IMPORTS_DIR: join(dir, 'store') };
    const args = ['score', '--task', 'smoke-fmnist', '--qdq', file, '--no-measure', '--json'];
    const { stdout } = await run(process.execPath, [BIN, ...args, '--workers', '1'], { env });
    const r = JSON.parse(stdout);
    expect(r.imported.producer).toBe('cann-quant');
    expect(r.recipe).toBe(`qdq-${r.imported.model.slice(0, 12)}:smoke-fmnist:ascend310`);
    expect(r.calibration_samples).toBe(0);
    expect(r.quantized_layers).toBe(3);
    expect(r.level).toBe(1);
    const check = (id: string) => r.checks.find((k: { id: string }) => k.id === id);
    expect(check('L1.reproducible').pass).toBe(true);
    expect(check('L3.fidelity').pass).toBe(true);
    expect(check('L2.samples').why).toBe(
      "the scales were imported from another framework's quantization: no calibration ran here",
    );
    expect(check('L3.bias')).toMatchObject({
      pass: false,
      why: 'an imported quantization is scored as the framework made it: no bias correction here',
    });
    // The file's integers ran: the INT8 metric is the one of the quantization it was exported
    // from, evaluated here directly.
    expect(r.fp32).toBe(0.885);
    const evaluation = await task.load(nodeDataSource(), 'evaluation');
    const direct = task.score(
      await predictModel(task, encodeModel(q.emulation), evaluation),
      evaluation.labels,
    );
    expect(r.int8).toBe(direct.top1);
    // A float file is refused in one line.
    const bad = await failsRun(['score', '--task', 'smoke-fmnist', '--qdq', FLOAT], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no QuantizeLinear\/DequantizeLinear found: this is a float model/);
    // Another network's quantization: its INT8 metric against smoke-fmnist's FP32 means nothing.
    const other = await failsRun(['score', '--task', 'smoke-fmnist', '--qdq', QDQ], env);
    expect(other.code).toBe(2);
    expect(other.stderr.trim()).toBe(
      `cann-quant: ${QDQ} is not smoke-fmnist's model: no imported layer is a conv [8x1x3x3] like /features/features.0/Conv`,
    );
  }, 300_000);
});
