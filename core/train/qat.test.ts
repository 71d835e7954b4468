/**
 * The progressive schedule's mechanics on smoke-fmnist (4.6k parameters, fast): three stages
 * adding tiers low -> medium -> high, the simulated layer set growing, the monitor keeping the
 * best checkpoint (a stage never ends below its start on the held-out slice), and the log.
 * (Calibration-split images stand in for training data here: this tests the loop, not a result.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { useNodeTraining } from '../../cli/train-backend.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { gatherBatch } from '../calibrate/capture.ts';
import type { Tier } from '../calibrate/sensitivity.ts';
import { getTarget } from '../formats/targets.ts';
import { decodeModel } from '../onnx/index.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import { detectQatSplits } from './data.ts';
import { TrainableModel } from './model.ts';
import {
  evaluateSplit,
  progressiveQat,
  STAGE_TIERS,
  splitLogits,
  type TrainingSplit,
} from './qat.ts';

beforeAll(async () => {
  useNodeRuntime();
  await useNodeTraining('wasm');
});

/** A task's model quantized on its first `samples` calibration samples, tiers in turn. */
async function quantizedTask(taskId: string, targetId: string, samples: number) {
  const task = getTask(taskId);
  const split = await task.load(nodeDataSource(), 'calibration');
  const target = getTarget(targetId);
  const model = decodeModel(await readTaskModel(task.manifest));
  const q = await quantizeModel(model, split, {
    target,
    samples: { indices: Array.from({ length: samples }, (_, i) => i) },
    biasCorrection: false,
  });
  const tiers = new Map<string, Tier>(
    q.layers.map((l, i) => [l.name, (['low', 'medium', 'high'] as const)[i % 3]!]),
  );
  return { task, split, target, q, tiers };
}

async function smokeSetup() {
  const { task, split, target, q, tiers } = await quantizedTask(
    'smoke-fmnist',
    'ascend310-w4a8',
    32,
  );
  const make = (from: number, n: number): TrainingSplit => {
    const idx = Array.from({ length: n }, (_, i) => from + i);
    return {
      input: task.manifest.model.inputs[0]!.name,
      sampleDims: [1, 28, 28],
      data: new Float32Array(0),
      labels: Uint8Array.from(idx, (i) => (split.labels as Uint8Array)[i]!),
      size: n,
      classes: 10,
      description: `calibration ${from}..${from + n - 1}`,
    };
  };
  const train = make(100, 128);
  const held = make(300, 100);
  train.data = (
    await gatherBatch(
      split,
      Array.from({ length: 128 }, (_, i) => 100 + i),
    )
  )[train.input]!.data as Float32Array;
  held.data = (
    await gatherBatch(
      split,
      Array.from({ length: 100 }, (_, i) => 300 + i),
    )
  )[held.input]!.data as Float32Array;
  return { target, q, tiers, train, held };
}

describe('progressiveQat on smoke-fmnist, ascend310-w4a8', () => {
  it('runs three stages low -> +medium -> all with a monitor and a stage log', async () => {
    const { target, q, tiers, train, held } = await smokeSetup();
    const progress: number[] = [];
    const r = progressiveQat(q.prepared, {
      target,
      layers: q.layers,
      tiers,
      train,
      heldOut: held,
      epochs: 2,
      batchSize: 32,
      lr: 1e-3,
      onProgress: (s) => progress.push(s),
    });
    expect(r.stages.map((s) => s.tiers)).toEqual(STAGE_TIERS.map((t) => [...t]));
    const sizes = r.stages.map((s) => s.quantized.length);
    expect(sizes[2]).toBe(q.layers.length);
    expect(sizes[0]!).toBeLessThanOrEqual(sizes[1]!);
    expect(sizes[1]!).toBeLessThanOrEqual(sizes[2]!);
    for (const s of r.stages) {
      expect(s.simulatedArithmetic).toBe(true);
      expect(s.steps).toBe(8);
      expect(s.checkpoints.length).toBeGreaterThan(0);
      expect(s.end.heldOut).toBeGreaterThanOrEqual(s.start.heldOut);
      expect(Number.isFinite(s.checkpoints[0]!.trainLoss)).toBe(true);
    }
    expect(new Set(progress)).toEqual(new Set([0, 1, 2]));
    const w = r.model.weights();
    expect(w.size).toBe(q.layers.length);
    r.model.dispose();
  });

  it('distillation: the FP32 model is its fixed point, and the monitor keeps the checkpoint closest to it', async () => {
    const { target, q, tiers, train, held } = await smokeSetup();
    // Unquantized, the model matches its own logits: KL 0, agreement 1.
    const fp32 = new TrainableModel(q.prepared, target);
    const teacher = splitLogits(fp32, held, null);
    const self = evaluateSplit(fp32, held, null, 250, teacher);
    expect(self.teacher!.kl).toBeLessThan(1e-6);
    expect(self.teacher!.agreement).toBe(1);
    fp32.dispose();
    const r = progressiveQat(q.prepared, {
      target,
      layers: q.layers,
      tiers,
      train,
      heldOut: held,
      epochs: 2,
      batchSize: 32,
      lr: 1e-3,
      distill: { temperature: 2, weight: 1 },
    });
    for (const s of r.stages) {
      expect(s.start.teacher!.kl).toBeGreaterThan(0);
      for (const c of s.checkpoints) expect(c.teacher!.agreement).toBeGreaterThan(0.5);
      // the kept checkpoint is the one with the lowest held-out KL (or the start)
      const kls = [s.start.teacher!.kl!, ...s.checkpoints.map((c) => c.teacher!.kl!)];
      expect(s.end.teacher!.kl).toBe(Math.min(...kls));
    }
    // W4A8 on every layer moves the model away from FP32; distillation brings it back closer.
    const last = r.stages[2]!;
    expect(last.end.teacher!.kl).toBeLessThan(last.start.teacher!.kl!);
    r.model.dispose();
    expect(() =>
      progressiveQat(q.prepared, {
        target,
        layers: q.layers,
        tiers,
        train,
        heldOut: held,
        epochs: 1,
        distill: { temperature: 0, weight: 1 },
      }),
    ).toThrow(/temperature > 0/);
  });
});

describe('activation range tracking', () => {
  it('momentum 1 changes nothing; momentum 0.5 moves the ranges toward the batches and logs them', async () => {
    const { target, q, tiers, train, held } = await smokeSetup();
    const base = {
      target,
      layers: q.layers,
      tiers,
      train,
      heldOut: held,
      epochs: 1,
      batchSize: 32,
      lr: 1e-3,
    };
    // one TrainableModel at a time: tfjs variables are registered by name
    const plain = progressiveQat(q.prepared, base);
    const plainLosses = plain.stages.map((s) => s.checkpoints.map((c) => c.trainLoss));
    plain.model.dispose();
    const still = progressiveQat(q.prepared, { ...base, trackRanges: { momentum: 1 } });
    expect(still.stages.map((s) => s.checkpoints.map((c) => c.trainLoss))).toEqual(plainLosses);
    for (const s of still.stages)
      for (const r of Object.values(s.ranges!)) expect(r.end).toEqual(r.start);
    still.model.dispose();
    const moving = progressiveQat(q.prepared, { ...base, trackRanges: { momentum: 0.5 } });
    const all = moving.stages.flatMap((s) => Object.values(s.ranges!));
    expect(all.some((r) => r.end[0] !== r.start[0] || r.end[1] !== r.start[1])).toBe(true);
    for (const r of all) {
      expect(r.end[0]).toBeLessThanOrEqual(0);
      expect(r.end[1]).toBeGreaterThan(0);
    }
    // every stage logs the layers it simulated
    for (const s of moving.stages)
      expect(Object.keys(s.ranges!).sort()).toEqual([...s.quantized].sort());
    moving.model.dispose();
    expect(() => progressiveQat(q.prepared, { ...base, trackRanges: { momentum: 2 } })).toThrow(
      /momentum/,
    );
  }, 120_000);
});

describe('progressiveQat on output maps (fmnist-detect, ascend310)', () => {
  it('trains by distillation alone, keeps the lowest-MSE checkpoint, and refuses to run without it', async () => {
    const { task, target, q, tiers } = await quantizedTask('fmnist-detect', 'ascend310', 16);
    const { train, heldOut } = await detectQatSplits(task.manifest, nodeDataSource(), {
      trainCount: 16,
      heldOutCount: 8,
      seed: 3,
    });
    expect(train.targets).toBe('maps');
    expect(train.data.length).toBe(16 * 64 * 64);
    const opts = { target, layers: q.layers, tiers, train, heldOut, epochs: 1, batchSize: 8 };
    expect(() => progressiveQat(q.prepared, opts)).toThrow(/needs distillation/);
    const r = progressiveQat(q.prepared, {
      ...opts,
      lr: 1e-4,
      checkpointsPerEpoch: 2,
      distill: { temperature: 1, weight: 1 },
    });
    for (const s of r.stages) {
      expect(Number.isNaN(s.start.heldOut)).toBe(true);
      expect(s.start.teacher!.mse).toBeGreaterThan(0);
      const fits = [s.start.teacher!.mse!, ...s.checkpoints.map((c) => c.teacher!.mse!)];
      expect(fits.every(Number.isFinite)).toBe(true);
      expect(s.end.teacher!.mse).toBe(Math.min(...fits));
    }
    r.model.dispose();
  }, 300_000);
});
