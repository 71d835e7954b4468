import { collectStats, type SampleSet } from '../calibrate/capture.ts';
import type { ClipRange, MethodName } from '../calibrate/methods.ts';
import { clipRange } from '../calibrate/methods.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import type { Target, TensorScheme } from '../formats/targets.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { type BiasCorrection, correctBiases } from './bias-correction.ts';
import { buildEmulationModel } from './emulation.ts';
import type { QuantizedLayer } from './layer.ts';
import { type ActivationParams, activationParams, roundHalfEven } from './params.ts';
import {
  type LayerCandidate,
  type PreparedModel,
  prepareModel,
  type SkippedLayer,
} from './prepare.ts';
import { buildQdqModel } from './qdq.ts';
import { quantizeWeight } from './weights.ts';

/** How to calibrate one layer's input activation. */
export interface LayerMethod {
  method: MethodName;
  percentile?: number;
}

/** Options of {@link quantizeModel}. */
export interface QuantizeOptions {
  target: Target;
  /** Default calibration method of activations (default percentile 99.99). */
  method?: LayerMethod;
  /** Per-layer method overrides (by layer name), e.g. from sensitivity tiers. */
  layerMethods?: Readonly<Record<string, LayerMethod>>;
  /** Layers kept in float (by name). */
  keepFloat?: readonly string[];
  /** Weight granularity override (default: the target's scheme). */
  weightGranularity?: 'per-channel' | 'per-tensor';
  /** Activation symmetry override (default: the target's scheme). */
  symmetricActivations?: boolean;
  /** Empirical bias correction over the calibration samples (default true). */
  biasCorrection?: boolean;
  /** Calibration samples (indices into the calibration split). */
  samples: SampleSet;
  onProgress?: (phase: string, done: number, total: number) => void;
}

/** Everything quantization produced, for formats, validation and reports. */
export interface QuantizationResult {
  target: Target['id'];
  prepared: PreparedModel;
  layers: QuantizedLayer[];
  skipped: SkippedLayer[];
  /** Clip range chosen per layer input (by layer name). */
  clips: Record<string, ClipRange & { method: MethodName; min: number; max: number }>;
  biasCorrection: BiasCorrection[];
  /** The model the target's emulator executes (for `cpu-wasm`: the QDQ model). */
  emulation: ModelProto;
  /** Standard QDQ model with the target's integer scheme. */
  qdq: ModelProto;
  calibrationSamples: number;
}

/** Number of distinct (scale, zero-point) parameter sets in a quantization result. */
export function parameterSets(result: Pick<QuantizationResult, 'layers'>): number {
  const acts = new Set(result.layers.map((l) => `${l.input}|${l.act.scale}|${l.act.zeroPoint}`));
  return acts.size + result.layers.reduce((n, l) => n + l.weight.scales.length, 0);
}

/** Quantizes one layer from its activation parameters (weights, int32 bias, deq scales). */
export function quantizeLayer(
  c: LayerCandidate,
  act: ActivationParams,
  scheme: TensorScheme,
  target: Target['id'],
): QuantizedLayer {
  const weight = quantizeWeight(c.weight, scheme);
  const channels = c.weight.dims[c.weight.axis]!;
  const deqScale = new Float64Array(channels);
  const bias = new Int32Array(channels);
  for (let ch = 0; ch < channels; ch++) {
    const sw = weight.scales[weight.scales.length === 1 ? 0 : ch]!;
    deqScale[ch] = act.scale * sw;
    const b = roundHalfEven(c.bias[ch]! / deqScale[ch]!);
    bias[ch] = Math.max(-2147483648, Math.min(2147483647, b));
  }
  return {
    name: c.name,
    kind: c.kind,
    input: c.input,
    output: c.output,
    act,
    weight,
    ...(c.weightSide ? { weightSide: c.weightSide } : {}),
    bias,
    deqScale,
    ...(c.conv ? { conv: c.conv } : {}),
    fusedRelu: false,
    target,
  };
}

/**
 * Post-training quantization of a float model for a target: BN folding, activation statistics
 * over the calibration samples, clip ranges by method, per-channel (or per-tensor) weights,
 * int32 biases, optional empirical bias correction, then the emulation model and the QDQ model.
 */
export async function quantizeModel(
  model: ModelProto,
  source: BatchSource,
  options: QuantizeOptions,
): Promise<QuantizationResult> {
  const { target } = options;
  const prepared = prepareModel(model, target);
  const keep = new Set(options.keepFloat ?? []);
  const skipped = [...prepared.skipped];
  const candidates = prepared.layers.filter((c) => {
    if (keep.has(c.name))
      skipped.push({
        name: c.name,
        opType: c.nodes[0]!.opType,
        reason: 'kept in float by the recipe',
      });
    return !keep.has(c.name);
  });
  const tensors = [
    ...new Set([...candidates.map((c) => c.input), ...candidates.map((c) => c.output)]),
  ];
  const stats = await collectStats(prepared.model, source, options.samples, tensors, {
    onProgress: (d, t) => options.onProgress?.('calibrate', d, t),
  });
  const actScheme: TensorScheme = {
    ...target.activations,
    ...(options.symmetricActivations !== undefined
      ? { symmetric: options.symmetricActivations }
      : {}),
  };
  const wScheme: TensorScheme = {
    ...target.weights,
    ...(options.weightGranularity ? { granularity: options.weightGranularity } : {}),
  };
  const clips: QuantizationResult['clips'] = {};
  const defaultMethod = options.method ?? { method: 'percentile', percentile: 99.99 };
  let layers = candidates.map((c) => {
    const m = options.layerMethods?.[c.name] ?? defaultMethod;
    const s = stats.get(c.input)!;
    const clip = clipRange(
      m.method,
      s,
      m.percentile !== undefined ? { percentile: m.percentile } : {},
    );
    clips[c.name] = { ...clip, method: m.method, min: s.range.min, max: s.range.max };
    return quantizeLayer(c, activationParams(clip, actScheme), wScheme, target.id);
  });
  const outputParams = new Map(
    candidates.map((c) => {
      const s = stats.get(c.output)!;
      return [c.name, activationParams(clipRange(defaultMethod.method, s), actScheme)] as const;
    }),
  );
  let biasCorrection: BiasCorrection[] = [];
  if ((options.biasCorrection ?? true) && layers.length > 0) {
    const corrected = await correctBiases(
      prepared,
      layers,
      target,
      source,
      options.samples,
      outputParams,
      (d, t) => options.onProgress?.('bias-correct', d, t),
    );
    layers = corrected.layers;
    biasCorrection = corrected.corrections;
  }
  const qdq = buildQdqModel(prepared, layers, target, outputParams);
  const emulation =
    target.executor === 'ort-qdq' ? qdq : buildEmulationModel(prepared, layers, target);
  return {
    target: target.id,
    prepared,
    layers,
    skipped,
    clips,
    biasCorrection,
    emulation,
    qdq,
    calibrationSamples: options.samples.indices.length,
  };
}
