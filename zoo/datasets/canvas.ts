/**
 * Deterministic detection canvases composed from real Fashion-MNIST items: the bit-exact twin
 * of zoo/common/canvas.py (the training side). Pure TypeScript, no node: imports.
 *
 * Specification (all integers; uint32 arithmetic mod 2^32):
 * - PRNG: mulberry32. next(): s += 0x6D2B79F5; t = imul(s ^ (s >>> 15), s | 1);
 *   t = (t + imul(t ^ (t >>> 7), t | 61)) ^ t; return t ^ (t >>> 14).
 *   int(n) = floor(next() * n / 2^32) (exact for n < 2^21).
 * - Canvas i of a split with seed S starts from fmix32(S ^ imul(i + 1, 0x9E3779B1)).
 * - 64x64 uint8, zero background, n = 1 + int(4) items. Per item: idx = start + int(count);
 *   side = 16 + int(21); patch[y][x] = img[floor(y*28/side)][floor(x*28/side)]; crop to the
 *   tight box of nonzero pixels (empty patches skipped); up to 10 tries of x = int(64-w+1),
 *   y = int(64-h+1), accepting the first box with 10*inter <= 3*union against every earlier
 *   box (IoU <= 0.3); pasted with pixel-wise max. A box is [x1, y1, x2, y2) in pixels.
 */
import type { FashionMnistPart } from './fashion-mnist.ts';

export const CANVAS_SIZE = 64;
const CANVAS_PIXELS = CANVAS_SIZE * CANVAS_SIZE;
const MAX_ITEMS = 4;
const MIN_SIDE = 16;
const MAX_SIDE = 36;
const TRIES = 10;

/** One ground-truth object: class (Fashion-MNIST label) and box [x1, y1, x2, y2) in pixels. */
export interface CanvasItem {
  cls: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** A split of canvases: which images it draws from, its seed and size. */
export interface CanvasSplitSpec {
  part: 'train' | 'test';
  /** First image index of the range items are drawn from. */
  start: number;
  /** Number of images in that range. */
  count: number;
  seed: number;
  canvases: number;
}

/** The three splits of the fmnist-detect task (zoo/common/canvas.py SPLITS). */
export const CANVAS_SPLITS = {
  train: { part: 'train', start: 0, count: 55_000, seed: 1, canvases: 48_000 },
  calibration: { part: 'train', start: 55_000, count: 5_000, seed: 2, canvases: 1_000 },
  evaluation: { part: 'test', start: 0, count: 10_000, seed: 3, canvases: 2_000 },
} as const satisfies Record<string, CanvasSplitSpec>;

/** Composed canvases: `count` 64x64 uint8 images, row-major, and their objects. */
export interface CanvasSet {
  count: number;
  pixels: Uint8Array;
  items: CanvasItem[][];
}

function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Initial PRNG state of canvas `i` of a split seeded with `seed`. */
export function canvasSeed(seed: number, i: number): number {
  return fmix32((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
}

/** mulberry32 on a uint32 state; `int(n)` draws uniformly from 0..n-1 with integer math. */
export class Mulberry32 {
  private s: number;
  constructor(state: number) {
    this.s = state >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    const s = this.s;
    let t = Math.imul(s ^ (s >>> 15), s | 1) >>> 0;
    t = (((t + (Math.imul(t ^ (t >>> 7), t | 61) >>> 0)) >>> 0) ^ t) >>> 0;
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number {
    return Math.floor((this.next() * n) / 4294967296);
  }
}

function iouOk(a: CanvasItem, b: CanvasItem): boolean {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  const inter = iw > 0 && ih > 0 ? iw * ih : 0;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return 10 * inter <= 3 * union;
}

/**
 * Composes canvas `i` of a split into `out` (64*64 bytes, zeroed here) and returns its items.
 * `images`/`labels` are a whole Fashion-MNIST part; `start`/`count` select the image range.
 */
export function composeCanvas(
  part: FashionMnistPart,
  spec: Pick<CanvasSplitSpec, 'start' | 'count' | 'seed'>,
  i: number,
  out: Uint8Array,
): CanvasItem[] {
  out.fill(0);
  const rng = new Mulberry32(canvasSeed(spec.seed, i));
  const items: CanvasItem[] = [];
  const patch = new Uint8Array(MAX_SIDE * MAX_SIDE);
  const n = 1 + rng.int(MAX_ITEMS);
  for (let k = 0; k < n; k++) {
    const idx = spec.start + rng.int(spec.count);
    const side = MIN_SIDE + rng.int(MAX_SIDE - MIN_SIDE + 1);
    const base = idx * 784;
    let py1 = side;
    let py2 = -1;
    let px1 = side;
    let px2 = -1;
    for (let y = 0; y < side; y++) {
      const row = base + Math.floor((y * 28) / side) * 28;
      for (let x = 0; x < side; x++) {
        const v = part.images[row + Math.floor((x * 28) / side)]!;
        patch[y * side + x] = v;
        if (v !== 0) {
          if (y < py1) py1 = y;
          if (y > py2) py2 = y;
          if (x < px1) px1 = x;
          if (x > px2) px2 = x;
        }
      }
    }
    if (py2 < 0) continue;
    const h = py2 + 1 - py1;
    const w = px2 + 1 - px1;
    for (let t = 0; t < TRIES; t++) {
      const x = rng.int(CANVAS_SIZE - w + 1);
      const y = rng.int(CANVAS_SIZE - h + 1);
      const box: CanvasItem = { cls: part.labels[idx]!, x1: x, y1: y, x2: x + w, y2: y + h };
      if (items.every((b) => iouOk(box, b))) {
        for (let r = 0; r < h; r++) {
          for (let c = 0; c < w; c++) {
            const v = patch[(py1 + r) * side + px1 + c]!;
            const o = (y + r) * CANVAS_SIZE + x + c;
            if (v > out[o]!) out[o] = v;
          }
        }
        items.push(box);
        break;
      }
    }
  }
  return items;
}

/** Composes canvases [0, spec.canvases) of a split from its Fashion-MNIST part. */
export function composeCanvases(part: FashionMnistPart, spec: CanvasSplitSpec): CanvasSet {
  if (spec.start < 0 || spec.start + spec.count > part.count) {
    throw new RangeError(
      `canvas split: images [${spec.start}, ${spec.start + spec.count}) outside ${part.count}`,
    );
  }
  const pixels = new Uint8Array(spec.canvases * CANVAS_PIXELS);
  const items: CanvasItem[][] = [];
  for (let i = 0; i < spec.canvases; i++) {
    items.push(
      composeCanvas(part, spec, i, pixels.subarray(i * CANVAS_PIXELS, (i + 1) * CANVAS_PIXELS)),
    );
  }
  return { count: spec.canvases, pixels, items };
}

/**
 * Ground truth as the int32 table the checksums cover: rows (canvas, cls, x1, y1, x2, y2),
 * canvas by canvas, items in placement order (zoo/common/canvas.py boxes_table()).
 */
export function boxesTable(items: readonly (readonly CanvasItem[])[]): Int32Array {
  let rows = 0;
  for (const list of items) rows += list.length;
  const out = new Int32Array(rows * 6);
  let o = 0;
  items.forEach((list, i) => {
    for (const it of list) {
      out.set([i, it.cls, it.x1, it.y1, it.x2, it.y2], o);
      o += 6;
    }
  });
  return out;
}
