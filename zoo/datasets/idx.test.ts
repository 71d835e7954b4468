import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { readFashionMnist } from './fashion-mnist.ts';
import { IdxFormatError, parseIdx } from './idx.ts';

describe('IDX reader', () => {
  it('parses a hand-made 2x3 file', () => {
    const bytes = new Uint8Array([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
    const idx = parseIdx(bytes);
    expect(idx.dims).toEqual([2, 3]);
    expect([...idx.data]).toEqual([1, 2, 3, 4, 5, 6]);
  });
  it('rejects a truncated body with a readable message', () => {
    const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]);
    expect(() => parseIdx(bytes)).toThrow(IdxFormatError);
    expect(() => parseIdx(bytes)).toThrow(/expected 13 bytes/);
  });
  it('reads the real Fashion-MNIST test split: 10,000 images, known label counts', async () => {
    const part = await readFashionMnist(nodeDataSource(), 'test');
    expect(part.count).toBe(10_000);
    const counts = new Array(10).fill(0);
    for (const l of part.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(1000));
    // First test label of Fashion-MNIST is 9 (ankle boot), a well-known fact of the data set.
    expect(part.labels[0]).toBe(9);
    const digest = createHash('sha256').update(part.images).digest('hex');
    // Same bytes as numpy reads them in zoo/common/fmnist.py (sha256 of the 10000x28x28 array).
    expect(digest).toBe('c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a');
  });
  it('reads the same bytes through DecompressionStream when the source has no inflater of its own', async () => {
    const node = nodeDataSource();
    // What workerd and browsers do: only read() and list(), the reader gunzips.
    const portable = { read: node.read, list: node.list };
    const [a, b] = await Promise.all([
      readFashionMnist(node, 'test'),
      readFashionMnist(portable, 'test'),
    ]);
    expect(b.count).toBe(a.count);
    expect(Buffer.compare(b.images, a.images)).toBe(0);
    expect(Buffer.compare(b.labels, a.labels)).toBe(0);
  });
  it("names the file when the Node source's inflater gets bytes that are not gzip", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cq-idx-'));
    try {
      writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), 'not gzip');
      const source = nodeDataSource({ 'fashion-mnist': dir });
      await expect(
        source.readGunzipped!('fashion-mnist/t10k-labels-idx1-ubyte.gz'),
      ).rejects.toThrow(
        /^dataset file 'fashion-mnist\/t10k-labels-idx1-ubyte.gz' is not valid gzip: /,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
