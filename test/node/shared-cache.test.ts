/**
 * The shared-phase cache (core/pipeline/shared-cache.ts, cli/shared-store.ts): a run whose FP32
 * reference pass comes from the cache gives the same bytes as one that computed it, the
 * reference phase is then not executed at all, and a different model or split misses.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipelineInputs } from '../../cli/inputs.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { fileStore, localIdentity, sharedCacheDir } from '../../cli/shared-store.ts';
import { encodeModel } from '../../core/onnx/index.ts';
import {
  type PipelineResult,
  runPipeline,
  type ShardExecutor,
  sequentialExecutor,
} from '../../core/pipeline/run.ts';
import { type CacheCounts, cachingExecutor } from '../../core/pipeline/shared-cache.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';

const fingerprint = (r: PipelineResult) =>
  createHash('sha256')
    .update(
      JSON.stringify({
        samples: r.calibration.samples,
        sampler: r.calibration.report,
        estimate: r.estimate,
        layers: r.layers.map((l) => ({ act: l.act, scales: [...l.weight.scales] })),
        evaluation: r.evaluation,
      }),
    )
    .update(encodeModel(r.emulation))
    .digest('hex');

let dir: string;
beforeAll(async () => {
  useNodeRuntime();
  dir = await mkdtemp(join(tmpdir(), 'cq-shared-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('shared-phase cache (smoke-fmnist, ascend310)', () => {
  it('serves the FP32 reference pass from the store with identical results', async () => {
    const inputs = await loadPipelineInputs(
      recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
      true,
    );
    const identity = await localIdentity(inputs.model, inputs.calibration, inputs.evaluation);
    const store = fileStore(dir);
    const executed: string[] = [];
    const recording: ShardExecutor = (phase, shardInputs, run, meta) => {
      executed.push(`${phase}:${shardInputs.length}`);
      return sequentialExecutor(phase, shardInputs, run, meta);
    };

    const plain = await runPipeline(inputs, { shards: 2 });
    const firstCounts: CacheCounts = new Map();
    const cold = await runPipeline(inputs, {
      shards: 2,
      executor: cachingExecutor(recording, store, identity, firstCounts),
    });
    expect(firstCounts.get('reference')).toBe(0);
    expect(executed).toContain('reference:3');
    // 3 ranges of the reference pass stored (500 samples: 1 calibration + 2 evaluation), one
    // file each
    const files = (
      await Promise.all((await readdir(dir)).map((d) => readdir(join(dir, d))))
    ).flat();
    expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(3);

    executed.length = 0;
    const counts: CacheCounts = new Map();
    const warm = await runPipeline(inputs, {
      shards: 2,
      executor: cachingExecutor(recording, store, identity, counts),
    });
    expect(counts.get('reference')).toBe(3);
    // the reference phase reached the executor with nothing left to run
    expect(executed).toContain('reference:0');
    expect(counts.has('validate')).toBe(false);
    expect(fingerprint(cold)).toBe(fingerprint(plain));
    expect(fingerprint(warm)).toBe(fingerprint(plain));

    // another shard count hits: the reference ranges do not depend on it
    const fiveCounts: CacheCounts = new Map();
    const five = await runPipeline(inputs, {
      shards: 5,
      executor: cachingExecutor(sequentialExecutor, store, identity, fiveCounts),
    });
    expect(fiveCounts.get('reference')).toBe(3);
    expect(fingerprint(five)).toBe(fingerprint(plain));

    // a run without the evaluation split (as `calibrate` runs) hits the calibration range: a
    // shard's key holds the digest of the split it reads, not of the other one
    const calibrateInputs = await loadPipelineInputs(inputs.recipe, false);
    const calibrateIdentity = await localIdentity(
      calibrateInputs.model,
      calibrateInputs.calibration,
      calibrateInputs.evaluation,
    );
    expect(calibrateIdentity.evaluation).not.toBe(identity.evaluation);
    const calibrateCounts: CacheCounts = new Map();
    await runPipeline(calibrateInputs, {
      shards: 2,
      validate: false,
      executor: cachingExecutor(sequentialExecutor, store, calibrateIdentity, calibrateCounts),
    });
    expect(calibrateCounts.get('reference')).toBe(1);

    // another model (one weight changed) misses
    const other = {
      ...identity,
      model: identity.model.replace(/^./, (c) => (c === '0' ? '1' : '0')),
    };
    const missCounts: CacheCounts = new Map();
    await runPipeline(inputs, {
      shards: 2,
      validate: false,
      executor: cachingExecutor(sequentialExecutor, store, other, missCounts),
    });
    expect(missCounts.get('reference')).toBe(0);
  }, 600_000);

  it('is located by the environment and can be turned off', () => {
    expect(sharedCacheDir({ CANN_QUANT_CACHE: 'off' })).toBeUndefined();
    expect(sharedCacheDir({ CANN_QUANT_CACHE_DIR: '/x/y' })).toBe('/x/y');
    expect(sharedCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/cann-quant/shared');
  });
});
