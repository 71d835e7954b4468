import { describe, expect, it } from 'vitest';
import { argmaxRows, confusionCounts, correctCount, top1Accuracy } from './classification.ts';

describe('argmaxRows', () => {
  it('takes the maximum of each row of hand-made logits', () => {
    const logits = new Float32Array([0.1, 2.5, -1, 0, /**/ -3, -2, -1, -4, /**/ 7, 1, 1, 1]);
    expect(argmaxRows(logits, 3, 4)).toEqual([1, 2, 0]);
  });
  it('breaks ties by the lowest index, like torch.argmax', () => {
    expect(argmaxRows([1, 3, 3, 0, /**/ 2, 2, 2, 2], 2, 4)).toEqual([1, 0]);
    expect(argmaxRows([-0, 0], 1, 2)).toEqual([0]);
  });
  it('treats NaN as the maximum (first NaN wins), like torch.argmax', () => {
    expect(argmaxRows([1, Number.NaN, 5, Number.NaN], 1, 4)).toEqual([1]);
    expect(argmaxRows([Number.NaN, 9], 1, 2)).toEqual([0]);
  });
  it('handles infinities and zero rows', () => {
    expect(argmaxRows([-Infinity, -Infinity, Infinity], 1, 3)).toEqual([2]);
    expect(argmaxRows([], 0, 10)).toEqual([]);
  });
  it('rejects data that does not fit the shape', () => {
    expect(() => argmaxRows([1, 2, 3], 2, 2)).toThrow(/needs 4 values, got 3/);
    expect(() => argmaxRows([1], 1, 0)).toThrow(RangeError);
  });
});

describe('top-1 accuracy and confusion counts', () => {
  const labels = [0, 1, 2, 2, 1];
  const predictions = [0, 2, 2, 2, 1];
  it('counts correct predictions', () => {
    expect(correctCount(predictions, labels)).toBe(4);
    expect(top1Accuracy(predictions, labels)).toBe(4 / 5);
    expect(top1Accuracy(new Int32Array([3]), new Uint8Array([3]))).toBe(1);
    expect(top1Accuracy([], [])).toBeNaN();
  });
  it('rejects mismatched lengths', () => {
    expect(() => top1Accuracy([0, 1], [0])).toThrow(/2 predictions for 1 labels/);
  });
  it('builds counts[label][prediction]', () => {
    expect(confusionCounts(predictions, labels, 3)).toEqual([
      [1, 0, 0],
      [0, 1, 1],
      [0, 0, 2],
    ]);
    expect(() => confusionCounts([3], [0], 3)).toThrow(/prediction 3/);
  });
});
