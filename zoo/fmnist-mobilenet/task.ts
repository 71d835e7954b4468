import {
  fashionMnistClassificationTask,
  type ImageClassificationTask,
} from '../image-classification.ts';
import type { TaskManifest } from '../task.ts';
import manifest from './task.json' with { type: 'json' };

/** fmnist-mobilenet: see task.json (written by train.py) for the model, splits and FP32 reference. */
export const fmnistMobilenet: ImageClassificationTask = fashionMnistClassificationTask(
  manifest as TaskManifest,
);
