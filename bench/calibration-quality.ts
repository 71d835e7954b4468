/**
 * Issue "sensitivity-aware calibration" numbers, per zoo task on one target: the task's default
 * template (sensitivity tiers, 50 coverage-sampled calibration samples), the same recipe with 500
 * random samples, and the naive baseline; FP32 vs INT8 on the full evaluation split, with the
 * loss estimated before evaluation.
 *
 *   npx tsx bench/calibration-quality.ts [--target ascend310] [--tasks a,b] [--out bench/results/calibration-quality]
 */
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { runRecipe } from '../cli/commands/score.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { DEFAULT_TEMPLATE_BY_KIND, recipeFromTemplate } from '../core/recipe/templates.ts';
import { TASKS } from '../zoo/registry.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'ascend310' },
    tasks: { type: 'string' },
    out: { type: 'string', default: 'bench/results/calibration-quality' },
  },
});
const target = values.target!;
const taskIds = values.tasks
  ? values.tasks.split(',')
  : Object.keys(TASKS).filter((t) => t !== 'smoke-fmnist');

const rows: Record<string, unknown>[] = [];
for (const id of taskIds) {
  const template = DEFAULT_TEMPLATE_BY_KIND[TASKS[id]!.manifest.kind] ?? 'industrial-vision';
  const base = recipeFromTemplate(template, id, target);
  const variants: [string, Recipe][] = [
    [
      `${template} (50, coverage sampler)`,
      { ...base, calibration: { ...base.calibration, samples: 50, sampler: 'coverage' } },
    ],
    [
      `${template} (500, random)`,
      { ...base, calibration: { ...base.calibration, samples: 500, sampler: 'random' } },
    ],
    ['naive-baseline', recipeFromTemplate('naive-baseline', id, target)],
  ];
  for (const [name, recipe] of variants) {
    const t0 = performance.now();
    const r = await runRecipe(recipe, { progress: false });
    const c = r.evaluation!.comparison;
    const row = {
      task: id,
      target,
      recipe: name,
      metric: c.metric,
      fp32: c.fp32,
      int8: c.int8,
      loss_points: c.lossPoints,
      estimated_loss_points: r.estimate?.lossPoints ?? null,
      calibration_samples: r.calibration.samples.length,
      tiers: Object.values(r.methods).reduce<Record<string, number>>(
        (a, m) => ({ ...a, [m.tier ?? 'medium']: (a[m.tier ?? 'medium'] ?? 0) + 1 }),
        {},
      ),
      seconds: Math.round(performance.now() - t0) / 1000,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const command = `npx tsx bench/calibration-quality.ts --target ${target}${values.tasks ? ` --tasks ${values.tasks}` : ''}`;
const f = (x: unknown) => (typeof x === 'number' ? x.toFixed(2) : 'n/a');
const md = [
  `# Calibration quality on ${target}`,
  '',
  `- date: ${new Date().toISOString()}`,
  `- machine: ${machine}`,
  `- command: \`${command}\``,
  '',
  '| task | recipe | metric | FP32 | INT8 | loss (points) | estimated (points) | samples | tiers | seconds |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.task} | ${r.recipe} | ${r.metric} | ${(r.fp32 as number).toFixed(4)} | ${(r.int8 as number).toFixed(4)} | ${f(r.loss_points)} | ${f(r.estimated_loss_points)} | ${r.calibration_samples} | ${JSON.stringify(r.tiers)} | ${r.seconds} |`,
  ),
  '',
].join('\n');
await writeFile(
  `${values.out}.json`,
  `${JSON.stringify({ machine, command, date: new Date().toISOString(), rows }, null, 1)}\n`,
);
await writeFile(`${values.out}.md`, md);
console.log(md);
