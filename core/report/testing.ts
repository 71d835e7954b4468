/**
 * Example data for the report tests and for looking at the page (not exported from an index):
 * a small CNN-like layer list with synthetic FP32 / INT8 outputs, measured with the real
 * accumulation code of core/evaluate/layer-errors.ts.
 */
import {
  emptyLayerErrorSums,
  finalizeLayerErrors,
  type LayerErrorReport,
  observeLayerError,
} from '../evaluate/layer-errors.ts';
import { seededPrng as rng } from '../random.ts';
import { tensor } from '../tensor/index.ts';
import type { LayerMeta } from './heatmap.ts';
import type { ValidationReport } from './html.ts';

interface ExampleLayer {
  name: string;
  /** Output dims for a batch of 4 samples. */
  dims: number[];
  /** Noise level relative to the signal (≈ relative error). */
  level: number;
  /** Channels with 10x the noise. */
  hot?: number[];
  /** Channels whose reference is all zero (dead ReLU channels), with a small INT8 offset. */
  dead?: number[];
  meta?: LayerMeta;
}

export const EXAMPLE_LAYERS: readonly ExampleLayer[] = [
  {
    name: '/stem/conv/Conv',
    dims: [4, 16, 8, 8],
    level: 0.004,
    meta: { opType: 'Conv', tier: 'int8', calibration: 'minmax' },
  },
  {
    name: '/layer1/conv1/Conv',
    dims: [4, 32, 8, 8],
    level: 0.012,
    hot: [5],
    meta: { opType: 'Conv', tier: 'int8', calibration: 'percentile 99.99' },
  },
  {
    name: '/layer1/conv2/Conv',
    dims: [4, 32, 8, 8],
    level: 0.02,
    hot: [3, 17, 30],
    meta: { opType: 'Conv', tier: 'int8', calibration: 'kl' },
  },
  {
    name: '/layer2/depthwise/Conv',
    dims: [4, 64, 4, 4],
    level: 0.085,
    hot: [7],
    dead: [12],
    meta: { opType: 'Conv', tier: 'int8', calibration: 'minmax' },
  },
  {
    name: '<script>&"',
    dims: [4, 8, 4, 4],
    level: 0.0004,
    meta: { opType: 'Conv', tier: 'int8', calibration: 'kl' },
  },
  {
    name: '/layer2/pointwise/Conv',
    dims: [4, 64, 4, 4],
    level: 0.031,
    hot: [40, 41],
    meta: { opType: 'Conv', tier: 'int8', calibration: 'kl' },
  },
  {
    name: '/head/fc/Gemm',
    dims: [4, 10],
    level: 0.6,
    meta: { opType: 'Gemm', tier: 'fp16', keptFloatReason: 'sensitivity above budget' },
  },
  {
    name: '/head/proj/MatMul',
    dims: [4, 6, 24],
    level: 0.0,
    meta: { opType: 'MatMul', tier: 'int8', calibration: 'minmax' },
  },
];

/** The measured example report (threshold 5%). */
export function exampleLayerErrors(): LayerErrorReport {
  const rand = rng(20260425);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const sums = EXAMPLE_LAYERS.map((l) => {
    const spec = { name: l.name, output: `${l.name}_output_0` };
    const s = emptyLayerErrorSums(spec);
    const n = l.dims.reduce((a, b) => a * b, 1);
    const channels = l.dims.length === 4 ? l.dims[1]! : l.dims[l.dims.length - 1]!;
    const inner = l.dims.length === 4 ? l.dims[2]! * l.dims[3]! : 1;
    const ref = new Float32Array(n);
    const q = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(i / inner) % channels;
      const dead = l.dead?.includes(c) ?? false;
      const r = dead ? 0 : gauss() * (1 + (c % 5));
      const hot = l.hot?.includes(c) ? 10 : 1;
      ref[i] = r;
      q[i] = dead ? 0.01 : r + gauss() * l.level * hot * (1 + (c % 5));
    }
    observeLayerError(s, spec, tensor('float32', l.dims, ref), tensor('float32', l.dims, q));
    return s;
  });
  return finalizeLayerErrors(sums);
}

/** The example page input. */
export function exampleValidationReport(): ValidationReport {
  return {
    summary: {
      task: 'smoke-fmnist',
      target: 'ascend-310',
      metric: 'top-1',
      fp32: 0.885,
      int8: 0.881,
      lossPoints: 0.4,
      samples: 1000,
    },
    layerErrors: exampleLayerErrors(),
    metadata: Object.fromEntries(EXAMPLE_LAYERS.map((l) => [l.name, l.meta ?? {}])),
    footer: 'Example data (synthetic) from core/report/testing.ts',
  };
}
