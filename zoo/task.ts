import type { TensorData } from '../core/tensor/index.ts';
import type { DataSource } from './datasets/source.ts';

/** The two splits every benchmark task exposes. Recipes only ever see `calibration`. */
export type SplitName = 'calibration' | 'evaluation';

/** The task manifest (zoo/<id>/task.json), the single description of a benchmark task. */
export interface TaskManifest {
  id: string;
  title: string;
  kind: 'image-classification' | 'text-classification' | 'detection' | 'smoke';
  model: {
    file: string;
    sha256: string;
    parameters: number;
    inputs: { name: string; type: string; dims: (number | string)[] }[];
    outputs: { name: string; type: string; dims: (number | string)[] }[];
    opset: number;
  };
  dataset: {
    name: string;
    source: string;
    licence: string;
    files: string[];
    /**
     * sha256 of the evaluation split's model input ids as an int64 little-endian [N, L] matrix,
     * recorded by the Python training pipeline; the TS loader must reproduce it exactly.
     */
    tokenSha256?: string;
    /**
     * Detection canvases (fmnist-detect): sha256 of the evaluation split's composed canvases
     * ([N, 64, 64] uint8, row-major), recorded by the Python composer; the TS composer must
     * reproduce it exactly.
     */
    canvasSha256?: string;
    /** sha256 of the evaluation ground truth: int32 little-endian rows (canvas, cls, x1, y1, x2, y2). */
    boxesSha256?: string;
    /** Definition of each canvas split: Fashion-MNIST part, image range, seed, canvas count. */
    canvasSplits?: Record<
      string,
      { part: string; start: number; count: number; seed: number; canvases: number }
    >;
  };
  preprocessing: string;
  metric: { primary: string; reported: string[]; higherIsBetter: true; definition: string };
  splits: Record<SplitName, { source: string; size: number; description: string }>;
  reference: {
    fp32: Record<string, number>;
    samples: number;
    recordedBy: string;
    /** sha256 of the fp32 argmax predictions over the evaluation split, int32 little-endian. */
    predictionsSha256?: string;
  };
  training: {
    script: string;
    command: string;
    framework: string;
    seed: number;
    epochs: number;
    seconds: number;
    notes: string;
  };
  /** Measured INT8 results of named recipes, filled in by later issues. */
  int8?: Record<string, unknown>;
}

/** One split of a task, loaded: batches of model inputs on demand, labels kept aside. */
export interface TaskSplit<L = unknown> {
  split: SplitName;
  size: number;
  /** Model inputs for samples [start, end), stacked along the batch dimension. */
  batch(start: number, end: number): Record<string, TensorData>;
  /** Ground truth, indexed like the samples. Never exposed by the service. */
  labels: L;
}

/** A benchmark task: how to load its data, read predictions off the model and score them. */
export interface BenchmarkTask<L = unknown, P = unknown> {
  manifest: TaskManifest;
  load(source: DataSource, split: SplitName): Promise<TaskSplit<L>>;
  /**
   * Turns one batch of model outputs into per-sample predictions (serializable, so shards can
   * emit them and a reduce can score them).
   */
  predict(outputs: Record<string, TensorData>, batchSize: number): P[];
  /**
   * Bound of one prediction's bytes in a shard output (core/pipeline/replay.ts
   * encodeShardOutput), for tasks whose predictions take more than a few bytes (fmnist-detect's
   * detection lists): the pipeline sizes its prediction ranges by it to keep every shard output
   * under 1 MiB. Omitted: a class index or a number.
   */
  predictionBytes?: number;
  /** Scores predictions for the whole split: `{ [metricName]: value }`, primary included. */
  score(predictions: P[], labels: L): Record<string, number>;
}
