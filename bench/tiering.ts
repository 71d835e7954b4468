/**
 * A/B of V8's WebAssembly tier-up budget (cli/runtime-node.ts, WASM_TIERING_BUDGET) on warm
 * `cann-quant score` runs, 1 thread and N worker_threads, the budgets interleaved in every
 * repetition (order reversed in odd repetitions) so that machine load hits them alike.
 *
 *   npx tsx bench/tiering.ts [--task fmnist-resnet] [--reps 3] [--workers 2]
 *     [--budgets v8,180000000] [--out file.md] [--json file.json]
 *
 * Each run is `node cli/bin.js score --task <id> --target ascend310 --no-reproduce --no-measure
 * --json [--workers N]` with CANN_QUANT_WASM_TIERING_BUDGET set; all runs share one cache that a
 * first, unreported cold run of each mode fills, so every reported run is warm (the FP32 reference pass read from
 * the cache). A budget changes when V8 optimizes, never what the code computes: the outputs
 * must be the same in every run, and the report says whether they were.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TASKS } from '../zoo/registry.ts';
import {
  type CliRun,
  cliTime,
  fmt,
  machine,
  median,
  parallelCeiling,
  scoreArgs,
  table,
  uptime,
} from './lib.ts';

const { values } = parseArgs({
  options: {
    task: { type: 'string', default: 'fmnist-resnet' },
    reps: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    budgets: { type: 'string', default: 'v8,180000000' },
    out: { type: 'string' },
    json: { type: 'string' },
  },
});
const task = values.task!;
if (!TASKS[task]) throw new RangeError(`unknown task '${task}' (${Object.keys(TASKS).join(', ')})`);
const reps = Number(values.reps);
const nWorkers = Number(values.workers);
if (!Number.isInteger(reps) || reps < 1) throw new RangeError('--reps must be a positive integer');
if (!Number.isInteger(nWorkers) || nWorkers < 2)
  throw new RangeError('--workers must be an integer >= 2');
const budgets = values.budgets!.split(',');
const log = (s: string) => process.stderr.write(`${s}\n`);

/** What must not depend on the budget. */
const outcome = (r: CliRun) =>
  JSON.stringify([
    r.json.int8,
    r.json.parameter_sets,
    r.json.qqi,
    r.json.estimated_loss_points,
    r.json.tiers,
  ]);
const phaseSeconds = (r: CliRun, name: string) =>
  (r.json.phases as { phase: string; seconds: number }[]).find((p) => p.phase === name)?.seconds ??
  Number.NaN;
const SHOWN_PHASES = ['ranges', 'histograms', 'sensitivity', 'search', 'estimate', 'validate'];

const started = new Date().toISOString();
const before = uptime();
const modes = ['1', String(nWorkers)];
const argsOf = (mode: string) => scoreArgs(task, 'ascend310', mode);
const cache = mkdtempSync(join(tmpdir(), 'cq-tiering-cache-'));
const runs: { rep: number; budget: string; mode: string; run: CliRun }[] = [];
const ceilings: number[] = [];
try {
  const env = (budget: string) => ({
    CANN_QUANT_CACHE_DIR: cache,
    CANN_QUANT_WASM_TIERING_BUDGET: budget,
  });
  // One cold run per mode fills the cache: the two modes cut the reference pass into different
  // shards, hence different cache entries.
  const fills = modes.map((mode) => cliTime(argsOf(mode), env(budgets[0]!)));
  log(`cache filled (cold runs, not reported): ${fills.map((r) => fmt(r.wall)).join(' s, ')} s`);
  const expected = outcome(fills[0]!);
  for (let rep = 0; rep < reps; rep++) {
    ceilings.push((await parallelCeiling(nWorkers)).ratio);
    const order = rep % 2 === 0 ? budgets : [...budgets].reverse();
    for (const budget of order)
      for (const mode of rep % 2 === 0 ? modes : [...modes].reverse()) {
        const run = cliTime(argsOf(mode), env(budget));
        runs.push({ rep, budget, mode, run });
        log(
          `rep ${rep} budget ${budget} ${mode === '1' ? '1 thread' : `${mode} workers`}: ${fmt(run.wall)} s wall, ${fmt(run.cpu)} s CPU, same=${outcome(run) === expected}; ${uptime()}`,
        );
      }
  }
  const same = runs.every((r) => outcome(r.run) === expected);

  const rows: (string | number)[][] = [];
  const ratioRows: (string | number)[][] = [];
  for (const budget of budgets) {
    const walls: Record<string, number> = {};
    for (const mode of modes) {
      const mine = runs.filter((r) => r.budget === budget && r.mode === mode).map((r) => r.run);
      walls[mode] = median(mine.map((r) => r.wall));
      rows.push([
        budget,
        mode === '1' ? '1 thread' : `${mode} workers`,
        mine.map((r) => fmt(r.wall)).join(' '),
        fmt(walls[mode]!),
        fmt(median(mine.map((r) => r.cpu))),
        ...SHOWN_PHASES.map((p) => fmt(median(mine.map((r) => phaseSeconds(r, p))), 2)),
      ]);
    }
    ratioRows.push([budget, fmt(walls['1']! / walls[String(nWorkers)]!, 2)]);
  }
  const m = machine();
  const md = [
    `# V8 WebAssembly tier-up budget: warm \`score\` of ${task}`,
    '',
    `- date: ${started}`,
    `- command: \`npx tsx bench/tiering.ts --task ${task} --reps ${reps} --workers ${nWorkers} --budgets ${values.budgets}${values.out ? ` --out ${values.out}` : ''}${values.json ? ` --json ${values.json}` : ''}\``,
    `- machine: ${m.cpu}, nproc ${m.nproc}, ${m.memGiB} GiB, Node ${m.node}`,
    `- uptime at start: \`${before}\``,
    `- uptime at end: \`${uptime()}\``,
    `- parallel ceiling before each repetition (${nWorkers} threads of a pure-JS loop over 1): ${ceilings.map((c) => fmt(c, 2)).join(', ')}`,
    `- same outputs (INT8 metric, parameter sets, QQI, estimate, tiers) in every run: ${same ? 'yes' : 'NO'}`,
    '',
    `Warm runs (FP32 reference pass from the cache), ${reps} per budget and mode, interleaved. Budget \`v8\` = V8's default (1,800,000). Medians; phase columns are the pipeline's own phase timings (seconds).`,
    '',
    table(
      ['budget', 'mode', 'wall per run (s)', 'median wall', 'median CPU', ...SHOWN_PHASES],
      rows,
    ),
    '',
    table(['budget', `1 thread / ${nWorkers} workers (medians)`], ratioRows),
    '',
  ].join('\n');
  process.stdout.write(md);
  if (values.out) writeFileSync(values.out, md);
  if (values.json)
    writeFileSync(
      values.json,
      `${JSON.stringify({ machine: m, date: started, ceilings, same, runs }, null, 1)}\n`,
    );
} finally {
  rmSync(cache, { recursive: true, force: true });
}
