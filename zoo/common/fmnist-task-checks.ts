/**
 * Shared vitest checks for the Fashion-MNIST classification tasks (used by zoo/<id>/task.test.ts).
 * Expected values were computed with numpy through zoo/common/fmnist.py `normalise()`.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import type { TensorData } from '../../core/tensor/index.ts';
import type { ImageClassificationTask } from '../image-classification.ts';
import type { SplitName } from '../task.ts';

/** What numpy says about one split. */
export interface SplitExpectation {
  size: number;
  firstLabels: number[];
  labelCounts: number[];
  /** sha256 of normalise(images[0:50]) as float32 little-endian. */
  first50Sha256: string;
  /** sha256 of normalise(images[size-10:size]) as float32 little-endian. */
  last10Sha256: string;
  /** [sample, flat pixel index, normalised value] */
  values: [number, number, number][];
}

// Exact values from numpy (same for every task: splits share their start).
const CALIBRATION_VALUES: [number, number, number][] = [
  [0, 0, -0.8101983666419983],
  [0, 400, 0.022996164858341217],
  [1, 500, 1.4671999216079712],
  [49, 783, -0.8101983666419983],
];
const EVALUATION_VALUES: [number, number, number][] = [
  [0, 0, -0.8101983666419983],
  [0, 400, -0.7990891337394714],
  [1, 500, 0.27850914001464844],
  [49, 783, -0.8101983666419983],
];
export const CALIBRATION_COMMON = {
  firstLabels: [0, 8, 0, 6, 5],
  first50Sha256: '9b3f1ff79b74541375201d4b4ac21c8e102ac854136504d062bbbb7a0a8d154e',
  values: CALIBRATION_VALUES,
};
export const EVALUATION_COMMON = {
  firstLabels: [9, 2, 1, 1, 6],
  first50Sha256: 'a34399148ba6a46a647c7f072cd11843c74647d4155f2af1c622da84b8e3b346',
  values: EVALUATION_VALUES,
};

function sha256(data: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex');
}

/** Registers the data checks of one task. */
export function describeFashionMnistTask(
  task: ImageClassificationTask,
  expected: Record<SplitName, SplitExpectation>,
): void {
  describe(`${task.manifest.id}: splits`, () => {
    for (const split of ['calibration', 'evaluation'] as const) {
      it(`loads the ${split} split as numpy does`, async () => {
        const want = expected[split];
        const s = await task.load(nodeDataSource(), split);
        expect(s.split).toBe(split);
        expect(s.size).toBe(want.size);
        expect(task.manifest.splits[split].size).toBe(want.size);
        expect(s.labels.length).toBe(want.size);
        expect([...s.labels.subarray(0, 5)]).toEqual(want.firstLabels);
        const counts = new Array(10).fill(0);
        for (const l of s.labels) counts[l]++;
        expect(counts).toEqual(want.labelCounts);

        const inputName = task.manifest.model.inputs[0]!.name;
        const first = s.batch(0, 50)[inputName] as TensorData<'float32'>;
        expect(first.type).toBe('float32');
        expect(first.dims).toEqual([50, 1, 28, 28]);
        expect(sha256(first.data)).toBe(want.first50Sha256);
        for (const [sample, pixel, value] of want.values) {
          expect(first.data[sample * 784 + pixel]).toBe(value);
        }
        const last = s.batch(want.size - 10, want.size)[inputName] as TensorData<'float32'>;
        expect(last.dims).toEqual([10, 1, 28, 28]);
        expect(sha256(last.data)).toBe(want.last10Sha256);
        expect(() => s.batch(want.size - 1, want.size + 1)).toThrow(RangeError);
      });
    }
  });

  describe(`${task.manifest.id}: predictions and score`, () => {
    it('takes the argmax of the logits and scores top-1', () => {
      const outputName = task.manifest.model.outputs[0]!.name;
      const logits = new Float32Array(20);
      logits[3] = 1; // sample 0 -> class 3
      logits[10 + 7] = 2; // sample 1 -> class 7
      logits[10 + 8] = 2; // tie: lowest index wins
      const predictions = task.predict(
        { [outputName]: { type: 'float32', dims: [2, 10], data: logits } },
        2,
      );
      expect(predictions).toEqual([3, 7]);
      expect(task.score(predictions, new Uint8Array([3, 1]))).toEqual({ top1: 0.5 });
      expect(() =>
        task.predict({ [outputName]: { type: 'float32', dims: [2, 10], data: logits } }, 3),
      ).toThrow(/want float32\[3,10\]/);
    });
    it('has a manifest with an FP32 reference', () => {
      const m = task.manifest;
      expect(m.reference.samples).toBe(expected.evaluation.size);
      expect(m.reference.fp32.top1).toBeGreaterThan(0);
      expect(m.reference.predictionsSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(m.model.inputs[0]).toEqual({ name: 'input', type: 'float', dims: ['N', 1, 28, 28] });
      expect(m.model.outputs[0]).toEqual({ name: 'logits', type: 'float', dims: ['N', 10] });
      expect(m.model.opset).toBe(13);
    });
  });
}
