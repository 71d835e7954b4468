import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import type { TaskManifest } from '../task.ts';
import { boxesTable, CANVAS_SPLITS, composeCanvases, Mulberry32 } from './canvas.ts';
import { readFashionMnist } from './fashion-mnist.ts';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Little-endian bytes of an int32 array (the layout numpy's '<i4' writes). */
function int32LE(a: Int32Array): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setInt32(i * 4, a[i]!, true);
  return out;
}

describe('canvas composer', () => {
  it('mulberry32 matches hand-checked values of the reference implementation', () => {
    const rng = new Mulberry32(0);
    // mulberry32(0) of the JS original returns 0.26642920868471265 first (= 1144304738 / 2^32);
    // the next two are the Python twin's values.
    expect([rng.next(), rng.next(), rng.next()]).toEqual([1144304738, 1416247, 958946056]);
  });

  it('composes the evaluation split exactly as zoo/common/canvas.py (checksums in task.json)', async () => {
    const manifest = JSON.parse(
      readFileSync(new URL('../fmnist-detect/task.json', import.meta.url), 'utf8'),
    ) as TaskManifest;
    const part = await readFashionMnist(nodeDataSource(), 'test');
    const set = composeCanvases(part, CANVAS_SPLITS.evaluation);
    expect(set.count).toBe(2000);
    expect(sha256(set.pixels)).toBe(manifest.dataset.canvasSha256);
    expect(sha256(int32LE(boxesTable(set.items)))).toBe(manifest.dataset.boxesSha256);
    for (const list of set.items) {
      expect(list.length).toBeGreaterThanOrEqual(1);
      expect(list.length).toBeLessThanOrEqual(4);
    }
  });
});
