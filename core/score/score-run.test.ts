import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { type PipelineResult, runPipeline } from '../pipeline/run.ts';
import { recipeFromTemplate } from '../recipe/templates.ts';
import { checklistLines, paramsDigest, runReport, scoreRun, tierCounts } from './score-run.ts';

describe('scoreRun / runReport (smoke-fmnist, ascend310)', () => {
  const task = getTask('smoke-fmnist');
  let model: Uint8Array;
  let run: PipelineResult;
  let calibration: Awaited<ReturnType<typeof task.load>>;
  beforeAll(async () => {
    useNodeRuntime();
    const source = nodeDataSource();
    model = await readTaskModel(task.manifest);
    calibration = await task.load(source, 'calibration');
    run = await runPipeline({
      recipe: recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
      task,
      model,
      calibration,
      evaluation: await task.load(source, 'evaluation'),
    });
  });

  it('hashes parameters with crypto.subtle exactly as node:crypto does', async () => {
    const h = createHash('sha256');
    for (const l of run.layers)
      h.update(
        JSON.stringify([
          l.name,
          l.act.scale,
          l.act.zeroPoint,
          [...l.weight.scales],
          [...l.weight.zeroPoints],
          [...l.bias],
        ]) + createHash('sha256').update(Int32Array.from(l.weight.q)).digest('hex'),
      );
    expect(await paramsDigest(run)).toBe(h.digest('hex'));
    // the integer weights are part of it (GPTQ chooses them): one weight changed, another digest
    const moved = run.layers.map((l, i) =>
      i === 0
        ? { ...l, weight: { ...l.weight, q: l.weight.q.map((v, j) => (j === 0 ? v + 1 : v)) } }
        : l,
    );
    expect(await paramsDigest({ layers: moved })).not.toBe(await paramsDigest(run));
  });

  it('scores the run: QQI factors, checks, and a second run for L1.reproducible', async () => {
    const scored = await scoreRun(run, {
      model,
      evaluationSplitSize: task.manifest.splits.evaluation.size,
      runId: 'test:smoke',
      second: run,
      calibration,
    });
    // Pinned: smoke-fmnist on ascend310 (docs/STANDARD.md section 4 example).
    expect(scored.perf.speedup).toBeCloseTo(1.056, 3);
    expect(scored.qqi.speedup).toBe(scored.perf.speedup);
    expect(scored.qqi.energyGain).toBe(scored.perf.energyGain.opEnergy);
    expect(scored.checks.find((c) => c.id === 'L1.reproducible')?.pass).toBe(true);
    expect(scored.checks.find((c) => c.id === 'L1.runs')?.value).toBe(1000);
    // L3.fidelity: every value of the 3 layers on 20 calibration samples is bit-identical.
    const fidelity = scored.checks.find((c) => c.id === 'L3.fidelity')!;
    expect(fidelity.pass).toBe(true);
    expect(scored.fidelity?.compared).toBe(20 * (8 * 28 * 28 + 8 * 14 * 14 + 10));
    expect(scored.level).toBe(3);
    const tiers = tierCounts(run);
    expect(tiers.high! + tiers.medium! + tiers.low!).toBe(3);
    expect(tiers.high).toBe(Object.values(run.methods).filter((m) => m.tier === 'high').length);

    const report = runReport(run, scored);
    // Plain JSON: survives a round trip unchanged.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    expect(report.layers.map((l) => l.name)).toEqual(run.layers.map((l) => l.name));
    expect(report.layers.every((l) => l.weight.granularity === 'per-channel')).toBe(true);
    expect(report.checks).toHaveLength(15);
    expect(report.qqi.display).toBe(scored.qqi.display);
    expect(report.perf.rows.reduce((s, r) => s + r.macs, 0)).toBe(173_264);
    expect(report.badge).toBe(`quantization | L${scored.level} · QQI ${scored.qqi.display}`);
  });
});

describe('checklistLines', () => {
  it('gives one line per level and a why for every check that did not pass', async () => {
    const { runChecks } = await import('./checks.ts');
    const { nativeScheme } = await import('./checks.ts');
    const { TARGETS } = await import('../formats/targets.ts');
    const checks = runChecks({
      runId: 'r',
      task: 't',
      target: 'ascend310',
      recipe: 'x',
      calibration: { samples: 500, split: 'calibration', sampler: 'random' },
      methods: {},
      scheme: { used: nativeScheme(TARGETS.ascend310), native: nativeScheme(TARGETS.ascend310) },
      biasCorrection: true,
    });
    const lines = checklistLines(checks);
    expect(lines.slice(0, 5).map((l) => l.slice(0, 9))).toEqual([
      '  L1 n/a ',
      '  L2 FAIL',
      '  L3 n/a ',
      '  L4 n/a ',
      '  L5 n/a ',
    ]);
    expect(lines).toContain('    x L2.samples: 500 samples is more than 100');
    expect(lines[2]).toContain('+ format native');
  });
});
