import { describe, expect, it } from 'vitest';
import type { DataSource } from '../zoo/datasets/source.ts';
import { getTask } from '../zoo/registry.ts';
import { nodeDataSource, recordingDataSource, sharedDataSource } from './data-source.ts';

/** An in-memory source that counts what it is asked. */
function fakeSource() {
  const calls: string[] = [];
  const source: DataSource = {
    async read(name) {
      calls.push(`read ${name}`);
      if (name === 'missing') throw new Error(`dataset file '${name}' not found`);
      return new TextEncoder().encode(`bytes of ${name}`);
    },
    async list(prefix) {
      calls.push(`list ${prefix}`);
      return [`${prefix}/b`, `${prefix}/a`];
    },
    async readGunzipped(name) {
      calls.push(`gunzip ${name}`);
      return new TextEncoder().encode(`inflated ${name}`);
    },
  };
  return { source, calls };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('dataset files shared between threads', () => {
  it('keeps what it read, once each, in SharedArrayBuffers', async () => {
    const { source: base, calls } = fakeSource();
    const { source, kept } = recordingDataSource(base);
    const [a, b] = await Promise.all([source.read('x/1'), source.read('x/1')]);
    expect(text(a)).toBe('bytes of x/1');
    expect(b).toBe(a);
    expect(text(await source.read('x/1'))).toBe('bytes of x/1');
    expect(text(await source.readGunzipped!('x/2.gz'))).toBe('inflated x/2.gz');
    expect(await source.list('x')).toEqual(['x/b', 'x/a']);
    expect(calls).toEqual(['read x/1', 'gunzip x/2.gz', 'list x']);
    expect(kept.files['x/1']!.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(kept.gunzipped['x/2.gz']!.buffer).toBeInstanceOf(SharedArrayBuffer);
    await expect(source.read('missing')).rejects.toThrow("dataset file 'missing' not found");
  });

  it('serves the kept files without the fallback, and the rest from it', async () => {
    const { source: base } = fakeSource();
    const { source, kept } = recordingDataSource(base);
    await source.read('x/1');
    await source.list('x');
    const { source: fallback, calls } = fakeSource();
    const shared = sharedDataSource(kept, fallback);
    expect(text(await shared.read('x/1'))).toBe('bytes of x/1');
    expect(await shared.list('x')).toEqual(['x/b', 'x/a']);
    expect(calls).toEqual([]);
    expect(text(await shared.read('y'))).toBe('bytes of y');
    expect(text(await shared.readGunzipped!('z.gz'))).toBe('inflated z.gz');
    expect(calls).toEqual(['read y', 'gunzip z.gz']);
  });

  it.each(['smoke-fmnist', 'spam-transformer'])(
    '%s loads the same batches from the shared files as from disk',
    async (id) => {
      const task = getTask(id);
      const { source, kept } = recordingDataSource(nodeDataSource());
      const recorded = await task.load(source, 'evaluation');
      // a source with no fallback: every file must come from what was kept
      const noDisk: DataSource = {
        read: async (name) => {
          throw new Error(`read ${name} from disk`);
        },
        list: async (prefix) => {
          throw new Error(`list ${prefix} from disk`);
        },
      };
      const replayed = await task.load(sharedDataSource(kept, noDisk), 'evaluation');
      const direct = await task.load(nodeDataSource(), 'evaluation');
      expect(replayed.size).toBe(direct.size);
      expect(recorded.size).toBe(direct.size);
      for (const at of [0, direct.size - 7]) {
        const a = await replayed.batch(at, at + 7);
        const b = await direct.batch(at, at + 7);
        for (const name of Object.keys(b)) {
          expect(a[name]!.dims).toEqual(b[name]!.dims);
          expect(
            Buffer.from(a[name]!.data.buffer, a[name]!.data.byteOffset, a[name]!.data.byteLength),
          ).toEqual(
            Buffer.from(b[name]!.data.buffer, b[name]!.data.byteOffset, b[name]!.data.byteLength),
          );
        }
      }
    },
    120_000,
  );
});
