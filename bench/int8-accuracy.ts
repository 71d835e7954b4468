/**
 * INT8 accuracy of every zoo task: FP32 vs INT8 on the full evaluation split, for a recipe
 * (default: percentile 99.99 activations, per-channel weights, bias correction, 50 calibration
 * samples) and the naive baseline (max, per-tensor symmetric weights, no bias correction).
 *
 *   npx tsx bench/int8-accuracy.ts [--target ascend310] [--tasks a,b] [--out bench/results/int8-accuracy]
 *
 * Writes <out>.json and <out>.md (machine, command, date, table).
 */
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { compareMetric, predictModel } from '../core/evaluate/evaluate.ts';
import { getTarget } from '../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../core/onnx/index.ts';
import { type QuantizeOptions, quantizeModel } from '../core/quantize/quantize.ts';
import { TASKS } from '../zoo/registry.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'ascend310' },
    tasks: { type: 'string' },
    samples: { type: 'string', default: '50' },
    out: { type: 'string', default: 'bench/results/int8-accuracy' },
  },
});
const target = getTarget(values.target!);
const taskIds = values.tasks
  ? values.tasks.split(',')
  : Object.keys(TASKS).filter((t) => t !== 'smoke-fmnist');
const samples = Number(values.samples);
useNodeRuntime();

type Variant = { name: string; options: Omit<QuantizeOptions, 'target' | 'samples'> };
const variants: Variant[] = [
  {
    name: 'percentile 99.99, per-channel, bias correction',
    options: { method: { method: 'percentile', percentile: 99.99 }, biasCorrection: true },
  },
  {
    name: 'naive: max, per-tensor symmetric weights, no bias correction',
    options: { method: { method: 'max' }, weightGranularity: 'per-tensor', biasCorrection: false },
  },
];

const rows: Record<string, unknown>[] = [];
for (const id of taskIds) {
  const task = TASKS[id]!;
  const bytes = await readTaskModel(task.manifest);
  const evalSplit = await task.load(nodeDataSource(), 'evaluation');
  const calib = await task.load(nodeDataSource(), 'calibration');
  const t0 = performance.now();
  const fp32 = task.score(await predictModel(task, bytes, evalSplit), evalSplit.labels);
  const fp32Seconds = (performance.now() - t0) / 1000;
  for (const v of variants) {
    const t1 = performance.now();
    const q = await quantizeModel(decodeModel(bytes), calib, {
      ...v.options,
      target,
      samples: { indices: spreadIndices(calib.size, samples) },
    });
    const t2 = performance.now();
    const int8 = task.score(
      await predictModel(task, encodeModel(q.emulation), evalSplit, {
        graphOptimizationLevel: target.executor === 'ort-qdq' ? 'all' : 'disabled',
      }),
      evalSplit.labels,
    );
    const t3 = performance.now();
    const c = compareMetric(task.manifest.metric.primary, fp32, int8);
    const row = {
      task: id,
      target: target.id,
      recipe: v.name,
      metric: c.metric,
      fp32: c.fp32,
      int8: c.int8,
      loss_points: c.lossPoints,
      samples: evalSplit.size,
      calibration_samples: samples,
      quantized_layers: q.layers.length,
      float_layers: q.skipped.length,
      seconds: {
        fp32_eval: round(fp32Seconds),
        quantize: round((t2 - t1) / 1000),
        int8_eval: round((t3 - t2) / 1000),
      },
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const command = `npx tsx bench/int8-accuracy.ts --target ${target.id}${values.tasks ? ` --tasks ${values.tasks}` : ''} --samples ${samples}`;
const md = [
  `# INT8 accuracy on ${target.id}`,
  '',
  `- date: ${new Date().toISOString()}`,
  `- machine: ${machine}`,
  `- command: \`${command}\``,
  `- calibration: ${samples} samples spread evenly over each task's calibration split; evaluation: full split`,
  '',
  '| task | recipe | metric | FP32 | INT8 | loss (points) | layers int8/float |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.task} | ${r.recipe} | ${r.metric} | ${(r.fp32 as number).toFixed(4)} | ${(r.int8 as number).toFixed(4)} | ${(r.loss_points as number).toFixed(2)} | ${r.quantized_layers}/${r.float_layers} |`,
  ),
  '',
].join('\n');
await writeFile(
  `${values.out}.json`,
  `${JSON.stringify({ machine, command, date: new Date().toISOString(), rows }, null, 1)}\n`,
);
await writeFile(`${values.out}.md`, md);
console.log(md);
