/**
 * The factory behind the zoo's Fashion-MNIST image-classification tasks (fmnist-resnet,
 * fmnist-mobilenet, smoke-fmnist). Splits mirror zoo/common/trainer.py: models train on
 * training images 0..54999, calibrate on held-out training images from 55000, and are evaluated
 * on the t10k test set.
 */
import { argmaxRows, top1Accuracy } from '../core/metrics/classification.ts';
import { type TensorData, tensor } from '../core/tensor/index.ts';
import {
  FASHION_MNIST_CLASSES,
  type FashionMnistPart,
  normalisePixels,
  readFashionMnist,
} from './datasets/fashion-mnist.ts';
import type { DataSource } from './datasets/source.ts';
import type { BenchmarkTask, SplitName, TaskManifest, TaskSplit } from './task.ts';

const PIXELS = 28 * 28;

/** Images [start, start + count) of one Fashion-MNIST part. */
export interface ImageRange {
  part: 'train' | 'test';
  start: number;
  count: number;
}

/** The standard splits: 5,000 held-out training images and the full 10,000-image test set. */
export const FMNIST_SPLITS: Readonly<Record<SplitName, ImageRange>> = {
  calibration: { part: 'train', start: 55_000, count: 5_000 },
  evaluation: { part: 'test', start: 0, count: 10_000 },
};

/** Predictions are class indices; labels are the uint8 Fashion-MNIST labels of the split. */
export type ImageClassificationTask = BenchmarkTask<Uint8Array, number>;

/**
 * Builds a Fashion-MNIST classification task whose model takes normalised `[N,1,28,28]`
 * float32 images (input and output names from the manifest) and returns `[N,10]` logits.
 * Predictions are the argmax class (ties to the lowest index, like torch.argmax); the score is
 * `{ top1 }` as a fraction. Throws if the manifest's split sizes disagree with `splits`.
 */
export function fashionMnistClassificationTask(
  manifest: TaskManifest,
  splits: Readonly<Record<SplitName, ImageRange>> = FMNIST_SPLITS,
): ImageClassificationTask {
  const firstInput = manifest.model.inputs[0]?.name;
  const firstOutput = manifest.model.outputs[0]?.name;
  if (!firstInput || !firstOutput) {
    throw new Error(`task ${manifest.id}: the manifest names no model input or output`);
  }
  const inputName: string = firstInput;
  const outputName: string = firstOutput;
  for (const name of ['calibration', 'evaluation'] as const) {
    const range = splits[name];
    if (manifest.splits[name].size !== range.count) {
      throw new Error(
        `task ${manifest.id}: manifest says the ${name} split has ${manifest.splits[name].size} samples, the task loads ${range.count}`,
      );
    }
  }
  const classes = FASHION_MNIST_CLASSES.length;

  return {
    manifest,

    async load(source: DataSource, split: SplitName): Promise<TaskSplit<Uint8Array>> {
      const range = splits[split];
      const part = await readFashionMnist(source, range.part);
      return imageSplit(part, split, range);
    },

    predict(outputs: Record<string, TensorData>, batchSize: number): number[] {
      const logits = outputs[outputName];
      if (!logits) {
        throw new Error(
          `task ${manifest.id}: model outputs lack '${outputName}' (got ${Object.keys(outputs).join(', ')})`,
        );
      }
      if (
        logits.type !== 'float32' ||
        logits.dims.length !== 2 ||
        logits.dims[0] !== batchSize ||
        logits.dims[1] !== classes
      ) {
        throw new Error(
          `task ${manifest.id}: '${outputName}' is ${logits.type}[${logits.dims.join(',')}], want float32[${batchSize},${classes}]`,
        );
      }
      return argmaxRows(logits.data as Float32Array, batchSize, classes);
    },

    score(predictions: number[], labels: Uint8Array): Record<string, number> {
      return { top1: top1Accuracy(predictions, labels) };
    },
  };

  function imageSplit(
    part: FashionMnistPart,
    split: SplitName,
    range: ImageRange,
  ): TaskSplit<Uint8Array> {
    const { start, count } = range;
    if (start < 0 || start + count > part.count) {
      throw new RangeError(
        `task ${manifest.id}: ${split} split [${start}, ${start + count}) is outside Fashion-MNIST ${range.part} (${part.count} images)`,
      );
    }
    const images = part.images.subarray(start * PIXELS, (start + count) * PIXELS);
    return {
      split,
      size: count,
      labels: part.labels.slice(start, start + count),
      batch(from: number, to: number): Record<string, TensorData> {
        if (
          !Number.isInteger(from) ||
          !Number.isInteger(to) ||
          from < 0 ||
          to > count ||
          from >= to
        ) {
          throw new RangeError(
            `task ${manifest.id}: batch [${from}, ${to}) is outside the ${split} split of ${count}`,
          );
        }
        const pixels = images.subarray(from * PIXELS, to * PIXELS);
        return { [inputName]: tensor('float32', [to - from, 1, 28, 28], normalisePixels(pixels)) };
      },
    };
  }
}
