/**
 * Where a zoo model's time goes in onnxruntime-web: kernel time per operator type (and the
 * slowest nodes), from ORT's own profiler, for the FP32 model as written and for its ascend310
 * emulation graph (the one validation runs).
 *
 *   npx tsx bench/op-profile.ts --task fmnist-mobilenet [--batches 20] [--top 10] [--layer <prefix>]
 *
 * Input: the first `--batches` x 50 evaluation samples, two passes over both models (the first
 * lets V8 tier up the WASM kernels), the second reported. One thread, graph optimisation disabled,
 * as the pipeline runs it. The emulation graph is the perf benchmark's (50 spread calibration
 * samples, default options). Kernel times exclude the copies in and out of WASM.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-web';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { getTarget } from '../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../core/onnx/index.ts';
import { buildEmulationModel } from '../core/quantize/emulation.ts';
import { quantizeModel } from '../core/quantize/quantize.ts';
import { getRuntimeInfo } from '../core/runtime/index.ts';
import type { TensorData } from '../core/tensor/index.ts';
import { TASKS } from '../zoo/registry.ts';
import { machine, ortFeeds, table } from './lib.ts';

const { values } = parseArgs({
  options: {
    task: { type: 'string', default: 'fmnist-mobilenet' },
    batches: { type: 'string', default: '20' },
    top: { type: 'string', default: '10' },
    /** Also list, in execution order, every node whose name starts with this prefix. */
    layer: { type: 'string' },
  },
});
const task = TASKS[values.task!];
if (!task) throw new RangeError(`unknown task '${values.task}' (${Object.keys(TASKS).join(', ')})`);
const nBatches = Number(values.batches);
const top = Number(values.top);

// ORT is loaded and set up (local .wasm bytes, 1 thread) by core/runtime's Node loader; the
// profiled sessions use that same onnxruntime-web module directly, because the profiler is a
// session option core/runtime does not offer.
useNodeRuntime();
await getRuntimeInfo();

const source = nodeDataSource();
const evaluation = await task.load(source, 'evaluation');
const calibration = await task.load(source, 'calibration');
const fp32 = await readTaskModel(task.manifest);
const target = getTarget('ascend310');
const q = await quantizeModel(decodeModel(fp32), calibration, {
  target,
  samples: { indices: spreadIndices(calibration.size, 50) },
});
const emulation = encodeModel(buildEmulationModel(q.prepared, q.layers, target, {}));
const batches: Record<string, TensorData>[] = [];
for (let b = 0; b < nBatches && b * 50 < evaluation.size; b++)
  batches.push(await evaluation.batch(b * 50, Math.min(evaluation.size, (b + 1) * 50)));

interface ProfileEvent {
  cat?: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

/** What `f` writes to file descriptor 1 through fs.writeSync (it is not written out). */
function captureStdout(f: () => void): string {
  const original = fs.writeSync;
  const chunks: string[] = [];
  fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
    if (fd === 1 && typeof data === 'string') {
      chunks.push(data);
      return data.length;
    }
    return (original as (...a: unknown[]) => number)(fd, data, ...rest);
  }) as typeof fs.writeSync;
  try {
    f();
  } finally {
    fs.writeSync = original;
  }
  return chunks.join('');
}

/** Runs every batch once with ORT's profiler on; returns wall ms per batch and the events. */
async function profile(model: Uint8Array) {
  const s = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'disabled',
    executionMode: 'sequential',
    enableProfiling: true,
  });
  const feeds = batches.map((b) => ortFeeds(ort.Tensor, b));
  await s.run(feeds[0]!); // warm-up (also profiled; the same for both models)
  const t0 = performance.now();
  for (const f of feeds) await s.run(f);
  const ms = (performance.now() - t0) / feeds.length;
  // The WASM build prints the profile (JSON) on stdout with fs.writeSync(1, ...) when it ends.
  const text = captureStdout(() => s.endProfiling());
  await s.release();
  const start = text.indexOf('[');
  const events = JSON.parse(text.slice(start, text.lastIndexOf(']') + 1)) as ProfileEvent[];
  return { ms, events: events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')) };
}

const out: string[] = [
  `# Operator profile: ${values.task}`,
  '',
  `- command: \`npx tsx bench/op-profile.ts --task ${values.task} --batches ${nBatches} --top ${top}\``,
  `- machine: ${JSON.stringify(machine())}`,
  `- ${batches.length} batches of 50 evaluation samples (+1 warm-up batch, included in the kernel sums), second of two passes over both models`,
  '',
];
// A first pass over both models lets V8 tier the WASM kernels up (they start in its baseline
// compiler); only the second pass is reported.
for (const model of [fp32, emulation]) await profile(model);
for (const [name, model] of [
  ['FP32 (as written)', fp32],
  ['ascend310 emulation', emulation],
] as const) {
  const { ms, events } = await profile(model);
  const byOp = new Map<string, { us: number; n: number }>();
  const byNode = new Map<string, number>();
  const ops = new Map<string, string>();
  for (const e of events) {
    const op = e.args?.op_name ?? '?';
    const o = byOp.get(op) ?? { us: 0, n: 0 };
    o.us += e.dur;
    o.n++;
    byOp.set(op, o);
    byNode.set(e.name, (byNode.get(e.name) ?? 0) + e.dur);
    if (!ops.has(e.name)) ops.set(e.name, op);
  }
  const total = [...byOp.values()].reduce((s, o) => s + o.us, 0);
  const runs = batches.length + 1;
  out.push(
    `## ${name}: ${ms.toFixed(0)} ms per batch of 50 (wall), ${(total / 1000 / runs).toFixed(0)} ms in kernels`,
    '',
    table(
      ['operator', 'nodes', 'ms per batch', 'share'],
      [...byOp.entries()]
        .sort((a, b) => b[1].us - a[1].us)
        .map(([op, o]) => [
          op,
          Math.round(o.n / runs),
          (o.us / 1000 / runs).toFixed(1),
          `${((100 * o.us) / total).toFixed(1)} %`,
        ]),
    ),
    '',
    `Slowest ${top} nodes:`,
    '',
    table(
      ['node', 'ms per batch'],
      [...byNode.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([n, us]) => [n.replace(/_kernel_time$/, ''), (us / 1000 / runs).toFixed(1)]),
    ),
    '',
  );
  if (values.layer !== undefined) {
    // byNode keeps the order in which the first run executed the nodes.
    const rows = [...byNode.entries()].filter(([n]) => n.startsWith(values.layer!));
    out.push(
      `Nodes of \`${values.layer}\` in execution order:`,
      '',
      table(
        ['node', 'operator', 'ms per batch'],
        rows.map(([n, us]) => [
          n.replace(/_kernel_time$/, ''),
          ops.get(n) ?? '?',
          (us / 1000 / runs).toFixed(2),
        ]),
      ),
      '',
    );
  }
}
console.log(out.join('\n'));
