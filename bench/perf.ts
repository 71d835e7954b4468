/**
 * Performance benchmark of cann-quant (issue 8): evaluation throughput against the native
 * runtime, calibration cost, one-layer models whole vs from a shared prefix (`prefix`),
 * end-to-end `score` wall time (1 shard, N worker_threads), peak memory per shard kind. Plain repeated runs, medians, variants interleaved within each
 * repetition so that the load of a shared machine hits every variant alike: compare the ratios
 * of one run, not absolute numbers across runs.
 *
 *   npm run bench:setup                      # once: onnxruntime-node into bench/native (offline-safe)
 *   npm run bench -- [--sections eval,calib,prefix,fidelity,score,memory] [--tasks a,b] [--reps 5] [--rounds 3]
 *     [--workers 2] [--out bench/RESULTS.md]
 *
 * Writes bench/RESULTS.md (--out) and the raw numbers to bench/results/perf.json (--json). Not
 * part of `npm test`.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeDataSource } from '../cli/data-source.ts';
import { loadPipelineInputs } from '../cli/inputs.ts';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { runOnWorkers, type ShardStats, SPLIT_SHARDS_PER_WORKER } from '../cli/workers.ts';
import { readTaskModel } from '../cli/zoo-files.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { measureOneLayerModels } from '../core/calibrate/sensitivity.ts';
import { DEFAULT_BATCH_SIZE } from '../core/evaluate/predict.ts';
import { getTarget } from '../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../core/onnx/index.ts';
import { REFERENCE_RANGE } from '../core/pipeline/reference.ts';
import { runPipeline } from '../core/pipeline/run.ts';
import { buildEmulationModel, type EmulationOptions } from '../core/quantize/emulation.ts';
import { quantizeModel } from '../core/quantize/quantize.ts';
import { DEFAULT_TEMPLATE_BY_KIND, recipeFromTemplate } from '../core/recipe/templates.ts';
import { createSession, runtimeCounters } from '../core/runtime/index.ts';
import { checkFidelity } from '../core/score/fidelity.ts';
import type { TensorData } from '../core/tensor/index.ts';
import { TASKS } from '../zoo/registry.ts';
import {
  type CliRun,
  cliTime,
  fmt,
  load1,
  loadOrtNode,
  MiB,
  machine,
  median,
  ortFeeds,
  parallelCeiling,
  quantizedOnSpread,
  scoreArgs,
  table,
  uptime,
} from './lib.ts';

const { values } = parseArgs({
  options: {
    sections: { type: 'string', default: 'eval,calib,score,memory' },
    tasks: { type: 'string' },
    reps: { type: 'string', default: '5' },
    samples: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: 'bench/RESULTS.md' },
    json: { type: 'string', default: 'bench/results/perf.json' },
  },
});
const sections = new Set(values.sections!.split(','));
const taskIds = values.tasks ? values.tasks.split(',') : Object.keys(TASKS);
const reps = Number(values.reps);
const evalSamples = Number(values.samples);
const nWorkers = Number(values.workers);
const rounds = Number(values.rounds);
const target = getTarget('ascend310');
useNodeRuntime();
const started = new Date();
const md: string[] = [];
const raw: Record<string, unknown> = { machine: machine(), date: started.toISOString() };
const log = (s: string) => process.stderr.write(`${s}\n`);

// ------------------------------------------------------------------------------------------
// 1. evaluation throughput
/** Emulation-graph variants timed side by side (EmulationOptions switch the lowering). */
const EMU_VARIANTS: { name: string; options: EmulationOptions }[] = [
  {
    name: 'int8-emu, previous graph (fast: false, clamps kept)',
    options: { fast: false, absorbClamps: false },
  },
  { name: 'int8-emu, clamps kept', options: { absorbClamps: false } },
  { name: 'int8-emu', options: {} },
];

async function evalSection() {
  const ortNode = loadOrtNode();
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const id of taskIds) {
    const task = TASKS[id]!;
    const bytes = await readTaskModel(task.manifest);
    const source = nodeDataSource();
    const evalSplit = await task.load(source, 'evaluation');
    const calib = await task.load(source, 'calibration');
    const n = Math.min(evalSplit.size, evalSamples);
    const batches: Record<string, TensorData>[] = [];
    for (let s = 0; s < n; s += DEFAULT_BATCH_SIZE)
      batches.push(await evalSplit.batch(s, Math.min(n, s + DEFAULT_BATCH_SIZE)));
    const q = await quantizeModel(decodeModel(bytes), calib, {
      target,
      samples: { indices: spreadIndices(calib.size, 50) },
    });
    type Variant = { name: string; run: () => Promise<void>; release: () => Promise<void> };
    const variants: Variant[] = [];
    const web = async (name: string, model: Uint8Array, level: 'disabled' | 'all' = 'disabled') => {
      const s = await createSession(model, { graphOptimizationLevel: level });
      variants.push({
        name,
        run: async () => {
          for (const b of batches) await s.run(b);
        },
        release: () => s.release(),
      });
    };
    await web('web-fp32', bytes);
    // What ORT's own graph optimisation (Conv+BN folding, Conv+activation fusion) would give the
    // FP32 model; the pipeline runs every graph as written.
    await web('web-fp32 (opt all)', bytes, 'all');
    const emuPreds: string[] = [];
    for (const v of EMU_VARIANTS) {
      const emu = encodeModel(buildEmulationModel(q.prepared, q.layers, target, v.options));
      await web(v.name, emu);
      // bit-identity of the variants on the first batch
      const s = await createSession(emu);
      const out = await s.run(batches[0]!);
      await s.release();
      emuPreds.push(
        Buffer.from(
          Object.values(out)
            .map((t) =>
              Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex'),
            )
            .join(),
        ).toString('base64'),
      );
    }
    const emuIdentical = emuPreds.every((p) => p === emuPreds[0]);
    if (ortNode) {
      for (const level of ['all', 'disabled'] as const) {
        const s = await ortNode.InferenceSession.create(bytes, {
          executionProviders: ['cpu'],
          intraOpNumThreads: 1,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: level,
        });
        const feeds = batches.map((b) => ortFeeds(ortNode.Tensor, b));
        variants.push({
          name: `node-fp32 (opt ${level})`,
          run: async () => {
            for (const f of feeds) await s.run(f);
          },
          release: () => s.release(),
        });
      }
    }
    for (const v of variants) await v.run(); // warm-up
    const times: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
    const loads: number[] = [];
    for (let r = 0; r < reps; r++) {
      // Alternate the order (forward, then backward) so that drift within a repetition hits every
      // variant alike (in a fixed order, two identical spam-transformer graphs came out 21 % apart).
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
        const t0 = performance.now();
        await v.run();
        times[v.name]!.push((performance.now() - t0) / 1000);
      }
      loads.push(load1());
    }
    for (const v of variants) await v.release();
    const sps = Object.fromEntries(variants.map((v) => [v.name, n / median(times[v.name]!)]));
    const fp32 = sps['web-fp32']!;
    const nodeAll = sps['node-fp32 (opt all)'] ?? Number.NaN;
    const nodeDis = sps['node-fp32 (opt disabled)'] ?? Number.NaN;
    for (const v of variants) {
      rows.push([
        id,
        v.name,
        fmt(sps[v.name]!, 0),
        fmt(sps[v.name]! / fp32, 2),
        v.name === 'web-fp32' ? `${fmt(nodeAll / fp32, 2)} / ${fmt(nodeDis / fp32, 2)}` : '',
      ]);
    }
    results.push({ task: id, samples: n, reps, samplesPerSecond: sps, times, loads, emuIdentical });
    log(`eval ${id}: ${JSON.stringify(sps)} identical=${emuIdentical}`);
    if (!emuIdentical) throw new Error(`${id}: emulation variants disagree`);
  }
  raw.eval = results;
  md.push(
    '## Evaluation throughput (samples/s, median)',
    '',
    `First ${evalSamples} evaluation samples (or the whole split if smaller) in batches of ${DEFAULT_BATCH_SIZE} (the pipeline's), ${reps} repetitions, variants interleaved in each repetition (forward order in even repetitions, backward in odd ones); one thread everywhere. INT8 = ascend310 emulation graph (50 spread calibration samples, default options), ORT-web graph optimisation disabled as the pipeline runs it; "web-fp32 (opt all)" is the FP32 model with ORT's full graph optimisation (Conv+BN folding, fusions), for comparison only. The emulation variants' outputs were checked bit-identical on the first batch. Last column: node / web FP32 throughput (native with full graph optimisation / with none).`,
    '',
    table(['task', 'runtime', 'samples/s', 'x web-fp32', 'node/web (opt all / none)'], rows),
    '',
  );
}

// ------------------------------------------------------------------------------------------
// 2. calibration cost: sensitivity + calibration (+ bias, estimate) with 50 samples
async function calibSection() {
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const id of taskIds) {
    const base = recipeFromTemplate(
      DEFAULT_TEMPLATE_BY_KIND[TASKS[id]!.manifest.kind] ?? 'industrial-vision',
      id,
      target.id,
    );
    const recipe = {
      ...base,
      calibration: { ...base.calibration, samples: 50 },
      sensitivity: { ...base.sensitivity, enabled: true },
    };
    const inputs = await loadPipelineInputs(recipe, false);
    const perPhase: Record<string, { runs: number; samples: number; sessions: number }> = {};
    const c0 = runtimeCounters();
    const t0 = performance.now();
    const r = await runPipeline(inputs, {
      validate: false,
      executor: async (phase, ins, run) => {
        const a = runtimeCounters();
        const out = [];
        for (const [i, x] of ins.entries()) out.push(await run(x, i));
        const b = runtimeCounters();
        perPhase[phase] = {
          runs: b.runs - a.runs,
          samples: b.samples - a.samples,
          sessions: b.sessions - a.sessions,
        };
        return out;
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const c1 = runtimeCounters();
    for (const p of r.phases) {
      const c = perPhase[p.phase]!;
      rows.push([id, p.phase, fmt(p.seconds, 2), c.sessions, c.runs, c.samples]);
    }
    rows.push([
      id,
      '**total** (incl. pure steps)',
      fmt(seconds, 2),
      c1.sessions - c0.sessions,
      c1.runs - c0.runs,
      c1.samples - c0.samples,
    ]);
    results.push({
      task: id,
      seconds,
      phases: r.phases,
      perPhase,
      layers: r.layers.length,
      load: uptime(),
    });
    log(
      `calib ${id}: ${JSON.stringify({ seconds, phases: r.phases, perPhase, total: { sessions: c1.sessions - c0.sessions, runs: c1.runs - c0.runs, samples: c1.samples - c0.samples } })} ${uptime()}`,
    );
  }
  raw.calib = results;
  md.push(
    '## Calibration cost (50 samples, sensitivity on, no evaluation)',
    '',
    "`runPipeline(validate: false)` in process, 1 shard, the task's default template with `calibration.samples = 50`. Model executions counted by core/runtime (`runtimeCounters`): sessions created, `run` calls, samples through a model.",
    '',
    table(['task', 'phase', 'seconds', 'sessions', 'runs', 'samples run'], rows),
    '',
  );
}

// ------------------------------------------------------------------------------------------
// 2b. one-layer models with and without the shared prefix (core/calibrate/prefix.ts)
/**
 * The sensitivity pass's work (every quantizable layer's one-layer model against the all-float
 * emulation, 50 spread calibration samples, batches of 25) timed both ways, interleaved: each
 * one-layer model run whole, and the shared-prefix walk. The results must be the same bytes.
 */
async function prefixSection() {
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const id of taskIds) {
    const task = TASKS[id]!;
    const { calib, indices, q } = await quantizedOnSpread(task, target);
    const times: Record<'whole' | 'shared', number[]> = { whole: [], shared: [] };
    const runs: Record<'whole' | 'shared', number[]> = { whole: [], shared: [] };
    const bytes: Record<string, string> = {};
    for (let r = 0; r < reps; r++) {
      const modes = r % 2 === 0 ? (['whole', 'shared'] as const) : (['shared', 'whole'] as const);
      for (const mode of modes) {
        const c0 = runtimeCounters();
        const t0 = performance.now();
        const out = await measureOneLayerModels(
          q.prepared,
          q.layers,
          target,
          calib,
          { indices, batchSize: 25 },
          {
            floatPath: false,
            sharedPrefix: mode === 'shared',
            predict: (o, k) => task.predict(o, k),
          },
        );
        times[mode].push((performance.now() - t0) / 1000);
        runs[mode].push(runtimeCounters().sessions - c0.sessions);
        bytes[mode] = JSON.stringify(out);
      }
    }
    const identical = bytes.whole === bytes.shared;
    if (!identical) throw new Error(`${id}: shared-prefix results differ from whole-model results`);
    const whole = median(times.whole);
    const shared = median(times.shared);
    rows.push([
      id,
      q.layers.length,
      fmt(whole, 2),
      fmt(shared, 2),
      fmt(whole / shared, 2),
      `${runs.whole[0]} / ${runs.shared[0]}`,
      identical ? 'yes' : 'NO',
    ]);
    results.push({
      task: id,
      layers: q.layers.length,
      times,
      sessions: runs,
      identical,
      load: uptime(),
    });
    log(
      `prefix ${id}: whole ${fmt(whole, 2)} s, shared ${fmt(shared, 2)} s, identical ${identical}`,
    );
  }
  raw.prefix = results;
  md.push(
    '## One-layer models: whole vs shared prefix (the sensitivity pass)',
    '',
    `Every quantizable layer's one-layer model against the all-float emulation (ascend310, 50 spread calibration samples, batches of 25), \`measureOneLayerModels\` with \`sharedPrefix\` false (each model run whole) and true (core/calibrate/prefix.ts: the reference walked once, each model run from its layer on), ${reps} repetitions interleaved, median; one thread. "identical": the two results compared as JSON.`,
    '',
    table(
      [
        'task',
        'layers',
        'whole s',
        'shared s',
        'speed-up',
        'sessions (whole / shared)',
        'identical',
      ],
      rows,
    ),
    '',
  );
}

// ------------------------------------------------------------------------------------------
// 3. end-to-end `cann-quant score`
/** One round of the score section: the ceiling and the four wall times with their ratios. */
interface RoundTiming {
  ceiling: number;
  oneCold: number;
  manyCold: number;
  coldRatio: number;
  oneWarm: number;
  manyWarm: number;
  warmRatio: number;
}

/** The table cells from `ceiling` to `warm ratio`. */
function timingCells(t: RoundTiming): string[] {
  return [
    fmt(t.ceiling, 2),
    fmt(t.oneCold, 1),
    fmt(t.manyCold, 1),
    fmt(t.coldRatio, 2),
    fmt(t.oneWarm, 1),
    fmt(t.manyWarm, 1),
    fmt(t.warmRatio, 2),
  ];
}

/**
 * Rounds of: the parallel ceiling of this machine, then 1 thread and N workers (the order
 * alternating between rounds), each cold (an empty shared cache of its own: the FP32 reference
 * pass computed) and warm (the same cache again: the reference pass read from it). The ceiling
 * says what N threads can give at that moment on a shared machine, so the ratios of a round
 * are read against it.
 */
async function scoreSection() {
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  const summary: (string | number)[][] = [];
  for (const id of taskIds) {
    const perRound: RoundTiming[] = [];
    for (let round = 1; round <= rounds; round++) {
      const ceiling = await parallelCeiling(nWorkers);
      const modes = round % 2 === 1 ? ['1', String(nWorkers)] : [String(nWorkers), '1'];
      const runs: Record<string, { cold: CliRun; warm: CliRun }> = {};
      for (const mode of modes) {
        const cache = mkdtempSync(join(tmpdir(), 'cq-bench-cache-'));
        const args = scoreArgs(id, target.id, mode);
        try {
          const env = { CANN_QUANT_CACHE_DIR: cache };
          const cold = cliTime(args, env);
          const warm = cliTime(args, env);
          runs[mode] = { cold, warm };
          log(
            `score ${id} round ${round} ${mode === '1' ? '1 thread' : `${mode} workers`}: cold ${fmt(cold.wall)} s ${JSON.stringify(cold.json.phases)}; warm ${fmt(warm.wall)} s ${JSON.stringify(warm.json.phases)}; ${uptime()}`,
          );
        } finally {
          rmSync(cache, { recursive: true, force: true });
        }
      }
      const one = runs['1']!;
      const many = runs[String(nWorkers)]!;
      const same = [one.cold, one.warm, many.cold, many.warm].every(
        (r) =>
          JSON.stringify(r.json.int8) === JSON.stringify(one.cold.json.int8) &&
          r.json.parameter_sets === one.cold.json.parameter_sets,
      );
      const t: RoundTiming = {
        ceiling: ceiling.ratio,
        oneCold: one.cold.wall,
        manyCold: many.cold.wall,
        coldRatio: one.cold.wall / many.cold.wall,
        oneWarm: one.warm.wall,
        manyWarm: many.warm.wall,
        warmRatio: one.warm.wall / many.warm.wall,
      };
      perRound.push(t);
      rows.push([
        id,
        `${round} (${modes.map((m) => (m === '1' ? '1' : `${m}w`)).join(', ')})`,
        ...timingCells(t),
        same ? 'yes' : 'NO',
        uptime().replace(/.*load average: /, ''),
      ]);
      results.push({ task: id, round, order: modes, ceiling, runs, same });
    }
    // each field (ratios included) the median of its per-round values
    const med = Object.fromEntries(
      Object.keys(perRound[0]!).map((k) => [
        k,
        median(perRound.map((t) => t[k as keyof RoundTiming])),
      ]),
    ) as unknown as RoundTiming;
    summary.push([id, rounds, ...timingCells(med)]);
  }
  raw.score = results;
  const w = `${nWorkers}w`;
  // the columns of timingCells
  const timingHead = [
    'ceiling',
    '1 cold',
    `${w} cold`,
    'cold ratio',
    '1 warm',
    `${w} warm`,
    'warm ratio',
  ];
  md.push(
    '## End-to-end `cann-quant score` (wall seconds)',
    '',
    `\`node cli/bin.js score --task <id> --target ${target.id} --no-reproduce --no-measure --json\` with \`--workers 1\` (in process: 1 thread, 1 shard per phase) and with \`--workers ${nWorkers}\` (${nWorkers} worker_threads; ${nWorkers} shards per phase, ${nWorkers * SPLIT_SHARDS_PER_WORKER} validation ranges; the FP32 reference pass in ranges of ${REFERENCE_RANGE} samples). Per round: the parallel ceiling, then both modes in alternating order, each cold (its own empty shared cache: the FP32 reference pass runs) and then warm (the reference pass read from that cache). "ceiling" = throughput of ${nWorkers} worker_threads running the same pure-JS loop at once over 1 running it alone, measured just before the round: what ${nWorkers} threads could give at that moment. "same" = every run of the round gave the same INT8 metric and (scale, zero-point) set count.`,
    '',
    table(['task', 'round (order)', ...timingHead, 'same', 'load after'], rows),
    '',
    'Medians over the rounds (each ratio is the median of the per-round ratios):',
    '',
    table(['task', 'rounds', ...timingHead], summary),
    '',
  );
}

// ------------------------------------------------------------------------------------------
// 4. peak memory per shard kind
async function memorySection() {
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const id of taskIds) {
    const recipe = recipeFromTemplate(
      DEFAULT_TEMPLATE_BY_KIND[TASKS[id]!.manifest.kind] ?? 'industrial-vision',
      id,
      target.id,
    );
    const shards: { phase: string; index: number; stats: ShardStats }[] = [];
    await runOnWorkers(recipe, {
      workers: 1,
      shards: 1,
      freshWorkerPerShard: true,
      liveMemory: true,
      onShard: (phase, index, stats) => {
        shards.push({ phase, index, stats });
        log(`memory ${id} ${phase}/${index}: ${JSON.stringify(stats)}`);
      },
    });
    for (const s of shards) {
      const st = s.stats;
      const total = st.wasmBytes + st.heapPeakBytes + st.externalPeakBytes;
      const above = st.externalPeakBytes - (st.externalAfterLoadBytes ?? 0);
      rows.push([
        id,
        s.phase,
        fmt(st.wasmBytes / MiB, 0),
        fmt(st.heapPeakBytes / MiB, 0),
        fmt(st.externalPeakBytes / MiB, 0),
        fmt((st.externalAfterLoadBytes ?? Number.NaN) / MiB, 0),
        fmt(total / MiB, 0),
        fmt((st.wasmBytes + st.heapPeakBytes + above) / MiB, 0),
        fmt(st.outputBytes / 1024, 0),
        fmt(st.seconds, 1),
      ]);
    }
    results.push({ task: id, shards });
    log(`memory ${id}: done`);
  }
  raw.memory = results;
  md.push(
    '## Peak memory per shard kind (1 shard per phase, each shard in a fresh worker thread)',
    '',
    'Each shard runs alone in a new worker_thread (cli/workers.ts, `freshWorkerPerShard`): the worker loads the task, replays the pipeline with the finished phases served from the cache, executes the shard and reports: **wasm** = size of the WebAssembly memory of onnxruntime-web in that worker after the shard (linear memory only grows, so this is its peak); **heap** = peak V8 heap in use and **external** = peak V8 external memory (array buffers: model bytes, tensors, a user model\'s data; a zoo task\'s dataset files are shared from the main thread and not counted), both live: sampled after two full garbage collections, after every model execution and at the end (`liveMemory`). "sum" is what one isolate holds at most; "sum without the adapter data" leaves out the external memory held after loading (the Node adapter reads whole files, which the Worker reads as chunks from R2). "output" is the encoded output of the shard (a shard output may take 1 MiB); with 1 shard per phase the sample-range phases run ranges of at most 500 samples, fewer where a task bounds its predictions (fmnist-detect: 290 canvases).',
    '',
    table(
      [
        'task',
        'phase',
        'wasm MiB',
        'heap MiB',
        'external MiB',
        'external after load MiB',
        'sum MiB',
        'sum without the adapter data MiB',
        'output KiB',
        'seconds',
      ],
      rows,
    ),
    '',
  );
}

// ------------------------------------------------------------------------------------------
// 5. scaling: time and memory vs samples and model size (random-weight ResNets, not in CI)
function scalingSection() {
  const configs: [string, number][] = [
    ['zoo:fmnist-resnet', 25],
    ['zoo:fmnist-resnet', 50],
    ['zoo:fmnist-resnet', 100],
    ['bench/.cache/resnet18-32.onnx', 25],
    ['bench/.cache/resnet18-32.onnx', 50],
    ['bench/.cache/resnet50-32.onnx', 25],
  ];
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const [model, n] of configs) {
    if (!model.startsWith('zoo:') && !existsSync(model)) {
      log(`scaling: ${model} missing (run /usr/bin/python3 bench/make-resnets.py)`);
      continue;
    }
    const r = spawnSync('npx', ['tsx', 'bench/scaling-child.ts', model, String(n)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) {
      log(`scaling ${model} ${n} failed: ${r.stderr.slice(-2000)}`);
      rows.push([model, n, 'failed', '', '', '', '', '', '', '']);
      continue;
    }
    const m = JSON.parse(line) as Record<string, number>;
    results.push({ ...m, load: uptime() });
    rows.push([
      model.replace('bench/.cache/', '').replace('zoo:', ''),
      n,
      fmt(m.modelMiB!, 1),
      fmt(m.createSec!, 1),
      fmt(m.wasmAfterCreateMiB!, 0),
      fmt(m.fp32SamplesPerSec!, 1),
      fmt(m.calibrateSec!, 1),
      fmt(m.emuSamplesPerSec!, 1),
      fmt(m.wasmPeakMiB!, 0),
      fmt(m.maxRssMiB!, 0),
    ]);
    log(`scaling ${model} ${n}: ${line}`);
  }
  raw.scaling = results;
  md.push(
    '## Scaling with samples and model size',
    '',
    "Each row is a fresh process (`npx tsx bench/scaling-child.ts <model> <samples>`): FP32 session creation and throughput (batch 10), then `quantizeModel` for ascend310 (ranges, histograms, percentile 99.99, bias correction) over N calibration samples, then the emulation model's throughput (batch 10). ResNet-18 / ResNet-50 are torchvision models with random weights, 10 classes, 3x32x32 input (`/usr/bin/python3 bench/make-resnets.py`, Debian PyTorch, not in CI) fed seeded random images; fmnist-resnet is the zoo model on its calibration split. wasm = size of ORT's WebAssembly memory (it only grows), RSS = the process's max resident set (Node itself included).",
    '',
    table(
      [
        'model',
        'samples',
        'ONNX MiB',
        'create s',
        'wasm after create MiB',
        'FP32 samples/s',
        'calibrate s',
        'INT8-emu samples/s',
        'wasm peak MiB',
        'max RSS MiB',
      ],
      rows,
    ),
    '',
  );
}

// ------------------------------------------------------------------------------------------
// 2c. the fidelity check (L3): the emulation model against the scalar reference kernels
/**
 * `checkFidelity` (core/score/fidelity.ts) on each task's ascend310 emulation graph (50 spread
 * calibration samples): the 20-sample check set through the emulation model, then every quantized
 * layer through the scalar reference (AscendQuant, conv2dInt8 / gemmInt8, AscendDequant). One
 * thread; the first run warms up and is not counted.
 */
async function fidelitySection() {
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const id of taskIds) {
    const { calib, q } = await quantizedOnSpread(TASKS[id]!, target);
    const emulation = buildEmulationModel(q.prepared, q.layers, target);
    const run = { target: target.id, layers: q.layers, emulation };
    await checkFidelity(run, calib);
    const times: number[] = [];
    let report: Awaited<ReturnType<typeof checkFidelity>> = null;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      report = await checkFidelity(run, calib);
      times.push((performance.now() - t0) / 1000);
    }
    rows.push([
      id,
      q.layers.length,
      report?.compared ?? 0,
      report?.bitExact ? 'yes' : 'NO',
      fmt(median(times), 2),
    ]);
    results.push({ task: id, times, compared: report?.compared, bitExact: report?.bitExact });
    log(`fidelity ${id}: ${fmt(median(times), 2)} s, bit-exact ${report?.bitExact}`);
  }
  raw.fidelity = results;
  md.push(
    '## The fidelity check (L3), one thread',
    '',
    `\`checkFidelity\` on the ascend310 emulation graph (50 spread calibration samples): the 20-sample check set, every quantized layer against the scalar reference kernels; median of ${reps} runs after one warm-up run.`,
    '',
    table(['task', 'layers', 'values compared', 'bit-exact', 'seconds'], rows),
    '',
  );
}

// ------------------------------------------------------------------------------------------
if (sections.has('eval')) await evalSection();
flush();
if (sections.has('calib')) await calibSection();
flush();
if (sections.has('prefix')) await prefixSection();
flush();
if (sections.has('fidelity')) await fidelitySection();
flush();
if (sections.has('score')) await scoreSection();
flush();
if (sections.has('memory')) await memorySection();
flush();
if (sections.has('scaling')) scalingSection();
flush();
log(`wrote ${values.out}`);

/** Writes RESULTS.md and the JSON with what is measured so far (called after every section). */
function flush(): void {
  const m = raw.machine as ReturnType<typeof machine>;
  const head = [
    '# cann-quant performance benchmark',
    '',
    `- date: ${started.toISOString()} (written ${new Date().toISOString()})`,
    `- command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``,
    `- machine: ${m.cpu}, nproc ${m.nproc}, ${m.memGiB} GiB, Node ${m.node}, onnxruntime-web 1.30.0, onnxruntime-node ${loadOrtNode() ? '1.30.0' : 'not installed (npm run bench:setup)'}`,
    `- uptime at start: \`${m.uptime}\``,
    `- uptime when written: \`${uptime()}\``,
    '',
    'The machine is shared: absolute numbers move with the load of other processes; ratios of one run (variants interleaved) are the comparable figures.',
    '',
  ];
  writeFileSync(values.out!, `${[...head, ...md].join('\n')}\n`);
  writeFileSync(values.json!, `${JSON.stringify(raw, null, 1)}\n`);
}
