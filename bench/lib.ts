/**
 * Shared helpers of the performance benchmarks (bench/perf.ts, bench/tiering.ts): machine
 * description, medians, the native reference runtime (onnxruntime-node from bench/native,
 * installed on demand), timed CLI runs, a zoo task quantized the way the benchmarks compare it.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor as OrtTensor } from 'onnxruntime-web';
import { nodeDataSource } from '../cli/data-source.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import type { Target } from '../core/formats/targets.ts';
import { decodeModel } from '../core/onnx/index.ts';
import { quantizeModel } from '../core/quantize/quantize.ts';
import { type OrtTensorConstructor, toOrtTensor } from '../core/runtime/convert.ts';
import type { TensorData } from '../core/tensor/index.ts';
import type { BenchmarkTask } from '../zoo/task.ts';

/**
 * A zoo task's calibration split and its model quantized for `target` on 50 spread calibration
 * samples (default options): the emulation the benchmarks time and compare.
 */
export async function quantizedOnSpread(task: BenchmarkTask, target: Target) {
  const calib = await task.load(nodeDataSource(), 'calibration');
  const indices = spreadIndices(calib.size, 50);
  const q = await quantizeModel(decodeModel(await readTaskModel(task.manifest)), calib, {
    target,
    samples: { indices },
  });
  return { calib, indices, q };
}

/** CPU, cores, memory, load, versions: recorded with every result. */
export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    nproc: Number(execFileSync('nproc').toString().trim()),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    uptime: execFileSync('uptime').toString().trim(),
  };
}

/** The `uptime` line (load averages) right now. */
export function uptime(): string {
  return execFileSync('uptime').toString().trim();
}

/** 1-minute load average. */
export function load1(): number {
  return Number(/load average: ([\d.]+)/.exec(uptime())?.[1] ?? 'NaN');
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const MiB = 2 ** 20;

const nativeDir = fileURLToPath(new URL('./native/', import.meta.url));

/** onnxruntime-node from bench/native (after `npm run bench:setup`), or undefined. */
export function loadOrtNode(): typeof import('onnxruntime-common') | undefined {
  if (!existsSync(`${nativeDir}node_modules/onnxruntime-node`)) return undefined;
  const require = createRequire(`${nativeDir}package.json`);
  return require('onnxruntime-node') as typeof import('onnxruntime-common');
}

/** Markdown table from rows of cells. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** The same pure-JS loop for every thread of {@link parallelCeiling} (float math on 512 KiB). */
const CEILING_LOOP = `
const { parentPort, workerData } = require('node:worker_threads');
const a = new Float64Array(1 << 16).fill(1.0001);
let s = 0;
const t = performance.now();
for (let r = 0; r < workerData; r++)
  for (let i = 0; i < a.length; i++) { a[i] = a[i] * 1.0000001 + 1e-9; s += a[i]; }
parentPort.postMessage({ ms: performance.now() - t, s });`;

/**
 * The parallel ceiling of this machine right now: the same CPU-bound loop run by 1 worker
 * thread alone, then by `n` at once; ratio = n * t(1) / t(n), the throughput `n` threads give
 * over 1 (n on an idle machine with n free cores). A shared machine gives less, and not the
 * same from minute to minute, so the benchmark measures it beside each round of ratios.
 */
export async function parallelCeiling(
  n: number,
  reps = 4000,
): Promise<{ oneMs: number; manyMs: number; ratio: number }> {
  const { Worker } = await import('node:worker_threads');
  const run = async (k: number) => {
    const t = performance.now();
    await Promise.all(
      Array.from(
        { length: k },
        () =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(CEILING_LOOP, { eval: true, workerData: reps });
            w.once('message', () => {
              void w.terminate();
              resolve();
            });
            w.once('error', reject);
          }),
      ),
    );
    return performance.now() - t;
  };
  const oneMs = await run(1);
  const manyMs = await run(n);
  return { oneMs, manyMs, ratio: (n * oneMs) / manyMs };
}

/**
 * A batch of the project's tensors as feeds for a session of any ORT module (onnxruntime-web or
 * onnxruntime-node), through core's {@link toOrtTensor}.
 */
export function ortFeeds(
  Tensor: unknown,
  batch: Readonly<Record<string, TensorData>>,
): Record<string, OrtTensor> {
  return Object.fromEntries(
    Object.entries(batch).map(([k, t]) => [k, toOrtTensor(Tensor as OrtTensorConstructor, t)]),
  );
}

/**
 * The `score` command line the benchmarks time: `--json`, no reproduction run, no measured
 * speed-up, `--workers <mode>` (mode '1': in process).
 */
export function scoreArgs(task: string, target: string, mode: string): string[] {
  const base = [
    'score',
    '--task',
    task,
    '--target',
    target,
    '--no-reproduce',
    '--no-measure',
    '--json',
  ];
  return [...base, '--workers', mode];
}

/** Wall and CPU seconds of one `node cli/bin.js` run, and its `--json` output. */
export interface CliRun {
  wall: number;
  cpu: number;
  json: Record<string, unknown>;
}

/** Runs `node cli/bin.js <args>` with `env` added; wall and CPU (user + sys, all threads) seconds. */
export function cliTime(args: string[], env: Record<string, string> = {}): CliRun {
  const out = join(tmpdir(), `cq-bench-out-${process.pid}.json`);
  const t0 = performance.now();
  const r = spawnSync(
    'bash',
    [
      '-c',
      `TIMEFORMAT='%U %S'; { time node cli/bin.js ${args.join(' ')} > ${out} ; } 2>&1 | tail -1`,
    ],
    { encoding: 'utf8', env: { ...process.env, ...env } },
  );
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`score ${args.join(' ')} failed: ${r.stderr}`);
  const [u, s] = r.stdout.trim().split(/\s+/).map(Number);
  const json = JSON.parse(readFileSync(out, 'utf8'));
  rmSync(out, { force: true });
  return { wall, cpu: u! + s!, json };
}
