/**
 * CenterNet decoding: the bit-identical twin of zoo/fmnist-detect/decode.py.
 *
 * Per canvas, from heatmap [10,16,16] (sigmoid scores), wh [2,16,16] and offset [2,16,16]:
 * - a cell (c, y, x) is a peak when its score equals the max of its 3x3 neighbourhood in the
 *   same class plane (cells outside the map ignored) and its score >= SCORE_THRESHOLD;
 * - peaks are ranked by descending score, ties by lower flat index c*256 + y*16 + x, and the
 *   first TOP_K are kept;
 * - in doubles: cx = (x + offset[0,y,x]) * 4, cy = (y + offset[1,y,x]) * 4,
 *   w = wh[0,y,x] * 4, h = wh[1,y,x] * 4, box = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) in
 *   input pixels (continuous coordinates).
 */
import type { Detection } from '../../core/metrics/detection.ts';
import { NUMBER_JSON_BYTES } from '../../core/pipeline/replay.ts';
import type { TensorData } from '../../core/tensor/index.ts';

export const STRIDE = 4;
export const TOP_K = 20;
export const SCORE_THRESHOLD = 0.05;

/**
 * Bound of one canvas's detection list in a shard output (core/pipeline/replay.ts
 * encodeShardOutput), for a heatmap of `classes` planes: at most TOP_K objects
 * `{"cls":…,"score":…,"x1":…,"y1":…,"x2":…,"y2":…}` of five numbers of at most
 * NUMBER_JSON_BYTES characters each, with their commas and brackets. 3,361 bytes for 10 classes;
 * the FP32 model's lists take about 2 KB a canvas.
 */
export function detectionListBytes(classes: number): number {
  const object = '{"cls":,"score":,"x1":,"y1":,"x2":,"y2":}'.length;
  const one = object + String(Math.max(0, classes - 1)).length + 5 * NUMBER_JSON_BYTES;
  return 2 + TOP_K * one + (TOP_K - 1);
}

function floatData(t: TensorData | undefined, name: string): Float32Array {
  if (t?.type !== 'float32')
    throw new TypeError(`fmnist-detect: output '${name}' missing or not float32`);
  return t.data as Float32Array;
}

/** Decodes one batch of `heatmap`/`wh`/`offset` outputs into per-canvas detections. */
export function decodeDetections(
  outputs: Record<string, TensorData>,
  batchSize: number,
): Detection[][] {
  const hm = floatData(outputs.heatmap, 'heatmap');
  const wh = floatData(outputs.wh, 'wh');
  const off = floatData(outputs.offset, 'offset');
  const dims = outputs.heatmap!.dims;
  const [n, C, H, W] = [dims[0]!, dims[1]!, dims[2]!, dims[3]!];
  if (n !== batchSize || dims.length !== 4) {
    throw new RangeError(`fmnist-detect: heatmap dims [${dims}] for a batch of ${batchSize}`);
  }
  const plane = H * W;
  if (wh.length !== n * 2 * plane || off.length !== n * 2 * plane) {
    throw new RangeError('fmnist-detect: wh/offset sizes do not match the heatmap');
  }
  const result: Detection[][] = [];
  for (let i = 0; i < n; i++) {
    const base = i * C * plane;
    const peaks: number[] = [];
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const flat = c * plane + y * W + x;
          const v = hm[base + flat]!;
          if (!(v >= SCORE_THRESHOLD)) continue;
          let peak = true;
          for (let dy = -1; dy <= 1 && peak; dy++) {
            const yy = y + dy;
            if (yy < 0 || yy >= H) continue;
            for (let dx = -1; dx <= 1; dx++) {
              const xx = x + dx;
              if (xx < 0 || xx >= W) continue;
              if (hm[base + c * plane + yy * W + xx]! > v) {
                peak = false;
                break;
              }
            }
          }
          if (peak) peaks.push(flat);
        }
      }
    }
    peaks.sort((a, b) => hm[base + b]! - hm[base + a]! || a - b);
    const dets: Detection[] = [];
    const pb = i * 2 * plane;
    for (const flat of peaks.slice(0, TOP_K)) {
      const c = Math.floor(flat / plane);
      const rem = flat - c * plane;
      const y = Math.floor(rem / W);
      const x = rem - y * W;
      const cx = (x + off[pb + rem]!) * STRIDE;
      const cy = (y + off[pb + plane + rem]!) * STRIDE;
      const w = wh[pb + rem]! * STRIDE;
      const h = wh[pb + plane + rem]! * STRIDE;
      dets.push({
        cls: c,
        score: hm[base + flat]!,
        x1: cx - w / 2,
        y1: cy - h / 2,
        x2: cx + w / 2,
        y2: cy + h / 2,
      });
    }
    result.push(dets);
  }
  return result;
}
