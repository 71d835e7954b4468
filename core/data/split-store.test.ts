import { describe, expect, it } from 'vitest';
import type { BatchSource } from '../evaluate/predict.ts';
import type { TensorData } from '../tensor/index.ts';
import { memoryBlobStore, packSplit, sha256Hex, storedSplit } from './split-store.ts';

/** A split of 103 samples with two inputs: float32 [3,2] and int64 [4], values from the index. */
function fakeSplit(): BatchSource {
  return {
    size: 103,
    batch(s, e) {
      const n = e - s;
      const x = new Float32Array(n * 6);
      const ids = new BigInt64Array(n * 4);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < 6; j++) x[i * 6 + j] = (s + i) * 10 + j + 0.5;
        for (let j = 0; j < 4; j++) ids[i * 4 + j] = BigInt((s + i) * 100 + j);
      }
      return {
        x: { type: 'float32', dims: [n, 3, 2], data: x },
        ids: { type: 'int64', dims: [n, 4], data: ids },
      } satisfies Record<string, TensorData>;
    },
  };
}

describe('stored splits', () => {
  it('sha256Hex matches the FIPS 180-2 test vector', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('serves every batch exactly as the original loader, across chunk borders', async () => {
    const store = memoryBlobStore();
    const split = fakeSplit();
    // 56 bytes per sample: 10 samples per 600-byte chunk -> 11 chunks.
    const manifest = await packSplit(split, store, 600);
    expect(manifest.chunkSamples).toBe(10);
    expect(manifest.chunks).toHaveLength(11);
    expect(manifest.inputs).toEqual([
      { name: 'x', type: 'float32', dims: [3, 2] },
      { name: 'ids', type: 'int64', dims: [4] },
    ]);
    const stored = storedSplit(manifest, store, { cacheBytes: 2000 });
    for (const [s, e] of [
      [0, 1],
      [7, 33],
      [95, 103],
      [0, 103],
      [50, 51],
    ] as const) {
      const want = await split.batch(s, e);
      const got = await stored.batch(s, e);
      expect(got.x!.dims).toEqual([e - s, 3, 2]);
      expect([...(got.x!.data as Float32Array)]).toEqual([...(want.x!.data as Float32Array)]);
      expect([...(got.ids!.data as BigInt64Array)]).toEqual([...(want.ids!.data as BigInt64Array)]);
    }
    await expect(stored.batch(100, 104)).rejects.toThrow(RangeError);
  });

  it('stores identical chunks once (content-addressed)', async () => {
    const store = memoryBlobStore();
    const a = await packSplit(fakeSplit(), store, 600);
    const b = await packSplit(fakeSplit(), store, 600);
    expect(b.chunks).toEqual(a.chunks);
    expect(store.blobs.size).toBe(11);
  });
});
