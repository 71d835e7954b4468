/**
 * What the pipeline's `graphOptimizationLevel: 'disabled'` costs: each zoo FP32 model on
 * onnxruntime-web at 'disabled' (the pipeline's level: the graph as written, the same bytes in
 * Node and workerd), 'basic' and 'all', timed over the same evaluation samples in interleaved
 * rounds (median), and whether the optimised session gives the same output bytes.
 *
 *   npx tsx bench/opt-levels.ts [--tasks fmnist-resnet,...] [--samples 200] [--rounds 3] [--out f.md]
 *
 * One thread, batches of DEFAULT_BATCH_SIZE, a new session per round and level (creation not
 * timed). "same bytes": every output tensor of every batch equal, bit for bit, to 'disabled'.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { DEFAULT_BATCH_SIZE } from '../core/evaluate/predict.ts';
import { createSession, type GraphOptimizationLevel } from '../core/runtime/index.ts';
import { TASKS } from '../zoo/registry.ts';
import { fmt, machine, median, table, uptime } from './lib.ts';

const { values } = parseArgs({
  options: {
    tasks: {
      type: 'string',
      default: 'fmnist-resnet,fmnist-mobilenet,fmnist-detect,spam-transformer',
    },
    samples: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'all'];
const samples = Number(values.samples);
const rounds = Number(values.rounds);
if (!(Number.isInteger(samples) && samples > 0 && Number.isInteger(rounds) && rounds > 0))
  throw new RangeError('--samples and --rounds must be positive integers');

useNodeRuntime();
const started = new Date().toISOString();
const startUptime = uptime();
const rows: (string | number)[][] = [];
for (const id of values.tasks!.split(',')) {
  const task = TASKS[id];
  if (!task) throw new RangeError(`unknown task '${id}' (${Object.keys(TASKS).join(', ')})`);
  const model = await readTaskModel(task.manifest);
  const split = await task.load(nodeDataSource(), 'evaluation');
  const n = Math.min(samples, split.size);
  const times = new Map<GraphOptimizationLevel, number[]>(LEVELS.map((l) => [l, []]));
  const bytes = new Map<GraphOptimizationLevel, Uint8Array[]>();
  for (let r = 0; r < rounds; r++)
    for (const level of LEVELS) {
      const session = await createSession(model, { graphOptimizationLevel: level });
      const outs: Uint8Array[] = [];
      const t0 = performance.now();
      for (let s = 0; s < n; s += DEFAULT_BATCH_SIZE) {
        const out = await session.run(split.batch(s, Math.min(n, s + DEFAULT_BATCH_SIZE)));
        for (const name of session.outputNames) {
          const d = out[name]!.data;
          outs.push(new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength)));
        }
      }
      times.get(level)!.push(performance.now() - t0);
      bytes.set(level, outs);
      await session.release();
    }
  const base = bytes.get('disabled')!;
  const same = (level: GraphOptimizationLevel) =>
    bytes.get(level)!.every((b, i) => Buffer.from(b).equals(Buffer.from(base[i]!)));
  const ms = (level: GraphOptimizationLevel) => median(times.get(level)!);
  rows.push([
    id,
    fmt(ms('disabled'), 0),
    fmt(ms('basic'), 0),
    fmt(ms('all'), 0),
    fmt(ms('disabled') / ms('basic'), 2),
    fmt(ms('disabled') / ms('all'), 2),
    same('basic') ? 'yes' : 'no',
    same('all') ? 'yes' : 'no',
  ]);
  console.log(JSON.stringify(rows.at(-1)));
}
const text = [
  '# onnxruntime-web graph optimisation levels, FP32 zoo models',
  '',
  `- date: ${started} (written ${new Date().toISOString()})`,
  `- command: \`npx tsx bench/opt-levels.ts --tasks ${values.tasks} --samples ${samples} --rounds ${rounds}\``,
  `- machine: ${JSON.stringify(machine())}`,
  `- uptime at start: \`${startUptime}\``,
  `- ${samples} evaluation samples in batches of ${DEFAULT_BATCH_SIZE}, median of ${rounds} interleaved rounds`,
  '',
  table(
    [
      'task',
      'disabled ms',
      'basic ms',
      'all ms',
      'speed-up basic',
      'speed-up all',
      'basic: same bytes',
      'all: same bytes',
    ],
    rows,
  ),
  '',
].join('\n');
if (values.out) writeFileSync(values.out, text);
console.log(text);
