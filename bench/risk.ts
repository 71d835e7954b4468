/**
 * How well the data-free risk predictor (core/risk/risk.ts) predicts the noise that real data
 * shows. For each zoo task and target, on 50 spread calibration samples:
 * - inputs: each covered layer's predicted input SQNR against the SQNR of its real captured
 *   input quantized on the predicted range (what the prediction claims), and on the range of the
 *   data itself (what `max` calibration gives);
 * - layers: the predicted layer SQNR against the model-output SQNR measured with that layer
 *   alone quantized (core/calibrate/sensitivity.ts measureOneLayerModels, `max` calibration, no
 *   bias correction), as a rank correlation (Spearman) over the layers;
 * - model: the predicted model SQNR against the measured output SQNR of the whole INT8
 *   emulation (every layer, `max`, no bias correction) vs the target's all-float emulation
 *   (the worst of the float outputs, as the sensitivity analysis reports it).
 *
 *   npx tsx bench/risk.ts [--tasks a,b] [--targets ascend310,...] [--samples 50] \
 *       [--out bench/results/risk-<date>.md] [--json file]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { captureSession, gatherBatch } from '../core/calibrate/capture.ts';
import { runBatches } from '../core/calibrate/prefix.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { measureOneLayerModels, sqnrDb } from '../core/calibrate/sensitivity.ts';
import { referenceLayer } from '../core/emulator/reference-layer.ts';
import { getTarget } from '../core/formats/targets.ts';
import { decodeModel } from '../core/onnx/index.ts';
import { buildEmulationModel } from '../core/quantize/emulation.ts';
import { activationParams, roundHalfEven } from '../core/quantize/params.ts';
import { quantizeModel } from '../core/quantize/quantize.ts';
import { predictRisk } from '../core/risk/risk.ts';
import type { TensorData } from '../core/tensor/index.ts';
import { FMNIST_MEAN, FMNIST_STD } from '../zoo/datasets/fashion-mnist.ts';
import { TASKS } from '../zoo/registry.ts';
import { fmt, machine, table, uptime } from './lib.ts';

const { values } = parseArgs({
  options: {
    tasks: {
      type: 'string',
      default: 'smoke-fmnist,fmnist-resnet,fmnist-mobilenet,spam-transformer,fmnist-detect',
    },
    targets: {
      type: 'string',
      default: 'ascend310,ascend310p,snapdragon,ascend310:per-tensor,ascend310-w4a8',
    },
    samples: { type: 'string', default: '50' },
    out: { type: 'string' },
    json: { type: 'string' },
    /**
     * State the Fashion-MNIST tasks' input statistics as their documented normalisation gives
     * them (mean 0, std 1, range [(0 - 0.286) / 0.353, (1 - 0.286) / 0.353]), as a user who knows
     * the preprocessing would with `cann-quant risk --input-stats`.
     */
    'stated-inputs': { type: 'boolean', default: false },
  },
});
useNodeRuntime();
const started = new Date();
const startUptime = uptime();

/** Spearman rank correlation (average ranks for ties). */
function spearman(a: readonly number[], b: readonly number[]): number {
  const rank = (v: readonly number[]) => {
    const order = v.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
      for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const n = a.length;
  const mean = (n - 1) / 2;
  let num = 0;
  let da = 0;
  let dbb = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i]! - mean) * (rb[i]! - mean);
    da += (ra[i]! - mean) ** 2;
    dbb += (rb[i]! - mean) ** 2;
  }
  return num / Math.sqrt(da * dbb);
}

/** SQNR of `x` quantized per tensor on [lo, hi] under the scheme (round half even, saturate). */
function quantizedSqnr(
  x: readonly Float32Array[],
  lo: number,
  hi: number,
  scheme: Parameters<typeof activationParams>[1],
): number {
  const p = activationParams({ lo, hi }, scheme);
  let signal = 0;
  let noise = 0;
  for (const part of x)
    for (let i = 0; i < part.length; i++) {
      const v = part[i]!;
      const q = Math.min(p.qmax, Math.max(p.qmin, roundHalfEven(v / p.scale) + p.zeroPoint));
      signal += v * v;
      noise += (v - (q - p.zeroPoint) * p.scale) ** 2;
    }
  return sqnrDb(signal, noise);
}

interface Row {
  task: string;
  target: string;
  predicted: number;
  measured: number;
  weightOnly: number;
  covered: string;
  level: string;
  spearman: number;
  spearmanLocal: number;
  localErrMedian: number;
  localErrMax: number;
  inputErrMedian: number;
  inputErrMax: number;
  topPredicted: string;
  topMeasured: string;
  seconds: number;
}
const rows: Row[] = [];
const inputRows: (string | number)[][] = [];
const layerRows: (string | number)[][] = [];

for (const taskId of values.tasks!.split(',')) {
  const task = TASKS[taskId];
  if (!task) throw new RangeError(`unknown task '${taskId}'`);
  const model = decodeModel(await readTaskModel(task.manifest));
  const calib = await task.load(nodeDataSource(), 'calibration');
  const indices = spreadIndices(calib.size, Number(values.samples));
  for (const targetId of values.targets!.split(',')) {
    const t0 = performance.now();
    // `<target>:per-tensor`: the target with per-tensor weights (the naive baseline's weights)
    const [base, variant] = targetId.split(':');
    if (variant !== undefined && variant !== 'per-tensor')
      throw new RangeError(`unknown variant '${variant}' (per-tensor)`);
    const target = getTarget(base!);
    const format = variant ? { weightGranularity: 'per-tensor' as const } : {};
    const stated =
      values['stated-inputs'] && task.manifest.dataset.name.includes('Fashion-MNIST')
        ? {
            inputs: {
              [model.graph!.input[0]!.name]: {
                mean: 0,
                std: 1,
                min: (0 - FMNIST_MEAN) / FMNIST_STD,
                max: (1 - FMNIST_MEAN) / FMNIST_STD,
              },
            },
          }
        : {};
    const pred = predictRisk(model, target, { ...format, ...stated });
    const q = await quantizeModel(model, calib, {
      target,
      ...format,
      method: { method: 'max' },
      biasCorrection: false,
      samples: { indices },
    });
    // each layer alone, locally: the reference kernels of the target's INT8 arithmetic on the
    // layer's real input, against the layer's float output (not for cpu-wasm, which the
    // reference does not emulate)
    const local = new Map<string, number>();
    if (target.executor === 'lowered-emulator') {
      const wanted = [...new Set(q.layers.flatMap((l) => [l.input, l.output]))];
      const session = await captureSession(q.prepared.model, wanted);
      const sums = new Map(q.layers.map((l) => [l.name, { signal: 0, noise: 0 }]));
      try {
        for (let i = 0; i < indices.length; i += 25) {
          const out = await session.run(await gatherBatch(calib, indices.slice(i, i + 25)), wanted);
          for (const l of q.layers) {
            const y = referenceLayer(l, out[l.input] as TensorData<'float32'>).data;
            const ref = (out[l.output] as TensorData<'float32'>).data;
            const acc = sums.get(l.name)!;
            for (let k = 0; k < ref.length; k++) {
              acc.signal += ref[k]! * ref[k]!;
              acc.noise += (ref[k]! - y[k]!) ** 2;
            }
          }
        }
      } finally {
        await session.release();
      }
      for (const [n, acc] of sums) local.set(n, sqnrDb(acc.signal, acc.noise));
    }
    // inputs: the real captured input of each covered layer
    const covered = pred.layers.filter((l) => l.input !== null);
    const tensors = [...new Set(covered.map((l) => l.input!.tensor))];
    const captured = new Map<string, Float32Array[]>(tensors.map((n) => [n, []]));
    if (tensors.length > 0) {
      const session = await captureSession(q.prepared.model, tensors);
      try {
        for (let i = 0; i < indices.length; i += 25) {
          const out = await session.run(
            await gatherBatch(calib, indices.slice(i, i + 25)),
            tensors,
          );
          for (const n of tensors) captured.get(n)!.push((out[n] as TensorData<'float32'>).data);
        }
      } finally {
        await session.release();
      }
    }
    const inputErrors: number[] = [];
    for (const l of covered) {
      const x = captured.get(l.input!.tensor)!;
      let lo = 0;
      let hi = 0;
      for (const part of x)
        for (const v of part) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      const atPredicted = quantizedSqnr(x, l.input!.lo, l.input!.hi, pred.activations);
      const atMax = quantizedSqnr(x, lo, hi, pred.activations);
      inputErrors.push(l.inputSqnrDb! - atMax);
      inputRows.push([
        taskId,
        targetId,
        l.name,
        fmt(l.inputSqnrDb!),
        fmt(atPredicted),
        fmt(atMax),
        `[${fmt(l.input!.lo, 2)}, ${fmt(l.input!.hi, 2)}]`,
        `[${fmt(lo, 2)}, ${fmt(hi, 2)}]`,
      ]);
    }
    // layers: each layer alone at the model output
    const one = await measureOneLayerModels(
      q.prepared,
      q.layers,
      target,
      calib,
      { indices },
      {
        floatPath: false,
      },
    );
    const measuredByName = new Map(q.layers.map((l, k) => [l.name, one.deviations[k]!.sqnrDb]));
    const names = pred.layers.map((l) => l.name).filter((n) => measuredByName.has(n));
    const predictedLayer = names.map((n) => pred.layers.find((l) => l.name === n)!.sqnrDb);
    // at the model output: the layer's SQNR with its predicted gain on the way there
    const predictedAtOutput = names.map((n) => {
      const l = pred.layers.find((p) => p.name === n)!;
      return l.sqnrDb - l.outputGainDb;
    });
    const rho = spearman(
      predictedAtOutput,
      names.map((n) => measuredByName.get(n)!),
    );
    const rhoLocal = local.size
      ? spearman(
          predictedLayer,
          names.map((n) => local.get(n)!),
        )
      : NaN;
    const localErrors = local.size
      ? names.map((n, k) => Math.abs(predictedLayer[k]! - local.get(n)!)).sort((a, b) => a - b)
      : [];
    for (const n of names) {
      const l = pred.layers.find((p) => p.name === n)!;
      layerRows.push([
        taskId,
        targetId,
        n,
        fmt(l.weightSqnrDb),
        l.inputSqnrDb === null ? 'unknown' : fmt(l.inputSqnrDb),
        fmt(l.sqnrDb),
        fmt(l.sqnrDb - l.outputGainDb),
        l.signal,
        local.has(n) ? fmt(local.get(n)!) : 'n/a',
        fmt(measuredByName.get(n)!),
      ]);
    }
    // model: every layer quantized vs the all-float emulation
    const feeds = [];
    for (let i = 0; i < indices.length; i += 25)
      feeds.push(await gatherBatch(calib, indices.slice(i, i + 25)));
    const ref = await runBatches(buildEmulationModel(q.prepared, [], target), feeds);
    const int8 = await runBatches(q.emulation, feeds);
    const outputs = Object.keys(ref[0]!).filter((o) => ref[0]![o]!.type === 'float32');
    const perOutput = outputs.map((o) => {
      let signal = 0;
      let noise = 0;
      ref.forEach((r, b) => {
        const a = r[o]!.data as Float32Array;
        const c = int8[b]![o]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) {
          signal += a[i]! * a[i]!;
          noise += (a[i]! - c[i]!) ** 2;
        }
      });
      return sqnrDb(signal, noise);
    });
    const measured = Math.min(...perOutput);
    const worstMeasured = [...measuredByName].sort((a, b) => a[1] - b[1])[0]?.[0] ?? '';
    const sortedErr = [...inputErrors].map(Math.abs).sort((a, b) => a - b);
    const row: Row = {
      task: taskId,
      target: targetId,
      predicted: pred.predictedSqnrDb,
      measured,
      weightOnly: pred.weightOnlySqnrDb,
      covered: `${pred.covered}/${pred.layers.length}`,
      level: pred.level,
      spearman: rho,
      spearmanLocal: rhoLocal,
      localErrMedian: localErrors[localErrors.length >> 1] ?? Number.NaN,
      localErrMax: localErrors[localErrors.length - 1] ?? Number.NaN,
      inputErrMedian: sortedErr[sortedErr.length >> 1] ?? Number.NaN,
      inputErrMax: sortedErr[sortedErr.length - 1] ?? Number.NaN,
      topPredicted: pred.layers[0]?.name ?? '',
      topMeasured: worstMeasured,
      seconds: (performance.now() - t0) / 1000,
    };
    rows.push(row);
    console.error(
      `${taskId} ${targetId}: predicted ${fmt(row.predicted)} dB, measured ${fmt(row.measured)} dB, layer |err| median ${fmt(row.localErrMedian)} dB, rho local ${fmt(rhoLocal, 2)}, model ${fmt(rho, 2)}, input |err| median ${fmt(row.inputErrMedian)} dB (${fmt(row.seconds)} s)`,
    );
  }
}

const command = `npx tsx bench/risk.ts --tasks ${values.tasks} --targets ${values.targets} --samples ${values.samples}${values['stated-inputs'] ? ' --stated-inputs' : ''}`;
const m = machine();
const md = [
  '# The data-free risk predictor against measured noise',
  '',
  `- date: ${started.toISOString()} (written ${new Date().toISOString()})`,
  `- command: \`${command}\``,
  `- machine: ${JSON.stringify(m)}`,
  `- uptime at start: \`${startUptime}\``,
  '',
  `Predicted: \`predictRisk\` (core/risk/risk.ts) from the model file alone${values['stated-inputs'] ? ' and, for the Fashion-MNIST tasks, the input statistics their documented normalisation states (mean 0, std 1, range [-0.81, 2.02])' : ''}. Measured: 50 spread`,
  'calibration samples, `max` calibration, no bias correction, the target emulation against its',
  'all-float emulation. rho: Spearman rank correlation over the layers between the predicted',
  'layer SQNR and the measured SQNR, at the layer\'s own output ("local": the target\'s reference',
  "kernels, core/emulator/reference-layer.ts, on the layer's real input) and at the model output",
  "with that layer alone quantized (predicted there: the layer's SQNR less its gain on the way, which a",
  'global average pool after it lowers). Layer error: |predicted - measured| at the layer output. Input error: predicted',
  'input SQNR minus the SQNR of the real input quantized on its own [min, max] (covered layers).',
  'delta: the change from the first target of the task (predicted / measured): what a change of',
  'format costs. `<target>:per-tensor` is the target with per-tensor weights.',
  '',
  '## Model',
  '',
  table(
    [
      'task',
      'target',
      'predicted dB',
      'measured dB',
      'weights-only dB',
      'covered',
      'level',
      'delta predicted / measured dB',
      'layer err median / max dB',
      'rho local',
      'rho model output',
      'input err median / max dB',
      'top predicted layer',
      'top measured layer',
    ],
    rows.map((r) => [
      r.task,
      r.target,
      fmt(r.predicted),
      fmt(r.measured),
      fmt(r.weightOnly),
      r.covered,
      r.level,
      (() => {
        const first = rows.find((f) => f.task === r.task)!;
        return `${fmt(r.predicted - first.predicted)} / ${fmt(r.measured - first.measured)}`;
      })(),
      `${fmt(r.localErrMedian)} / ${fmt(r.localErrMax)}`,
      fmt(r.spearmanLocal, 2),
      fmt(r.spearman, 2),
      `${fmt(r.inputErrMedian)} / ${fmt(r.inputErrMax)}`,
      r.topPredicted,
      r.topMeasured,
    ]),
  ),
  '',
  '## Inputs (covered layers)',
  '',
  table(
    [
      'task',
      'target',
      'layer',
      'predicted dB',
      'real, predicted range dB',
      'real, own max range dB',
      'predicted range',
      'real range',
    ],
    inputRows,
  ),
  '',
  '## Layers',
  '',
  table(
    [
      'task',
      'target',
      'layer',
      'weights dB',
      'input dB (predicted)',
      'layer dB (predicted)',
      'at the model output dB (predicted)',
      'signal from',
      'layer output dB (measured)',
      'model output, layer alone dB (measured)',
    ],
    layerRows,
  ),
  '',
].join('\n');
if (values.out) writeFileSync(values.out, md);
else process.stdout.write(md);
if (values.json)
  writeFileSync(values.json, `${JSON.stringify({ command, machine: m, rows }, null, 2)}\n`);
