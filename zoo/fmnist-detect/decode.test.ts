import { describe, expect, it } from 'vitest';
import { encodeShardOutput } from '../../core/pipeline/replay.ts';
import { tensor } from '../../core/tensor/index.ts';
import { decodeDetections, detectionListBytes, TOP_K } from './decode.ts';

const PLANE = 256;

function outputs(cells: [number, number, number, number][], wh = [2, 3], off = [0.25, 0.5]) {
  const hm = new Float32Array(10 * PLANE);
  for (const [c, y, x, v] of cells) hm[c * PLANE + y * 16 + x] = v;
  const whd = new Float32Array(2 * PLANE);
  whd.fill(wh[0]!, 0, PLANE);
  whd.fill(wh[1]!, PLANE);
  const offd = new Float32Array(2 * PLANE);
  offd.fill(off[0]!, 0, PLANE);
  offd.fill(off[1]!, PLANE);
  return {
    heatmap: tensor('float32', [1, 10, 16, 16], hm),
    wh: tensor('float32', [1, 2, 16, 16], whd),
    offset: tensor('float32', [1, 2, 16, 16], offd),
  };
}

describe('fmnist-detect decoder', () => {
  it('turns a peak into a box: centre (x + off) * 4, size wh * 4', () => {
    const [dets] = decodeDetections(outputs([[3, 5, 7, 0.75]]), 1);
    // cx = (7 + 0.25) * 4 = 29, cy = (5 + 0.5) * 4 = 22, w = 8, h = 12.
    expect(dets).toEqual([{ cls: 3, score: 0.75, x1: 25, y1: 16, x2: 33, y2: 28 }]);
  });

  it('keeps only 3x3 maxima, per class plane, and drops scores below 0.05', () => {
    const [dets] = decodeDetections(
      outputs([
        [0, 5, 5, 0.9],
        [0, 5, 6, 0.8], // neighbour of a higher cell: suppressed
        [1, 5, 6, 0.7], // same cell, other class: kept
        [0, 0, 0, 0.04], // below threshold
        [0, 15, 15, 0.05], // corner, exactly at threshold: kept
      ]),
      1,
    );
    expect(dets!.map((d) => [d.cls, d.score])).toEqual([
      [0, Math.fround(0.9)],
      [1, Math.fround(0.7)],
      [0, Math.fround(0.05)],
    ]);
  });

  it('keeps equal neighbours both (plateau) and breaks score ties by lower flat index', () => {
    const [dets] = decodeDetections(
      outputs([
        [2, 8, 9, 0.5],
        [2, 8, 8, 0.5],
        [1, 12, 0, 0.5],
      ]),
      1,
    );
    expect(dets!.map((d) => [d.cls, d.x1])).toEqual([
      [1, 0.25 * 4 - 4],
      [2, (8 + 0.25) * 4 - 4],
      [2, (9 + 0.25) * 4 - 4],
    ]);
  });

  it(`returns at most ${TOP_K} detections, highest scores first`, () => {
    const cells: [number, number, number, number][] = [];
    for (let k = 0; k < 30; k++)
      cells.push([k % 10, 2 * Math.floor(k / 10), 2 * (k % 8), 0.1 + k / 100]);
    const [dets] = decodeDetections(outputs(cells), 1);
    expect(dets).toHaveLength(TOP_K);
    expect(dets![0]!.score).toBe(Math.fround(0.1 + 29 / 100));
    for (let k = 1; k < TOP_K; k++) expect(dets![k]!.score).toBeLessThan(dets![k - 1]!.score);
  });

  it('bounds a detection list in a shard output: TOP_K detections of the longest numbers', () => {
    expect(detectionListBytes(10)).toBe(3361);
    const longest = -0.0000012345678901234567; // 25 characters in JSON
    const worst = Array.from({ length: TOP_K }, () => ({
      cls: 9,
      score: longest,
      x1: longest,
      y1: longest,
      x2: longest,
      y2: longest,
    }));
    expect(encodeShardOutput(worst).length).toBe(detectionListBytes(10));
    // a full list as the decoder emits it (20 peaks, typical numbers) stays under the bound
    const cells: [number, number, number, number][] = [];
    for (let k = 0; k < 30; k++)
      cells.push([k % 10, 2 * Math.floor(k / 8), 2 * (k % 8), 0.06 + k / 100]);
    const [dets] = decodeDetections(outputs(cells, [1.1, 2.3], [0.37, 0.91]), 1);
    expect(dets).toHaveLength(TOP_K);
    expect(encodeShardOutput(dets).length).toBeLessThanOrEqual(detectionListBytes(10));
    expect(detectionListBytes(100)).toBe(3361 + TOP_K); // two-digit classes
  });
});
