/**
 * Where a layer's INT8 error comes from: the output SQNR of each MatMul / Gemm layer of a zoo
 * model with only its weights quantized, only its input activation quantized, and both, over
 * the layer's real inputs on spread calibration samples; plus the same with SmoothQuant-style
 * per-input-channel smoothing (activation channel j divided by s_j, weight row j multiplied by
 * it, s_j = max|x_j|^a / max|w_j|^(1-a)), the usual remedy when activation outliers dominate.
 *
 *   npx tsx bench/layer-noise.ts --task spam-transformer [--samples 50] [--out file.md]
 *
 * Plain float64 arithmetic, not the chip's: weights int8 symmetric per output channel (max),
 * activations int8 asymmetric per tensor over the captured range (max), as the naive baseline
 * quantizes them. It separates the two noise sources; the emulator's numbers (fp16 float path,
 * the recipe's methods) are in the calibration report. Rank-3 inputs [N, T, D] skip the rows of
 * padding tokens (an int64 feed [N, T] equal to 0). Conv layers are not covered.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { captureSession, gatherBatch } from '../core/calibrate/capture.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { sqnrDb } from '../core/calibrate/sensitivity.ts';
import { getTarget } from '../core/formats/targets.ts';
import { decodeModel } from '../core/onnx/index.ts';
import { prepareModel } from '../core/quantize/prepare.ts';
import { TASKS } from '../zoo/registry.ts';
import { fmt, machine, table } from './lib.ts';

const { values } = parseArgs({
  options: {
    task: { type: 'string', default: 'spam-transformer' },
    samples: { type: 'string', default: '50' },
    out: { type: 'string' },
  },
});
const task = TASKS[values.task!];
if (!task) throw new RangeError(`unknown task '${values.task}' (${Object.keys(TASKS).join(', ')})`);
useNodeRuntime();

type Matrix = Float64Array[];

/** Rows of the weight as W[k][n] (input channel k, output channel n). */
function weightRows(w: { dims: readonly number[]; data: Float32Array }, kind: string): Matrix {
  const [a, b] = w.dims as [number, number];
  // matmul (weight on the right): [K, N]; gemm: normalised to [N, K]
  const [K, N] = kind === 'gemm' ? [b, a] : [a, b];
  return Array.from({ length: K }, (_, k) =>
    Float64Array.from({ length: N }, (_, n) =>
      kind === 'gemm' ? w.data[n * K + k]! : w.data[k * N + n]!,
    ),
  );
}

function matmul(X: Matrix, W: Matrix): Matrix {
  const N = W[0]!.length;
  return X.map((row) => {
    const out = new Float64Array(N);
    row.forEach((a, k) => {
      if (a === 0) return;
      const wk = W[k]!;
      for (let n = 0; n < N; n++) out[n]! += a * wk[n]!;
    });
    return out;
  });
}

/** Output SQNR of `y` against `ref` (core's formula over the summed signal and noise). */
function layerSqnrDb(ref: Matrix, y: Matrix): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i]!;
    const q = y[i]!;
    for (let j = 0; j < r.length; j++) {
      signal += r[j]! * r[j]!;
      noise += (r[j]! - q[j]!) ** 2;
    }
  }
  return sqnrDb(signal, noise);
}

/** int8 asymmetric per tensor over the data's [min, max] (0 included), round half away. */
function quantizeActivations(X: Matrix): Matrix {
  let lo = 0;
  let hi = 0;
  for (const r of X)
    for (const v of r) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  const s = (hi - lo) / 255;
  const z = -128 - Math.round(lo / s);
  return X.map((r) => r.map((v) => (Math.min(127, Math.max(-128, Math.round(v / s) + z)) - z) * s));
}

/** int8 symmetric per output channel (max). */
function quantizeWeights(W: Matrix): Matrix {
  const N = W[0]!.length;
  const scale = Array.from(
    { length: N },
    (_, n) => Math.max(...W.map((r) => Math.abs(r[n]!))) / 127,
  );
  return W.map((r) => r.map((v, n) => (scale[n] ? Math.round(v / scale[n]!) * scale[n]! : 0)));
}

const source = nodeDataSource();
const calibration = await task.load(source, 'calibration');
const model = decodeModel(await readTaskModel(task.manifest));
const prepared = prepareModel(model, getTarget('ascend310'));
const layers = prepared.layers.filter(
  (c) => (c.kind === 'matmul' && c.weightSide !== 'left') || c.kind === 'gemm',
);
const inputs = [...new Set(layers.map((c) => c.input))];
const session = await captureSession(prepared.model, inputs);
const indices = spreadIndices(calibration.size, Number(values.samples));
const rows = new Map<string, Matrix>(inputs.map((n) => [n, []]));
for (let i = 0; i < indices.length; i += 25) {
  const feeds = await gatherBatch(calibration, indices.slice(i, i + 25));
  const out = await session.run(feeds, inputs);
  for (const name of inputs) {
    const t = out[name]!;
    const d = t.dims[t.dims.length - 1]!;
    const data = t.data as Float32Array;
    const ids = Object.values(feeds).find(
      (f) =>
        f.type === 'int64' && t.dims.length === 3 && f.dims.join() === t.dims.slice(0, 2).join(),
    );
    for (let r = 0; r < data.length / d; r++) {
      if (ids && (ids.data as BigInt64Array)[r] === 0n) continue;
      rows.get(name)!.push(Float64Array.from(data.subarray(r * d, (r + 1) * d)));
    }
  }
}
await session.release();

const ALPHAS = [0.5, 0.75];
const body: (string | number)[][] = [];
for (const c of layers) {
  const X = rows.get(c.input)!;
  const W = weightRows(c.weight, c.kind);
  const Y = matmul(X, W);
  const Xq = quantizeActivations(X);
  const Wq = quantizeWeights(W);
  const cells: (string | number)[] = [
    c.name,
    X.length,
    fmt(layerSqnrDb(Y, matmul(X, Wq))),
    fmt(layerSqnrDb(Y, matmul(Xq, W))),
    fmt(layerSqnrDb(Y, matmul(Xq, Wq))),
  ];
  const xMax = W.map((_, k) => Math.max(...X.map((r) => Math.abs(r[k]!))));
  const wMax = W.map((r) => Math.max(...r.map(Math.abs)));
  for (const a of ALPHAS) {
    const s = xMax.map((x, k) => Math.max(1e-5, x ** a / Math.max(1e-12, wMax[k]!) ** (1 - a)));
    const Xs = X.map((r) => r.map((v, k) => v / s[k]!));
    const Ws = W.map((r, k) => r.map((v) => v * s[k]!));
    cells.push(fmt(layerSqnrDb(Y, matmul(quantizeActivations(Xs), quantizeWeights(Ws)))));
  }
  const sorted = [...xMax].sort((p, q) => p - q);
  cells.push(
    `${fmt(sorted[0]!, 2)} / ${fmt(sorted[sorted.length >> 1]!, 2)} / ${fmt(sorted.at(-1)!, 2)}`,
  );
  body.push(cells);
  console.log(cells.join(' | '));
}

const report = [
  `# Layer noise sources: ${task.manifest.id}`,
  '',
  `- command: \`npx tsx bench/layer-noise.ts --task ${task.manifest.id} --samples ${values.samples}\``,
  `- machine: ${JSON.stringify(machine())}`,
  `- ${indices.length} spread calibration samples; rows = input rows (tokens) of the layer, padding tokens skipped`,
  '- output SQNR in dB (higher = closer to the float layer), float64 arithmetic: weights int8 symmetric per output channel (max), activations int8 asymmetric per tensor (max)',
  '',
  table(
    [
      'layer',
      'rows',
      'weights only',
      'activations only',
      'both',
      ...ALPHAS.map((a) => `both, smoothed a=${a}`),
      'input channel max |x| min / median / max',
    ],
    body,
  ),
  '',
].join('\n');
if (values.out) writeFileSync(values.out, report);
else console.log(report);
