import { describe, expect, it } from 'vitest';
import { type TensorData, tensor } from '../tensor/index.ts';
import { type BatchRunner, type BatchSource, predictRange } from './predict.ts';

/** A fake model that returns, per sample, the batch size it was executed in. */
const recordingRunner = (): BatchRunner & { batches: [number, number][] } => {
  const batches: [number, number][] = [];
  return {
    batches,
    async run(feeds) {
      const x = feeds.x as TensorData<'float32'>;
      const n = x.dims[0]!;
      batches.push([x.data[0]!, n]);
      return { y: tensor('float32', [n], new Float32Array(n).fill(n)) };
    },
  };
};
const source: BatchSource = {
  size: 23,
  batch: (s, e) => ({
    x: tensor(
      'float32',
      [e - s],
      Float32Array.from({ length: e - s }, (_, i) => s + i),
    ),
  }),
};
const decode = (out: Record<string, TensorData>) => [...(out.y!.data as Float32Array)];

describe('predictRange', () => {
  it('aligns batches to multiples of batchSize so shards execute the batches of a single pass', async () => {
    const whole = recordingRunner();
    const all = await predictRange(whole, source, decode, { batchSize: 10 });
    expect(whole.batches).toEqual([
      [0, 10],
      [10, 10],
      [20, 3],
    ]);
    const shard = recordingRunner();
    const part = await predictRange(shard, source, decode, { start: 5, end: 23, batchSize: 10 });
    expect(shard.batches).toEqual([
      [5, 5],
      [10, 10],
      [20, 3],
    ]);
    expect(part).toEqual(
      all
        .slice(5)
        .map((_, i) => [5, 5, 5, 5, 5, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3, 3, 3][i]),
    );
  });
  it('rejects a range outside the split', async () => {
    await expect(predictRange(recordingRunner(), source, decode, { end: 24 })).rejects.toThrow(
      /outside the split of 23/,
    );
  });
});
