import { captureSession, gatherBatch, type SampleSet } from '../calibrate/capture.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import type { Target } from '../formats/targets.ts';
import type { TensorData } from '../tensor/index.ts';
import { buildEmulationModel } from './emulation.ts';
import type { QuantizedLayer } from './layer.ts';
import type { ActivationParams } from './params.ts';
import { roundHalfEven } from './params.ts';
import type { PreparedModel } from './prepare.ts';
import { buildQdqModel } from './qdq.ts';

/** What bias correction changed in one layer. */
export interface BiasCorrection {
  layer: string;
  /** Largest |mean(int8 - fp32)| over the output channels before correction. */
  maxMeanError: number;
  /** Largest |change| of the int32 bias. */
  maxBiasChange: number;
}

/** Axis of output channels in a layer's output tensor. */
export function outputChannelAxis(
  layer: Pick<QuantizedLayer, 'kind' | 'weightSide'>,
  rank: number,
): number {
  if (layer.kind === 'conv') return 1;
  if (layer.kind === 'matmul' && layer.weightSide === 'left') return rank - 2;
  return rank - 1;
}

/**
 * Per-channel sums of (int8 - fp32) over one batch of a layer's output, plus the per-channel
 * element count as the last entry. Summed in element order within the batch; batches are then
 * added in batch order (see {@link correctLayerBias}), so any batch-aligned sharding of the
 * samples gives the same float sums.
 */
export function channelDiffSums(q: TensorData, f: TensorData, axis: number): number[] {
  const dims = f.dims;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const channels = dims[axis]!;
  const sums = new Float64Array(channels);
  const a = q.data as Float32Array;
  const b = f.data as Float32Array;
  for (let i = 0; i < b.length; i++) sums[Math.floor(i / inner) % channels]! += a[i]! - b[i]!;
  return [...sums, b.length / channels];
}

/**
 * Absorbs the mean per-channel error of a layer (from its per-batch {@link channelDiffSums}, in
 * batch order) into its int32 bias, rounded half to even in accumulator units.
 */
export function correctLayerBias(
  layer: QuantizedLayer,
  batches: readonly (readonly number[])[],
): { layer: QuantizedLayer; correction: BiasCorrection } {
  const channels = layer.deqScale.length;
  const sums = new Float64Array(channels);
  let count = 0;
  for (const row of batches) {
    for (let c = 0; c < channels; c++) sums[c]! += row[c]!;
    count += row[channels]!;
  }
  const bias = new Int32Array(layer.bias);
  let maxMeanError = 0;
  let maxBiasChange = 0;
  for (let c = 0; c < channels; c++) {
    const mean = sums[c]! / Math.max(1, count);
    const delta = roundHalfEven(mean / layer.deqScale[c]!);
    bias[c] = Math.max(-2147483648, Math.min(2147483647, bias[c]! - delta));
    maxMeanError = Math.max(maxMeanError, Math.abs(mean));
    maxBiasChange = Math.max(maxBiasChange, Math.abs(delta));
  }
  return {
    layer: { ...layer, bias },
    correction: { layer: layer.name, maxMeanError, maxBiasChange },
  };
}

/**
 * Empirical bias correction: the mean per-channel difference between the INT8 layer output
 * (the target's emulation, or the QDQ model on `cpu-wasm`) and the FP32 layer output over the
 * calibration samples, absorbed into the int32 bias (rounded half to even, in accumulator
 * units). One pass over all layers at once (not layer-sequential).
 */
export async function correctBiases(
  prepared: PreparedModel,
  layers: QuantizedLayer[],
  target: Target,
  source: BatchSource,
  samples: SampleSet,
  outputParams: ReadonlyMap<string, ActivationParams>,
  onProgress?: (done: number, total: number) => void,
): Promise<{ layers: QuantizedLayer[]; corrections: BiasCorrection[] }> {
  const outputs = layers.map((l) => l.output);
  const int8Model =
    target.executor === 'ort-qdq'
      ? buildQdqModel(prepared, layers, target, outputParams)
      : buildEmulationModel(prepared, layers, target);
  const batches: number[][][] = layers.map(() => []);
  const fp32 = await captureSession(prepared.model, outputs);
  const int8 = await captureSession(int8Model, outputs);
  try {
    const batchSize = samples.batchSize ?? 25;
    for (let s = 0; s < samples.indices.length; s += batchSize) {
      const feeds = await gatherBatch(source, samples.indices.slice(s, s + batchSize));
      const ref = await fp32.run(feeds, outputs);
      const out = await int8.run(feeds, outputs);
      layers.forEach((l, i) => {
        const f = ref[l.output]!;
        batches[i]!.push(channelDiffSums(out[l.output]!, f, outputChannelAxis(l, f.dims.length)));
      });
      onProgress?.(Math.min(samples.indices.length, s + batchSize), samples.indices.length);
    }
  } finally {
    await fp32.release();
    await int8.release();
  }
  const results = layers.map((l, i) => correctLayerBias(l, batches[i]!));
  const corrected = results.map((r) => r.layer);
  const corrections = results.map((r) => r.correction);
  return { layers: corrected, corrections };
}
