import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { tensor } from '../../core/tensor/index.ts';
import type { TaskSplit } from '../task.ts';
import { spamTransformerTask as task } from './task.ts';

describe('spam-transformer task', () => {
  let evaluation: TaskSplit<Uint8Array>;
  let calibration: TaskSplit<Uint8Array>;

  beforeAll(async () => {
    const source = nodeDataSource();
    [evaluation, calibration] = await Promise.all([
      task.load(source, 'evaluation'),
      task.load(source, 'calibration'),
    ]);
  });

  it('tokenizes the evaluation split exactly as train.py did (sha256 of int64 ids)', () => {
    const { input_ids } = evaluation.batch(0, evaluation.size);
    expect(input_ids?.type).toBe('int64');
    expect(input_ids?.dims).toEqual([3046, 128]);
    const bytes = new Uint8Array((input_ids!.data as BigInt64Array).buffer);
    const digest = createHash('sha256').update(bytes).digest('hex');
    expect(digest).toBe(task.manifest.dataset.tokenSha256);
  });

  it('has the documented split sizes and label counts', () => {
    expect(evaluation.size).toBe(task.manifest.splits.evaluation.size);
    expect(calibration.size).toBe(task.manifest.splits.calibration.size);
    expect(evaluation.size).toBe(3046);
    expect(calibration.size).toBe(300);
    const spam = (l: Uint8Array): number => l.reduce((a, b) => a + b, 0);
    expect(spam(evaluation.labels)).toBe(1396);
    expect(spam(calibration.labels)).toBe(50);
  });

  it('batches rows of the split', () => {
    const b = calibration.batch(3, 5).input_ids!;
    expect(b.dims).toEqual([2, 128]);
    const all = calibration.batch(0, calibration.size).input_ids!;
    expect(Array.from(b.data as BigInt64Array)).toEqual(
      Array.from((all.data as BigInt64Array).subarray(3 * 128, 5 * 128)),
    );
    expect((b.data as BigInt64Array)[0]).toBe(1n);
    expect(() => calibration.batch(0, calibration.size + 1)).toThrow(RangeError);
  });

  it('predicts argmax (ties to ham) and scores F1 of spam', () => {
    const logits = tensor('float32', [3, 2], new Float32Array([0, 1, 2, -1, 0.5, 0.5]));
    expect(task.predict({ logits }, 3)).toEqual([1, 0, 0]);
    expect(() => task.predict({ logits }, 2)).toThrow(RangeError);
    // TP 1, FP 0, FN 1, TN 1.
    expect(task.score([1, 0, 0], new Uint8Array([1, 1, 0]))).toEqual({
      f1_spam: 2 / 3,
      accuracy: 2 / 3,
      precision: 1,
      recall: 0.5,
    });
  });
});
