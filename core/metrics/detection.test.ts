import { describe, expect, it } from 'vitest';
import {
  averagePrecision,
  boxIou,
  type Detection,
  detectionMetrics,
  type GroundTruth,
} from './detection.ts';

const gt = (cls: number, x1: number, y1: number, x2: number, y2: number): GroundTruth => ({
  cls,
  x1,
  y1,
  x2,
  y2,
});
const det = (
  cls: number,
  score: number,
  x1: number,
  y1: number,
  x2: number,
  y2: number,
): Detection => ({ cls, score, x1, y1, x2, y2 });

describe('boxIou (continuous coordinates)', () => {
  it('is 1 for identical boxes, 0 for disjoint or touching boxes', () => {
    expect(boxIou(gt(0, 0, 0, 10, 10), gt(0, 0, 0, 10, 10))).toBe(1);
    expect(boxIou(gt(0, 0, 0, 10, 10), gt(0, 10, 0, 20, 10))).toBe(0);
  });
  it('computes inter / union without +1: half-shifted squares give 50/150', () => {
    expect(boxIou(gt(0, 0, 0, 10, 10), gt(0, 5, 0, 15, 10))).toBe(50 / 150);
  });
  it('gives 0 for degenerate boxes instead of NaN', () => {
    expect(boxIou(gt(0, 0, 0, 0, 0), gt(0, 0, 0, 0, 0))).toBe(0);
  });
});

describe('COCO-style AP (101-point)', () => {
  const truths = [[gt(0, 0, 0, 10, 10)], [gt(0, 0, 0, 10, 10)]];

  it('perfect detections give AP 1 and mAP 1', () => {
    const dets = [[det(0, 0.9, 0, 0, 10, 10)], [det(0, 0.8, 0, 0, 10, 10)]];
    expect(detectionMetrics(dets, truths)).toEqual({ mAP50: 1, mAP75: 1 });
  });

  it('one ground truth, a false positive ranked first: precision 1/2 at every recall', () => {
    const dets = [[det(0, 0.9, 30, 30, 40, 40), det(0, 0.5, 0, 0, 10, 10)]];
    expect(averagePrecision(dets, [[gt(0, 0, 0, 10, 10)]], 0, 0.5)).toBe(0.5);
  });

  it('TP, FP, TP over two ground truths: (51 * 1 + 50 * 2/3) / 101', () => {
    // Ranked: TP (recall 1/2, precision 1), FP (1/2, 1/2), TP (1, 2/3). Interpolated
    // precision: 1 for r = 0.00..0.50 (51 points), 2/3 for r = 0.51..1.00 (50 points).
    const dets = [
      [det(0, 0.9, 0, 0, 10, 10), det(0, 0.8, 50, 50, 60, 60)],
      [det(0, 0.7, 0, 0, 10, 10)],
    ];
    let expected = 0;
    for (let i = 0; i <= 50; i++) expected += 1;
    for (let i = 51; i <= 100; i++) expected += 2 / 3;
    expect(averagePrecision(dets, truths, 0, 0.5)).toBe(expected / 101);
    expect(expected / 101).toBeCloseTo(84.333333 / 101, 6);
  });

  it('missed ground truth caps recall: one of two found gives 51/101', () => {
    const dets = [[det(0, 0.9, 0, 0, 10, 10)], []];
    expect(averagePrecision(dets, truths, 0, 0.5)).toBe(51 / 101);
  });

  it('IoU thresholds: a box with IoU 50/150 = 1/3 misses at 0.5; 0.625 ok at 0.5, not 0.75', () => {
    const shifted = [[det(0, 0.9, 5, 0, 15, 10)], []];
    expect(averagePrecision(shifted, truths, 0, 0.5)).toBe(0);
    // [0,0,10,10] vs [0,0,10,16]: IoU 100/160 = 0.625.
    const taller = [[det(0, 0.9, 0, 0, 10, 16)], [det(0, 0.8, 0, 0, 10, 10)]];
    expect(averagePrecision(taller, truths, 0, 0.5)).toBe(1);
    // At 0.75 the first-ranked box is a FP: precision [0, 1/2] -> interpolated 1/2 on 51 points.
    expect(averagePrecision(taller, truths, 0, 0.75)).toBe(25.5 / 101);
  });

  it('IoU exactly at the threshold matches (COCO: >=)', () => {
    // [0,0,10,10] vs [0,0,10,20]: IoU 100/200 = 0.5 exactly.
    expect(averagePrecision([[det(0, 1, 0, 0, 10, 20)]], [[gt(0, 0, 0, 10, 10)]], 0, 0.5)).toBe(1);
  });

  it('a duplicate detection of an already matched object is a false positive', () => {
    const dets = [[det(0, 0.9, 0, 0, 10, 10), det(0, 0.8, 0, 0, 10, 10)]];
    // TP then FP: precision [1, 1/2], recall [1, 1]: every recall point takes precision 1.
    expect(averagePrecision(dets, [[gt(0, 0, 0, 10, 10)]], 0, 0.5)).toBe(1);
  });

  it('equal scores: ties ranked by image index (image 0 first)', () => {
    // Image 0's FP and image 1's TP share a score: FP ranks first, so precision is 1/2.
    const dets = [[det(0, 0.5, 50, 50, 60, 60)], [det(0, 0.5, 0, 0, 10, 10)]];
    expect(averagePrecision(dets, [[], [gt(0, 0, 0, 10, 10)]], 0, 0.5)).toBe(0.5);
    const swapped = [[det(0, 0.5, 0, 0, 10, 10)], [det(0, 0.5, 50, 50, 60, 60)]];
    expect(averagePrecision(swapped, [[gt(0, 0, 0, 10, 10)], []], 0, 0.5)).toBe(1);
  });

  it('classes are matched separately; classes without ground truth are excluded', () => {
    const t = [[gt(0, 0, 0, 10, 10), gt(3, 20, 20, 30, 30)]];
    // Class 0 perfect (AP 1); class 3 detected with the wrong class (AP 0); a class-7
    // detection with no class-7 ground truth does not count.
    const d = [
      [det(0, 0.9, 0, 0, 10, 10), det(5, 0.8, 20, 20, 30, 30), det(7, 0.7, 40, 40, 50, 50)],
    ];
    expect(averagePrecision(d, t, 7, 0.5)).toBeNull();
    expect(detectionMetrics(d, t)).toEqual({ mAP50: 0.5, mAP75: 0.5 });
  });
});
