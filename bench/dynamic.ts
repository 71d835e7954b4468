/**
 * Dynamic against static quantization on onnxruntime-web, per zoo task: the task's default
 * template for `cpu-wasm` (calibrated activation scales, ORT's QDQ integer kernels) and for
 * `cpu-wasm-dynamic` (scales computed per input at run time: DynamicQuantizeLinear ->
 * MatMulInteger / ConvInteger, see core/quantize/qdq.ts), each run through the pipeline with
 * validation on the full evaluation split; then the FP32, static and dynamic models timed on
 * this machine, interleaved (FP32, static, dynamic, FP32, ...) so that load changes hit all three
 * alike, at batch 1 (latency) and batch 25 (the pipeline's batch), median of `--repeats`.
 *
 *   npx tsx bench/dynamic.ts [--tasks a,b] [--repeats 40] [--out bench/results/dynamic-<date>]
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { runRecipe } from '../cli/commands/score.ts';
import { nodeDataSource } from '../cli/data-source.ts';
import { machineText, median } from '../cli/measure.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { gatherBatch } from '../core/calibrate/capture.ts';
import type { TargetId } from '../core/formats/targets.ts';
import { encodeModel } from '../core/onnx/index.ts';
import { DEFAULT_TEMPLATE_BY_KIND, recipeFromTemplate } from '../core/recipe/templates.ts';
import { createSession } from '../core/runtime/index.ts';
import { TASKS } from '../zoo/registry.ts';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string' },
    repeats: { type: 'string', default: '40' },
    out: { type: 'string' },
  },
});
const taskIds = values.tasks ? values.tasks.split(',') : Object.keys(TASKS);
const repeats = Number(values.repeats);
const out = values.out ?? `bench/results/dynamic-${new Date().toISOString().slice(0, 10)}`;
const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
const started = { date: new Date().toISOString(), commit: git('rev-parse', '--short', 'HEAD') };
const TARGETS: TargetId[] = ['cpu-wasm', 'cpu-wasm-dynamic'];
const BATCHES = [1, 25];

useNodeRuntime();

interface Row {
  task: string;
  target: TargetId;
  metric: string;
  fp32: number;
  int8: number;
  lossPoints: number;
  estimatedLossPoints: number | null;
  biasCorrection: boolean;
  layers: number;
  seconds: number;
  /** Median ms per run by batch size: FP32 and this target's INT8 model, and their ratio. */
  timing: Record<number, { fp32Ms: number; int8Ms: number; speedup: number }>;
}
const rows: Row[] = [];

for (const id of taskIds) {
  const task = TASKS[id as keyof typeof TASKS];
  if (!task) throw new RangeError(`unknown task '${id}'`);
  const models: Uint8Array[] = [];
  const base = rows.length;
  for (const target of TARGETS) {
    const recipe = recipeFromTemplate(
      DEFAULT_TEMPLATE_BY_KIND[task.manifest.kind] ?? 'industrial-vision',
      id,
      target,
    );
    const t0 = performance.now();
    const r = await runRecipe(recipe, { progress: false });
    const c = r.evaluation!.comparison;
    rows.push({
      task: id,
      target,
      metric: c.metric,
      fp32: c.fp32,
      int8: c.int8,
      lossPoints: c.lossPoints,
      estimatedLossPoints: r.estimate?.lossPoints ?? null,
      biasCorrection: r.biasCorrection?.applied ?? false,
      layers: r.layers.length,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      timing: {},
    });
    models.push(encodeModel(r.qdq));
    process.stderr.write(`${id} ${target}: ${c.metric} ${c.fp32} -> ${c.int8}\n`);
  }
  const calibration = await task.load(nodeDataSource(), 'calibration');
  const fp32 = await createSession(await readTaskModel(task.manifest), {
    graphOptimizationLevel: 'all',
  });
  const int8 = await Promise.all(
    models.map((m) => createSession(m, { graphOptimizationLevel: 'all' })),
  );
  try {
    for (const batch of BATCHES) {
      const feeds = await gatherBatch(
        calibration,
        Array.from({ length: batch }, (_, i) => i),
      );
      const sessions = [fp32, ...int8];
      const times = sessions.map(() => [] as number[]);
      for (let i = 0; i < 3; i++) for (const s of sessions) await s.run(feeds);
      for (let i = 0; i < repeats; i++)
        for (const [k, s] of sessions.entries()) {
          const t0 = performance.now();
          await s.run(feeds);
          times[k]!.push(performance.now() - t0);
        }
      const f = median(times[0]!);
      for (const k of TARGETS.keys()) {
        const q = median(times[k + 1]!);
        rows[base + k]!.timing[batch] = {
          fp32Ms: Math.round(f * 1000) / 1000,
          int8Ms: Math.round(q * 1000) / 1000,
          speedup: Math.round((f / q) * 100) / 100,
        };
      }
    }
  } finally {
    for (const s of [fp32, ...int8]) await s.release();
  }
}

const pts = (x: number | null) => (x === null ? 'n/a' : x.toFixed(2));
const md = [
  `# Dynamic vs static quantization on onnxruntime-web`,
  '',
  `\`npx tsx bench/dynamic.ts${values.tasks ? ` --tasks ${values.tasks}` : ''} --repeats ${repeats}\`, commit ${started.commit}, started ${started.date}; ${machineText()} at the end.`,
  '',
  "Each task's default template; INT8 metric on the full evaluation split. Timing: median of",
  `${repeats} interleaved runs per model, graph optimization 'all', one thread.`,
  '',
  '| task | target | FP32 | INT8 | loss (est.) | bias corr. | batch 1: FP32 / INT8 ms (speed-up) | batch 25: FP32 / INT8 ms (speed-up) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.task} ${r.metric} | ${r.target} | ${r.fp32.toFixed(4)} | ${r.int8.toFixed(4)} | ${pts(r.lossPoints)} (${pts(r.estimatedLossPoints)}) | ${r.biasCorrection ? 'on' : 'off'} | ${BATCHES.map((b) => `${r.timing[b]!.fp32Ms} / ${r.timing[b]!.int8Ms} (${r.timing[b]!.speedup})`).join(' | ')} |`,
  ),
  '',
];
await writeFile(`${out}.md`, md.join('\n'));
await writeFile(
  `${out}.json`,
  `${JSON.stringify({ ...started, machine: machineText(), repeats, rows }, null, 1)}\n`,
);
process.stdout.write(md.join('\n'));
