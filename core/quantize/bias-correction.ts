import { captureSession, gatherBatch, type SampleSet } from '../calibrate/capture.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import type { Target } from '../formats/targets.ts';
import { makeAttrInt, makeNode } from '../onnx/builder.ts';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/gen/onnx_pb.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import type { TensorData } from '../tensor/index.ts';
import { buildEmulationModel, emulatedInputName } from './emulation.ts';
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
  /**
   * Largest |change| of the bias: in accumulator units (the int32 bias), or in output units
   * (the float bias of a dynamic layer).
   */
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
 *
 * `partial`: the sums of the batch's earlier samples (this function's result for them). The
 * batch may be executed in parts of whole samples: continuing the same float64 sums in the same
 * element order, the parts give the very sums of the whole batch.
 */
export function channelDiffSums(
  q: TensorData,
  f: TensorData,
  axis: number,
  partial?: readonly number[],
): number[] {
  const dims = f.dims;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const channels = dims[axis]!;
  const sums = new Float64Array(channels);
  if (partial !== undefined) {
    if (partial.length !== channels + 1)
      throw new RangeError(
        `channelDiffSums: partial sums of ${partial.length - 1} channels for ${channels}`,
      );
    sums.set(partial.slice(0, channels));
  }
  const a = q.data as Float32Array;
  const b = f.data as Float32Array;
  for (let i = 0; i < b.length; i++) sums[Math.floor(i / inner) % channels]! += a[i]! - b[i]!;
  return [...sums, (partial?.[channels] ?? 0) + b.length / channels];
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
  // A dynamic layer's bias is float (its scales are not known before it runs): corrected there.
  const floatBias = layer.floatBias ? new Float64Array(layer.floatBias) : undefined;
  let maxMeanError = 0;
  let maxBiasChange = 0;
  for (let c = 0; c < channels; c++) {
    const mean = sums[c]! / Math.max(1, count);
    maxMeanError = Math.max(maxMeanError, Math.abs(mean));
    if (floatBias) {
      floatBias[c]! -= mean;
      maxBiasChange = Math.max(maxBiasChange, Math.abs(mean));
      continue;
    }
    const delta = roundHalfEven(mean / layer.deqScale[c]!);
    bias[c] = Math.max(-2147483648, Math.min(2147483647, bias[c]! - delta));
    maxBiasChange = Math.max(maxBiasChange, Math.abs(delta));
  }
  return {
    layer: floatBias ? { ...layer, floatBias } : { ...layer, bias },
    correction: { layer: layer.name, maxMeanError, maxBiasChange },
  };
}

/** A layer's INT8 output and its float reference, both tensors of one bias-correction model. */
export interface BiasCorrectionPair {
  layer: QuantizedLayer;
  /** The layer's INT8 output (dequantized), as the target computes it. */
  int8: string;
  /** The FP32 layer applied to the very input the INT8 layer received. */
  reference: string;
}

/**
 * The INT8 model of the target as it computes (its emulation, with every layer's clamped float
 * input kept as a tensor, or the QDQ model on `cpu-wasm`) and the name of each layer's input in
 * it: what the layer quantizes, after the upstream layers' INT8 arithmetic. Bias correction and
 * GPTQ rounding (core/pipeline/run.ts) read layers' inputs from it.
 */
export function quantizedPathModel(
  prepared: PreparedModel,
  layers: readonly QuantizedLayer[],
  target: Target,
  outputParams: ReadonlyMap<string, ActivationParams>,
): { model: ModelProto; inputOf: (input: string) => string } {
  if (target.executor === 'ort-qdq')
    return { model: buildQdqModel(prepared, layers, target, outputParams), inputOf: (i) => i };
  const model = buildEmulationModel(prepared, layers, target, { absorbClamps: false });
  return { model, inputOf: (i) => emulatedInputName(model, i) };
}

/**
 * The INT8 model of the target (its emulation, or the QDQ model on `cpu-wasm`) with, beside
 * every quantized layer, a float copy of that layer reading the same (quantized-path) input.
 *
 * Comparing each layer against this copy measures the layer's own quantization error only.
 * Comparing it against the FP32 model instead (what the first version did) also counts the mean
 * shift the layer's input carries from upstream layers; those layers correct that shift
 * themselves, so a single pass corrected it twice. With int4 weights that double counting cost
 * fmnist-mobilenet 15 points (docs/CALIBRATION.md).
 */
export function buildBiasCorrectionModel(
  prepared: PreparedModel,
  layers: readonly QuantizedLayer[],
  target: Target,
  outputParams: ReadonlyMap<string, ActivationParams>,
): { model: ModelProto; pairs: BiasCorrectionPair[] } {
  // the float reference layers below read each layer's clamped input itself
  const { model, inputOf } = quantizedPathModel(prepared, layers, target, outputParams);
  const graph = model.graph!;
  const candidates = new Map(prepared.layers.map((c) => [c.name, c]));
  const pairs: BiasCorrectionPair[] = [];
  for (const layer of layers) {
    const c = candidates.get(layer.name);
    if (!c) throw new RangeError(`bias correction: '${layer.name}' is not a layer of the model`);
    const ref = floatLayer(c, inputOf(c.input), `${c.output}__float_ref`);
    graph.node.push(...ref.nodes);
    graph.initializer.push(...ref.initializers);
    pairs.push({ layer, int8: layer.output, reference: ref.output });
  }
  return { model, pairs };
}

/** The FP32 layer of a candidate as ONNX nodes over `input` (weights folded as prepared). */
function floatLayer(
  c: PreparedModel['layers'][number],
  input: string,
  output: string,
): { nodes: NodeProto[]; initializers: TensorProto[]; output: string } {
  const w = `${output}__w`;
  const b = `${output}__b`;
  const initializers = [
    tensorToProto(w, { type: 'float32', dims: [...c.weight.dims], data: c.weight.data }),
    tensorToProto(b, { type: 'float32', dims: [c.bias.length], data: c.bias }),
  ];
  if (c.kind === 'conv')
    return {
      nodes: [makeNode('Conv', [input, w, b], [output], [...c.nodes[0]!.attribute])],
      initializers,
      output,
    };
  if (c.kind === 'gemm')
    return {
      nodes: [makeNode('Gemm', [input, w, b], [output], [makeAttrInt('transB', 1)])],
      initializers,
      output,
    };
  // A left-constant MatMul has no folded bias (prepare.ts); a right one adds it per column.
  if (c.weightSide === 'left')
    return { nodes: [makeNode('MatMul', [w, input], [output])], initializers, output };
  return {
    nodes: [
      makeNode('MatMul', [input, w], [`${output}__mm`]),
      makeNode('Add', [`${output}__mm`, b], [output]),
    ],
    initializers,
    output,
  };
}

/**
 * Empirical bias correction: the mean per-channel difference between each INT8 layer's output
 * and the FP32 layer applied to the same input ({@link buildBiasCorrectionModel}) over the
 * calibration samples, absorbed into the int32 bias (rounded half to even, in accumulator
 * units). One pass over all layers at once.
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
  const { model, pairs } = buildBiasCorrectionModel(prepared, layers, target, outputParams);
  const outputs = pairs.flatMap((p) => [p.int8, p.reference]);
  const batches: number[][][] = layers.map(() => []);
  const session = await captureSession(model, outputs);
  try {
    const batchSize = samples.batchSize ?? 25;
    for (let s = 0; s < samples.indices.length; s += batchSize) {
      const feeds = await gatherBatch(source, samples.indices.slice(s, s + batchSize));
      const out = await session.run(feeds, outputs);
      pairs.forEach((p, i) => {
        const f = out[p.reference]!;
        batches[i]!.push(
          channelDiffSums(out[p.int8]!, f, outputChannelAxis(p.layer, f.dims.length)),
        );
      });
      onProgress?.(Math.min(samples.indices.length, s + batchSize), samples.indices.length);
    }
  } finally {
    await session.release();
  }
  const results = layers.map((l, i) => correctLayerBias(l, batches[i]!));
  const corrected = results.map((r) => r.layer);
  const corrections = results.map((r) => r.correction);
  return { layers: corrected, corrections };
}
