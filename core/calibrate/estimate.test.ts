import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { getTarget } from '../formats/targets.ts';
import type { Detection } from '../metrics/detection.ts';
import { decodeModel } from '../onnx/index.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import {
  estimateLoss,
  estimatorFor,
  expectedAccuracy,
  expectedF1,
  mergePairs,
  type PairedPredictions,
  runPair,
} from './estimate.ts';
import { spreadIndices } from './sampler.ts';

/** Logits rows -> a classifier pair with the given INT8 predictions. */
function pair(rows: number[][], int8: number[]): PairedPredictions<number> {
  const c = rows[0]!.length;
  const argmax = (r: number[]) => r.indexOf(Math.max(...r));
  return {
    start: 0,
    count: rows.length,
    fp32: rows.map(argmax),
    int8,
    classes: c,
    fp32Logits: Float32Array.from(rows.flat()),
  };
}

describe('estimateLoss: accuracy', () => {
  // 100 samples over 3 classes: 90 confident (margin 4), 10 near ties between class 0 and 1.
  const rows = [
    ...Array.from({ length: 90 }, (_, i) => [
      i % 3 === 0 ? 4 : 0,
      i % 3 === 1 ? 4 : 0,
      i % 3 === 2 ? 4 : 0,
    ]),
    ...Array.from({ length: 10 }, () => [0.01, 0, -3]),
  ];
  const fp32 = pair(rows, []).fp32;

  it('fits the temperature so that the expected FP32 accuracy is the reference', () => {
    const e = estimateLoss(pair(rows, fp32), { kind: 'accuracy', reference: 0.8 });
    expect(e.lossPoints).toBe(0);
    expect(e.disagreement).toBe(0);
    expect(e.temperature).toBeGreaterThan(0);
  });

  it('flips between near-tied classes cost little, flips of confident samples nearly a sample each', () => {
    const tied = fp32.map((p, i) => (i >= 90 ? 1 : p));
    const confident = fp32.map((p, i) => (i < 10 ? (p + 1) % 3 : p));
    const a = estimateLoss(pair(rows, tied), { kind: 'accuracy', reference: 0.85 });
    const b = estimateLoss(pair(rows, confident), { kind: 'accuracy', reference: 0.85 });
    expect(a.disagreement).toBe(0.1);
    expect(b.disagreement).toBe(0.1);
    expect(a.naiveLossPoints).toBeCloseTo(7, 9);
    expect(Math.abs(a.lossPoints)).toBeLessThan(1);
    expect(b.lossPoints).toBeGreaterThan(7);
    expect(b.lossPoints).toBeLessThanOrEqual(10);
  });

  it('expected accuracy and F1 under soft labels', () => {
    const p = Float64Array.from([0.9, 0.1, 0.2, 0.8]);
    expect(expectedAccuracy(p, [0, 1], 2)).toBeCloseTo(0.85, 12);
    // TP = .8, FP = .2, FN = .1 -> F1 = 1.6 / (1.6 + .3)
    expect(expectedF1(p, [0, 1], 2)).toBeCloseTo(1.6 / 1.9, 12);
    expect(estimatorFor('top1')).toBe('accuracy');
    expect(estimatorFor('f1_spam')).toBe('f1');
    expect(estimatorFor('mAP50')).toBe('map');
  });

  it('user models: agreement (top-1 disagreement in points) and relative-error (RMS, SQNR)', () => {
    expect(estimatorFor('agreement')).toBe('agreement');
    expect(estimatorFor('relative-error')).toBe('relative-error');
    const fp32 = Array.from({ length: 40 }, (_, i) => i % 3);
    const int8 = fp32.map((c, i) => (i < 3 ? (c + 1) % 3 : c));
    const agree = estimateLoss(
      { start: 0, count: 40, fp32, int8 },
      { kind: 'agreement', reference: 1 },
    );
    expect(agree).toEqual({ kind: 'agreement', samples: 40, lossPoints: 7.5, disagreement: 0.075 });
    // Two samples of values; noise energy 0.01 + 0.04 against signal 1 + 4 + 9 + 16 = 30.
    const rel = estimateLoss(
      {
        start: 0,
        count: 2,
        fp32: [Float32Array.from([1, 2]), Float32Array.from([3, 4])],
        int8: [Float32Array.from([1, 2.1]), Float32Array.from([3, 3.8])],
      },
      { kind: 'relative-error', reference: 1 },
    );
    expect(rel.kind).toBe('relative-error');
    expect(rel.samples).toBe(2);
    expect(rel.disagreement).toBe(1);
    // float32 storage of 2.1 and 3.8: tolerance 1e-5 on the ratio.
    expect(rel.lossPoints).toBeCloseTo(100 * Math.sqrt(0.05 / 30), 4);
    expect(rel.sqnrDb).toBeCloseTo(10 * Math.log10(30 / 0.05), 3);
    const same = estimateLoss(
      { start: 0, count: 1, fp32: [[1, 2]], int8: [[1, 2]] },
      { kind: 'relative-error', reference: 1 },
    );
    expect(same).toMatchObject({ lossPoints: 0, sqnrDb: 200, disagreement: 0 });
  });

  it('f1: no flips, no loss; flipping confident positives loses F1', () => {
    const bin = [
      ...Array.from({ length: 50 }, () => [0, 5]),
      ...Array.from({ length: 50 }, () => [5, 0]),
    ];
    const base = pair(bin, []).fp32;
    expect(estimateLoss(pair(bin, base), { kind: 'f1', reference: 0.9 }).lossPoints).toBe(0);
    const lost = base.map((p, i) => (i < 10 ? 0 : p));
    expect(
      estimateLoss(pair(bin, lost), { kind: 'f1', reference: 0.9 }).lossPoints,
    ).toBeGreaterThan(5);
  });
});

describe('estimateLoss: detection pseudo-labels', () => {
  const det = (cls: number, x: number, score: number): Detection => ({
    cls,
    x1: x,
    y1: 0,
    x2: x + 10,
    y2: 10,
    score,
  });
  const fp32 = [
    [det(0, 0, 0.9), det(1, 20, 0.8)],
    [det(2, 5, 0.7), det(3, 30, 0.1)],
  ];

  it('identical detections: no loss; a lost confident detection costs mAP', () => {
    const same = { start: 0, count: 2, fp32, int8: fp32 };
    expect(estimateLoss(same, { kind: 'map', reference: 0.8 })).toMatchObject({
      lossPoints: 0,
      disagreement: 0,
      pseudo: { fp32: 1, int8: 1 },
    });
    const lost = { start: 0, count: 2, fp32, int8: [[det(0, 0, 0.9)], fp32[1]!] };
    const e = estimateLoss(lost, { kind: 'map', reference: 0.8 });
    expect(e.disagreement).toBe(0.5);
    // class 1 (one of 3 pseudo classes) loses its only box: pseudo mAP 2/3.
    expect(e.pseudo!.int8).toBeCloseTo(2 / 3, 12);
    expect(e.lossPoints).toBeCloseTo(80 / 3, 6);
  });

  it('merges shards in index order', () => {
    const a = { start: 1, count: 1, fp32: [fp32[1]!], int8: [fp32[1]!] };
    const b = { start: 0, count: 1, fp32: [fp32[0]!], int8: [fp32[0]!] };
    expect(mergePairs([a, b])).toEqual({ start: 0, count: 2, fp32, int8: fp32 });
    expect(() => mergePairs([a, { ...b, start: 5 }])).toThrow(/gap/);
  });
});

describe('smoke-fmnist on ascend310', () => {
  beforeAll(() => useNodeRuntime());

  /**
   * Measured (cann-quant format --task smoke-fmnist --hardware ascend310 --bias-correct; validate
   * on the 1,000 evaluation images): FP32 0.885, INT8 0.884, loss 0.1 point. The estimate sees
   * only the 500 unlabelled calibration images and the published FP32 top-1.
   */
  const MEASURED_LOSS_POINTS = 0.1;

  it('estimates the loss within 0.3 points of the measured loss, shard-invariant', async () => {
    const task = getTask('smoke-fmnist');
    const target = getTarget('ascend310');
    const split = await task.load(nodeDataSource(), 'calibration');
    const model = decodeModel(await readTaskModel(task.manifest));
    // The `format` command's recipe: percentile 99.99, 50 spread samples, bias correction.
    const q = await quantizeModel(model, split, {
      target,
      samples: { indices: spreadIndices(split.size, 50) },
      biasCorrection: true,
    });
    const predict = (o: Parameters<typeof task.predict>[0], n: number) =>
      task.predict(o, n) as number[];
    const parts = await Promise.all([
      runPair(model, q.emulation, split, predict, { start: 0, end: 200 }),
      runPair(model, q.emulation, split, predict, { start: 200 }),
    ]);
    const merged = mergePairs(parts);
    expect(merged.count).toBe(500);
    const whole = await runPair(model, q.emulation, split, predict);
    expect(merged).toEqual(whole);
    const e = estimateLoss(merged, {
      kind: estimatorFor(task.manifest.metric.primary),
      reference: task.manifest.reference.fp32.top1!,
    });
    expect(e.samples).toBe(500);
    expect(e.disagreement).toBeLessThan(0.01);
    expect(Math.abs(e.lossPoints - MEASURED_LOSS_POINTS)).toBeLessThanOrEqual(0.3);
  });
});
