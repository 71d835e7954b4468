import {
  fashionMnistClassificationTask,
  type ImageClassificationTask,
} from '../image-classification.ts';
import type { TaskManifest } from '../task.ts';
import manifest from './task.json' with { type: 'json' };

/** smoke-fmnist: see task.json (written by train.py) for the model, splits and FP32 reference. */
export const smokeFmnist: ImageClassificationTask = fashionMnistClassificationTask(
  manifest as TaskManifest,
  {
    calibration: { part: 'train', start: 55_000, count: 500 },
    evaluation: { part: 'test', start: 0, count: 1_000 },
  },
);
