/**
 * cli/workers.ts: a run on 2 worker_threads (2 shards per phase, outputs through the shard
 * codec), live (each worker runs the pipeline alongside the main thread) and by replay (a fresh
 * worker per shard), gives the same samples, scales, zero points, int32 biases, emulation model
 * bytes and metrics as the single-process run with 1 shard.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPipelineInputs } from '../../cli/inputs.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { runOnWorkers, SPLIT_SHARDS_PER_WORKER } from '../../cli/workers.ts';
import { encodeModel } from '../../core/onnx/index.ts';
import { type PipelineResult, runPipeline } from '../../core/pipeline/run.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';

const fingerprint = (r: PipelineResult) =>
  createHash('sha256')
    .update(
      JSON.stringify({
        samples: r.calibration.samples,
        sensitivity: r.sensitivity,
        estimate: r.estimate,
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
    .update(encodeModel(r.qdq))
    .digest('hex');

beforeAll(() => useNodeRuntime());

describe('worker_threads executor', () => {
  it('2 workers give the result of 1 shard in process (smoke-fmnist, ascend310)', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
    const single = await runPipeline(await loadPipelineInputs(recipe, true), { shards: 1 });
    const shards: string[] = [];
    const parallel = await runOnWorkers(recipe, {
      workers: 2,
      onShard: (phase, index, stats) => {
        shards.push(`${phase}/${index}`);
        expect(stats.wasmBytes).toBeGreaterThan(0);
      },
    });
    // every phase in 2 shards, but validation in 4 ranges per worker (splitShards) and the FP32
    // reference pass in its fixed ranges of 500 samples (1 + 2 for smoke-fmnist)
    const split = 2 * SPLIT_SHARDS_PER_WORKER;
    const expected = single.phases.map((p): [string, number] => [
      p.phase,
      p.phase === 'reference' ? 3 : p.phase === 'validate' ? split : 2,
    ]);
    expect(parallel.phases.map((p) => [p.phase, p.shards])).toEqual(expected);
    expect(shards.length).toBe(expected.reduce((n, [, k]) => n + k, 0));
    expect(fingerprint(parallel)).toBe(fingerprint(single));
  }, 600_000);

  it('a fresh worker replaying up to each shard gives the same result (smoke-fmnist, ascend310)', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
    const single = await runPipeline(await loadPipelineInputs(recipe, true), { shards: 1 });
    let shards = 0;
    const replayed = await runOnWorkers(recipe, {
      workers: 1,
      shards: 2,
      freshWorkerPerShard: true,
      onShard: () => {
        shards++;
      },
    });
    // every phase in 2 shards but the reference pass (its 3 ranges of 500 samples)
    expect(shards).toBe(2 * single.phases.length + 1);
    expect(fingerprint(replayed)).toBe(fingerprint(single));
  }, 600_000);
});
