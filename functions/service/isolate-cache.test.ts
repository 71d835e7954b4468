import { describe, expect, it } from 'vitest';
import { IsolateCache } from './isolate-cache.ts';

describe('IsolateCache', () => {
  it('loads a key once and then serves the value', async () => {
    const cache = new IsolateCache(4);
    let loads = 0;
    const load = async () => ({ n: ++loads });
    const a = await cache.get('k', load);
    const b = await cache.get('k', load);
    expect(loads).toBe(1);
    expect(b).toBe(a);
  });

  it('never hands one caller the load of another still in flight', async () => {
    // The hazard on workerd: the first caller's request ends and its load never settles. A
    // later caller must not wait on it.
    const cache = new IsolateCache(4);
    void cache.get('model', () => new Promise<number>(() => {}));
    const result = await Promise.race([
      cache.get('model', async () => 7),
      new Promise((resolve) => setTimeout(() => resolve('waited on the stranded load'), 1000)),
    ]);
    expect(result).toBe(7);
    expect(await cache.get('model', async () => 8)).toBe(7);
  });

  it('keeps no failed load', async () => {
    const cache = new IsolateCache(4);
    await expect(
      cache.get('k', async () => {
        throw new Error('R2 object k is missing');
      }),
    ).rejects.toThrow('missing');
    expect(cache.size).toBe(0);
    expect(await cache.get('k', async () => 'now there')).toBe('now there');
  });

  it('drops the least recently used entry beyond maxEntries', async () => {
    const cache = new IsolateCache(2);
    await cache.get('a', async () => 'A');
    await cache.get('b', async () => 'B');
    await cache.get('a', async () => 'A2'); // a is now the most recent
    await cache.get('c', async () => 'C'); // evicts b
    expect(cache.size).toBe(2);
    expect(await cache.get('a', async () => 'A3')).toBe('A');
    expect(await cache.get('b', async () => 'B2')).toBe('B2');
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new IsolateCache(0)).toThrow(/positive integer, got 0/);
    expect(() => new IsolateCache(1.5)).toThrow(RangeError);
  });
});
