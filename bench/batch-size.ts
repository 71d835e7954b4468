/**
 * Batch size vs time, WebAssembly memory and output bytes, per zoo model (FP32 and INT8
 * emulated for ascend310), on onnxruntime-web in this thread's configuration (1 thread, graph
 * optimisation disabled, as the pipeline runs them).
 *
 *   npx tsx bench/batch-size.ts [--tasks a,b] [--sizes 50,25,10,5] [--samples 1000] [--rounds 3]
 *
 * Each measurement is a fresh child process (ORT's WebAssembly memory only grows, so its size
 * after the run is the peak of that batch size alone): it runs the model over the first
 * `samples` evaluation samples twice and reports the second pass's time, the memory and a
 * SHA-256 of every output, sample by sample in order (the same bytes whatever the batching
 * when per-sample results do not depend on the batch). Variants are interleaved within each
 * round; the table gives medians.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeDataSource } from '../cli/data-source.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { recordWasmMemory } from '../cli/wasm-memory.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { getTarget } from '../core/formats/targets.ts';
import { encodeModel } from '../core/onnx/index.ts';
import { buildEmulationModel } from '../core/quantize/emulation.ts';
import { createSession } from '../core/runtime/index.ts';
import { TASKS } from '../zoo/registry.ts';
import { fmt, MiB, machine, median, quantizedOnSpread, table, uptime } from './lib.ts';

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    model: { type: 'string' },
    task: { type: 'string' },
    batch: { type: 'string' },
    tasks: { type: 'string' },
    sizes: { type: 'string', default: '50,25,10,5' },
    samples: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: 'bench/results/batch-size.md' },
    json: { type: 'string', default: 'bench/results/batch-size.json' },
  },
});

interface ChildResult {
  seconds: number;
  wasmMiB: number;
  sha256: string;
}

/** One measurement: `--child 1 --task id --model file --batch n --samples n`. */
async function child(): Promise<void> {
  const wasmBytes = recordWasmMemory();
  useNodeRuntime();
  const task = TASKS[values.task!]!;
  const batch = Number(values.batch);
  const split = await task.load(nodeDataSource(), 'evaluation');
  const n = Math.min(split.size, Number(values.samples));
  const session = await createSession(readFileSync(values.model!), {
    graphOptimizationLevel: 'disabled',
  });
  const pass = async (keep: boolean) => {
    const outputs: Record<string, Float32Array[]> = {};
    for (let s = 0; s < n; s += batch) {
      const out = await session.run(await split.batch(s, Math.min(n, s + batch)));
      if (!keep) continue;
      for (const [k, t] of Object.entries(out)) {
        const list = outputs[k] ?? [];
        list.push((t.data as Float32Array).slice());
        outputs[k] = list;
      }
    }
    return outputs;
  };
  await pass(false);
  const t0 = performance.now();
  const outputs = await pass(true);
  const seconds = (performance.now() - t0) / 1000;
  // Per output name (sorted), every sample's values in sample order: independent of batching.
  const hash = createHash('sha256');
  for (const k of Object.keys(outputs).sort())
    for (const d of outputs[k]!) hash.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  const result: ChildResult = {
    seconds,
    wasmMiB: wasmBytes() / MiB,
    sha256: hash.digest('hex'),
  };
  process.stdout.write(JSON.stringify(result));
}

async function main(): Promise<void> {
  useNodeRuntime();
  const taskIds = values.tasks ? values.tasks.split(',') : Object.keys(TASKS);
  const sizes = values.sizes!.split(',').map(Number);
  const rounds = Number(values.rounds);
  const samples = Number(values.samples);
  const target = getTarget('ascend310');
  const dir = mkdtempSync(join(tmpdir(), 'cq-batch-'));
  const started = new Date().toISOString();
  const startUptime = uptime();
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  try {
    for (const id of taskIds) {
      const task = TASKS[id]!;
      const { q } = await quantizedOnSpread(task, target);
      const models = {
        fp32: join(dir, `${id}.fp32.onnx`),
        int8: join(dir, `${id}.int8.onnx`),
      };
      writeFileSync(models.fp32, await readTaskModel(task.manifest));
      writeFileSync(models.int8, encodeModel(buildEmulationModel(q.prepared, q.layers, target)));
      for (const kind of ['fp32', 'int8'] as const) {
        const runs = new Map<number, ChildResult[]>(sizes.map((b) => [b, []]));
        for (let r = 0; r < rounds; r++) {
          const order = r % 2 === 0 ? sizes : [...sizes].reverse();
          for (const b of order) {
            const out = execFileSync(
              process.execPath,
              [
                '--import',
                'tsx',
                'bench/batch-size.ts',
                '--child',
                '1',
                '--task',
                id,
                '--model',
                models[kind],
                '--batch',
                String(b),
                '--samples',
                String(samples),
              ],
              { encoding: 'utf8', maxBuffer: 1 << 20 },
            );
            runs.get(b)!.push(JSON.parse(out) as ChildResult);
            console.error(`${id} ${kind} batch ${b} round ${r}: ${out}`);
          }
        }
        const base = median(runs.get(sizes[0]!)!.map((x) => x.seconds));
        const hashes = new Set([...runs.values()].flat().map((x) => x.sha256));
        for (const b of sizes) {
          const xs = runs.get(b)!;
          const s = median(xs.map((x) => x.seconds));
          rows.push([
            id,
            kind,
            b,
            fmt((samples / s) | 0, 0),
            fmt(base / s, 2),
            fmt(Math.max(...xs.map((x) => x.wasmMiB)), 1),
            xs[0]!.sha256.slice(0, 12),
            hashes.size === 1 ? 'yes' : 'NO',
          ]);
        }
        results.push({
          task: id,
          kind,
          samples,
          sameBytes: hashes.size === 1,
          runs: Object.fromEntries(runs),
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const md = [
    '# Batch size: time, WebAssembly memory and output bytes',
    '',
    `- date: ${started}`,
    `- command: \`npx tsx bench/batch-size.ts ${process.argv.slice(2).join(' ')}\``,
    `- machine: ${JSON.stringify({ ...machine(), uptime: undefined })}`,
    `- uptime at start: \`${startUptime}\``,
    `- uptime when written: \`${uptime()}\``,
    '',
    `Each cell: a fresh process runs the first ${samples} evaluation samples twice (1 thread, graph optimisation disabled) and times the second pass; median of ${rounds} rounds, batch sizes interleaved. "vs ${sizes[0]}" is the throughput ratio to batch ${sizes[0]}. wasm = size of ORT's WebAssembly memory after the run (it only grows: the peak). sha256 covers every output of every sample in sample order; the same digest for every batch size means the same bytes.`,
    '',
    table(
      [
        'task',
        'model',
        'batch',
        'samples/s',
        `vs ${sizes[0]}`,
        'wasm MiB',
        'sha256',
        'same bytes at every size',
      ],
      rows,
    ),
    '',
  ];
  writeFileSync(values.out!, md.join('\n'));
  writeFileSync(values.json!, `${JSON.stringify({ started, results }, null, 1)}\n`);
  console.error(`wrote ${values.out}, ${values.json}`);
}

if (values.child) await child();
else await main();
