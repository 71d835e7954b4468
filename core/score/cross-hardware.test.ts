import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { compareMetric } from '../evaluate/evaluate.ts';
import { TARGETS, type TargetId } from '../formats/targets.ts';
import type { PipelineResult } from '../pipeline/run.ts';
import { recipeFromTemplate } from '../recipe/templates.ts';
import { nativeScheme, runChecks } from './checks.ts';
import {
  CROSS_TARGETS,
  crossHardware,
  crossHardwareEvidence,
  crossHardwareTable,
  recipeForTarget,
} from './cross-hardware.ts';

const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');

/** A validated run of smoke-fmnist on a target with a given INT8 top-1 (FP32 0.885). */
const fakeRun = (target: TargetId, int8: number) =>
  ({
    task: 'smoke-fmnist',
    target,
    recipe: { ...recipe, target },
    layers: [],
    skipped: [],
    methods: {},
    evaluation: {
      fp32: { top1: 0.885 },
      int8: { top1: int8 },
      comparison: compareMetric('top1', { top1: 0.885 }, { top1: int8 }),
      samples: 1000,
    },
  }) as unknown as PipelineResult;

describe('cross-hardware table', () => {
  beforeAll(() => useNodeRuntime());

  it('ports the reference methods to cpu-wasm and leaves other targets re-measured', () => {
    const methods = {
      a: { method: 'percentile' as const, percentile: 99.99, tier: 'high' },
      b: { method: 'mse' as const, tier: 'medium' },
    };
    const wasm = recipeForTarget(recipe, 'cpu-wasm', { methods });
    expect(wasm.sensitivity.enabled).toBe(false);
    expect(wasm.layers).toEqual({
      a: { method: 'percentile', percentile: 99.99, tier: 'high' },
      b: { method: 'mse', tier: 'medium' },
    });
    const t4 = recipeForTarget(recipe, 'nvidia-t4', { methods });
    expect(t4.sensitivity.enabled).toBe(true);
    expect(t4.layers).toEqual({});
    expect(t4.target).toBe('nvidia-t4');
  });

  it('counts targets within 0.5 points, models every target but cpu-wasm, and feeds L5.cross', async () => {
    const model = await readTaskModel(getTask('smoke-fmnist').manifest);
    // Losses in points: 0.2, 0.6, 0.0, 0.7, 0.3 -> three targets within 0.5.
    const int8 = [0.883, 0.879, 0.885, 0.878, 0.882];
    const runs = CROSS_TARGETS.map((t, i) => ({ run: fakeRun(t, int8[i]!), runId: `r-${t}` }));
    const report = await crossHardware([...runs].reverse(), model);
    expect(report.rows.map((r) => r.target)).toEqual(CROSS_TARGETS);
    expect(report.passing).toEqual(['ascend310', 'nvidia-t4', 'cpu-wasm']);
    expect(report.l5.pass).toBe(true);
    expect(report.rows.find((r) => r.target === 'cpu-wasm')?.modelled).toBeNull();
    const a310 = report.rows[0]!.modelled!;
    // No layer quantized here: INT8 model = float baseline.
    expect(a310.speedup).toBeCloseTo(1, 12);
    expect(a310.powerW).toBe(8);
    expect(a310.throughput).toBeCloseTo(1 / a310.int8LatencyS, 6);
    expect(crossHardwareTable(report)).toContain('L5.cross pass: 3 of 5');

    const checks = runChecks({
      runId: 'r-ascend310',
      task: 'smoke-fmnist',
      target: 'ascend310',
      recipe: recipe.name,
      calibration: { samples: 50, split: 'calibration', sampler: 'coverage' },
      methods: {},
      scheme: { used: nativeScheme(TARGETS.ascend310), native: nativeScheme(TARGETS.ascend310) },
      biasCorrection: true,
      crossHardware: crossHardwareEvidence(report),
    });
    const l5 = checks.find((c) => c.id === 'L5.cross')!;
    expect(l5.pass).toBe(true);
    expect(l5.value).toBe(3);
  });
});
