import { describe, expect, it } from 'vitest';
import {
  decodeShardOutput,
  encodeShardOutput,
  float32JsonBytes,
  NUMBER_JSON_BYTES,
  PhasePending,
  replayExecutor,
  ShardDone,
} from './replay.ts';

describe('shard output codec', () => {
  it('restores typed arrays bit for bit and the numbers JSON loses', () => {
    const f32 = new Float32Array([1.5, -0, Number.NaN, 3.4028234663852886e38, 1e-45]);
    const value = {
      counts: [0, 1, 2],
      range: { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, zero: -0 },
      nan: Number.NaN,
      f32,
      i32: new Int32Array([-2147483648, 2147483647]),
      sub: new Uint8Array([9, 8, 7, 6]).subarray(1, 3),
      big: 2n ** 70n,
      text: 'a$num',
      nested: [[0.1, 0.2], null, true],
    };
    const back = decodeShardOutput(encodeShardOutput(value)) as typeof value;
    expect(back.counts).toEqual([0, 1, 2]);
    expect(back.range.min).toBe(Number.POSITIVE_INFINITY);
    expect(back.range.max).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(back.range.zero, -0)).toBe(true);
    expect(Number.isNaN(back.nan)).toBe(true);
    expect(back.f32).toBeInstanceOf(Float32Array);
    expect(new Uint8Array(back.f32.buffer)).toEqual(new Uint8Array(f32.buffer));
    expect([...back.i32]).toEqual([-2147483648, 2147483647]);
    expect(back.sub).toBeInstanceOf(Uint8Array);
    expect([...back.sub]).toEqual([8, 7]);
    expect(back.big).toBe(2n ** 70n);
    expect(back.text).toBe('a$num');
    expect(back.nested).toEqual([[0.1, 0.2], null, true]);
  });

  it('bounds the text of a number and sizes a Float32Array exactly', () => {
    // doubles of every exponent, with random significands (a fixed LCG): never over the bound
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const bits = new DataView(new ArrayBuffer(8));
    let longest = 0;
    for (let i = 0; i < 200_000; i++) {
      bits.setUint32(0, next());
      bits.setUint32(4, next());
      const x = bits.getFloat64(0);
      longest = Math.max(longest, encodeShardOutput(x).length);
    }
    expect(longest).toBeLessThanOrEqual(NUMBER_JSON_BYTES);
    expect(encodeShardOutput(-0.0000012345678901234567).length).toBe(NUMBER_JSON_BYTES);
    for (const v of [Number.NaN, Number.NEGATIVE_INFINITY, -0, -Number.MAX_VALUE, -5e-324])
      expect(encodeShardOutput(v).length).toBeLessThanOrEqual(NUMBER_JSON_BYTES);
    for (const n of [0, 1, 2, 3, 4, 10, 2560])
      expect(encodeShardOutput(new Float32Array(n)).length).toBe(float32JsonBytes(n));
  });

  it('rejects values that would not survive the trip', () => {
    expect(() => encodeShardOutput({ m: new Map() })).toThrow(/not a plain object/);
    expect(() => encodeShardOutput({ f: () => 1 })).toThrow(/functions/);
  });
});

describe('replay executor', () => {
  const run = async (x: number) => x * 10;

  it('serves cached phases and stops at the first unfinished one', async () => {
    const exec = replayExecutor({ cache: new Map([['a', [10, 20]]]) });
    expect(await exec('a', [1, 2], run)).toEqual([10, 20]);
    await expect(exec('b', [1, 2, 3], run)).rejects.toMatchObject({
      name: 'PhasePending',
      phase: 'b',
      shards: 3,
    });
    await expect(exec('a', [1, 2], run)).rejects.toThrow(/reached twice/);
  });

  it('runs exactly the assigned shard', async () => {
    const exec = replayExecutor({ cache: new Map(), shard: { phase: 'a', index: 1 } });
    const err = await exec('a', [1, 2, 3], run).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardDone);
    expect(err).toMatchObject({ phase: 'a', index: 1, shards: 3, output: 20 });
    const bad = replayExecutor({ cache: new Map(), shard: { phase: 'a', index: 5 } });
    await expect(bad('a', [1], run)).rejects.toThrow(RangeError);
  });

  it('refuses a cache planned for another shard count, or a missing earlier phase', async () => {
    const exec = replayExecutor({ cache: new Map([['a', [10]]]) });
    await expect(exec('a', [1, 2], run)).rejects.toThrow(/cached outputs/);
    const worker = replayExecutor({ cache: new Map(), shard: { phase: 'b', index: 0 } });
    const err = await worker('a', [1], run).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(PhasePending);
    expect(String(err)).toMatch(/before the assigned phase/);
  });
});
