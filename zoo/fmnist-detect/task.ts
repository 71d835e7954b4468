import {
  type Detection,
  detectionMetrics,
  type GroundTruth,
} from '../../core/metrics/detection.ts';
import { type TensorData, tensor } from '../../core/tensor/index.ts';
import {
  CANVAS_SIZE,
  CANVAS_SPLITS,
  type CanvasItem,
  composeCanvases,
} from '../datasets/canvas.ts';
import { normalisePixels, readFashionMnist } from '../datasets/fashion-mnist.ts';
import type { BenchmarkTask, TaskManifest, TaskSplit } from '../task.ts';
import { decodeDetections, detectionListBytes } from './decode.ts';
import manifestJson from './task.json' with { type: 'json' };

/** The manifest written by train.py. */
export const fmnistDetectManifest = manifestJson as TaskManifest;

/** One detection as the task emits it (serializable): class, score, box in input pixels. */
export type FmnistDetection = Detection;

const PIXELS = CANVAS_SIZE * CANVAS_SIZE;

/**
 * `fmnist-detect`: CenterNet-style detection of 1-4 Fashion-MNIST items on 64x64 canvases
 * composed deterministically (zoo/datasets/canvas.ts). Input `input` float32 [N,1,64,64]
 * (normalisePixels); outputs `heatmap` [N,10,16,16] (sigmoid), `wh` and `offset` [N,2,16,16].
 * Labels are the canvases' ground-truth boxes; predictions are per-canvas detection lists
 * (decode.ts: 3x3 peaks, score >= 0.05, top 20); the score is COCO-style mAP50 / mAP75.
 */
export const fmnistDetectTask: BenchmarkTask<CanvasItem[][], FmnistDetection[]> = {
  manifest: fmnistDetectManifest,

  async load(source, split): Promise<TaskSplit<CanvasItem[][]>> {
    const spec = CANVAS_SPLITS[split];
    const part = await readFashionMnist(source, spec.part);
    const set = composeCanvases(part, spec);
    const size = set.count;
    return {
      split,
      size,
      labels: set.items,
      batch(start: number, end: number): Record<string, TensorData> {
        if (
          !Number.isInteger(start) ||
          !Number.isInteger(end) ||
          start < 0 ||
          end > size ||
          start >= end
        ) {
          throw new RangeError(`fmnist-detect: batch [${start}, ${end}) outside 0..${size}`);
        }
        const x = normalisePixels(set.pixels.subarray(start * PIXELS, end * PIXELS));
        return { input: tensor('float32', [end - start, 1, CANVAS_SIZE, CANVAS_SIZE], x) };
      },
    };
  },

  predict(outputs, batchSize) {
    return decodeDetections(outputs, batchSize);
  },

  // ten heatmap planes, one per Fashion-MNIST class
  predictionBytes: detectionListBytes(10),

  score(predictions, labels: readonly (readonly GroundTruth[])[]) {
    if (predictions.length !== labels.length) {
      throw new RangeError(
        `fmnist-detect: ${predictions.length} predictions for ${labels.length} canvases`,
      );
    }
    return detectionMetrics(predictions, labels);
  },
};
