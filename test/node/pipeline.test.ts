/**
 * Shard invariance of the whole pipeline: the same recipe run with 1, 2 (with 5 reference and
 * validation ranges per split) and 7 shards, the shards of each phase executed in reverse
 * order, gives identical samples, scales, zero points, int32 biases, emulation model bytes and
 * metrics.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { loadRecipeInputs } from '../../cli/workers.ts';
import { encodeModel } from '../../core/onnx/index.ts';
import { runByReplay } from '../../core/pipeline/replay.ts';
import { type PipelineResult, runPipeline, type ShardExecutor } from '../../core/pipeline/run.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';

const reverseExecutor: ShardExecutor = async (_phase, inputs, run) => {
  const out = new Array(inputs.length);
  for (let i = inputs.length - 1; i >= 0; i--) out[i] = await run(inputs[i]!, i);
  return out;
};

const fingerprint = (r: PipelineResult) =>
  createHash('sha256')
    .update(
      JSON.stringify({
        samples: r.calibration.samples,
        layers: r.layers.map((l) => ({
          act: l.act,
          scales: [...l.weight.scales],
          q: [...l.weight.q],
          bias: [...l.bias],
        })),
        fp32: r.evaluation?.fp32,
        int8: r.evaluation?.int8,
      }),
    )
    .update(encodeModel(r.emulation))
    .digest('hex');

beforeAll(() => useNodeRuntime());

describe('pipeline shard invariance (smoke-fmnist, ascend310)', () => {
  it('gives identical results for 1, 2 and 7 shards in any order', async () => {
    const inputs = await loadRecipeInputs(
      recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
      true,
    );
    const one = await runPipeline(inputs, { shards: 1 });
    // splitShards: more reference and validation ranges than shards of the other phases.
    const two = await runPipeline(inputs, { shards: 2, splitShards: 5 });
    const seven = await runPipeline(inputs, { shards: 7, executor: reverseExecutor });
    expect(one.phases.find((p) => p.phase === 'validate')!.shards).toBe(1);
    expect(seven.phases.find((p) => p.phase === 'validate')!.shards).toBe(7);
    expect(two.phases.find((p) => p.phase === 'validate')!.shards).toBe(5);
    expect(two.phases.find((p) => p.phase === 'reference')!.shards).toBe(10);
    expect(two.phases.find((p) => p.phase === 'sensitivity')!.shards).toBe(2);
    expect(one.calibration.samples).toHaveLength(50);
    expect(fingerprint(two)).toBe(fingerprint(one));
    expect(fingerprint(seven)).toBe(fingerprint(one));
    // FP32 reference of the 1,000-image smoke split, reproduced inside the pipeline.
    expect(one.evaluation?.fp32.top1).toBe(0.885);
    expect(one.layers).toHaveLength(3);
    // Distributed execution: every shard a separate replay whose output crossed the byte codec,
    // shards of each phase run in reverse order (as Queue consumers or worker threads would).
    const replayed = await runByReplay(inputs, { shards: 3 }, (n) =>
      Array.from({ length: n }, (_, i) => n - 1 - i),
    );
    expect(fingerprint(replayed)).toBe(fingerprint(one));
  }, 600_000);
});

describe("biasCorrection 'auto' (smoke-fmnist, ascend310)", () => {
  it('keeps the candidate with the lower estimated loss: the same run as true or false', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
    expect(recipe.format.biasCorrection).toBe('auto');
    const withMode = async (mode: boolean | 'auto', shards = 1) =>
      runPipeline(
        await loadRecipeInputs(
          { ...recipe, format: { ...recipe.format, biasCorrection: mode } },
          true,
        ),
        { shards },
      );
    const auto = await withMode('auto');
    const on = await withMode(true);
    const off = await withMode(false);
    expect(on.biasCorrection).toEqual({ mode: true, applied: true });
    expect(off.biasCorrection).toEqual({ mode: false, applied: false });
    const choice = auto.biasCorrection!;
    expect(choice.mode).toBe('auto');
    // Both candidates were estimated, each exactly as its own run estimates it.
    expect(choice.estimatedLossPoints).toEqual({
      corrected: on.estimate!.lossPoints,
      uncorrected: off.estimate!.lossPoints,
    });
    expect(choice.applied).toBe(on.estimate!.lossPoints < off.estimate!.lossPoints);
    const same = choice.applied ? on : off;
    expect(fingerprint(auto)).toBe(fingerprint(same));
    expect(auto.estimate).toEqual(same.estimate);
    expect(auto.phases.map((p) => p.phase)).toContain('estimate-uncorrected');
    // Shard-invariant like every other phase.
    expect(fingerprint(await withMode('auto', 3))).toBe(fingerprint(auto));
  }, 600_000);
});
