import { collectStats, type SampleSet } from '../calibrate/capture.ts';
import type { ClipRange, MethodName, TensorStats } from '../calibrate/methods.ts';
import { clipRange } from '../calibrate/methods.ts';
import type { WeightMethod } from '../calibrate/weights.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import { getTarget, isDynamic, type Target, type TensorScheme } from '../formats/targets.ts';
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
import { type QuantizedWeight, quantizeWeight } from './weights.ts';

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
  /** Weight clip range: each channel's max (default) or the IFMR mse search. */
  weightClip?: WeightMethod;
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

/**
 * Number of distinct (scale, zero-point) parameter sets in a quantization result. A dynamic
 * layer (float bias) contributes its weight scales only: its activation's are made per input.
 */
export function parameterSets(result: Pick<QuantizationResult, 'layers'>): number {
  const acts = new Set(
    result.layers
      .filter((l) => !l.floatBias)
      .map((l) => `${l.input}|${l.act.scale}|${l.act.zeroPoint}`),
  );
  return acts.size + result.layers.reduce((n, l) => n + l.weight.scales.length, 0);
}

/** Quantizes one layer from its activation parameters (weights, int32 bias, deq scales). */
export function quantizeLayer(
  c: LayerCandidate,
  act: ActivationParams,
  scheme: TensorScheme,
  target: Target['id'],
  weightClip: WeightMethod = 'max',
): QuantizedLayer {
  return layerFromWeight(c, act, quantizeWeight(c.weight, scheme, weightClip), target);
}

/**
 * One layer from its activation parameters and its already quantized weight: the int32 bias
 * and the dequantization scales (scale_d * scale_w per output channel) follow from them.
 */
export function layerFromWeight(
  c: LayerCandidate,
  act: ActivationParams,
  weight: QuantizedWeight,
  target: Target['id'],
): QuantizedLayer {
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
    ...(isDynamic(getTarget(target)) ? { floatBias: Float64Array.from(c.bias) } : {}),
    ...(c.conv ? { conv: c.conv } : {}),
    fusedRelu: false,
    target,
  };
}

/** The layers a run quantizes, those it keeps float, and the tensors calibration observes. */
export interface LayerPlan {
  candidates: LayerCandidate[];
  skipped: SkippedLayer[];
  /** Inputs and outputs of the quantized layers (outputs feed the QDQ export's output Q/DQ). */
  tensors: string[];
}

/** Splits a prepared model's layers into quantized and kept-float (by name or glob). */
export function planLayers(
  prepared: PreparedModel,
  keepFloat: (name: string) => boolean = () => false,
): LayerPlan {
  const skipped = [...prepared.skipped];
  const candidates = prepared.layers.filter((c) => {
    const keep = keepFloat(c.name);
    if (keep)
      skipped.push({
        name: c.name,
        opType: c.nodes[0]!.opType,
        reason: 'kept in float by the recipe',
      });
    return !keep;
  });
  const tensors = [
    ...new Set([...candidates.map((c) => c.input), ...candidates.map((c) => c.output)]),
  ];
  return { candidates, skipped, tensors };
}

/** Schemes actually used for activations and weights after recipe overrides. */
export function effectiveSchemes(
  target: Target,
  options: Pick<QuantizeOptions, 'symmetricActivations' | 'weightGranularity'>,
): { act: TensorScheme; weight: TensorScheme } {
  return {
    act: {
      ...target.activations,
      ...(options.symmetricActivations !== undefined
        ? { symmetric: options.symmetricActivations }
        : {}),
    },
    weight: {
      ...target.weights,
      ...(options.weightGranularity ? { granularity: options.weightGranularity } : {}),
    },
  };
}

/**
 * Quantizes every planned layer from merged calibration statistics (pure: no model runs).
 * The same statistics give the same layers, byte for byte, wherever this runs.
 */
export function layersFromStats(
  plan: LayerPlan,
  stats: ReadonlyMap<string, TensorStats>,
  target: Target,
  options: Pick<
    QuantizeOptions,
    'method' | 'layerMethods' | 'symmetricActivations' | 'weightGranularity' | 'weightClip'
  >,
): {
  layers: QuantizedLayer[];
  clips: QuantizationResult['clips'];
  outputParams: Map<string, ActivationParams>;
} {
  const schemes = effectiveSchemes(target, options);
  const clips: QuantizationResult['clips'] = {};
  const defaultMethod = options.method ?? { method: 'percentile', percentile: 99.99 };
  const layers = plan.candidates.map((c) => {
    const m = options.layerMethods?.[c.name] ?? defaultMethod;
    const s = stats.get(c.input);
    if (!s)
      throw new RangeError(`layersFromStats: no statistics for '${c.input}' (input of ${c.name})`);
    const clip = clipRange(m.method, s, {
      ...(m.percentile !== undefined ? { percentile: m.percentile } : {}),
      scheme: schemes.act,
    });
    clips[c.name] = { ...clip, method: m.method, min: s.range.min, max: s.range.max };
    return quantizeLayer(
      c,
      activationParams(clip, schemes.act),
      schemes.weight,
      target.id,
      options.weightClip,
    );
  });
  const outputParams = new Map(
    plan.candidates.map((c) => {
      const s = stats.get(c.output)!;
      return [c.name, activationParams(clipRange('max', s), schemes.act)] as const;
    }),
  );
  return { layers, clips, outputParams };
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
  const plan = planLayers(prepared, (n) => keep.has(n));
  const { skipped } = plan;
  // Nothing to quantize (a model kept in float, or every layer kept float): no statistics.
  const stats =
    plan.tensors.length === 0
      ? new Map<string, TensorStats>()
      : await collectStats(prepared.model, source, options.samples, plan.tensors, {
          onProgress: (d, t) => options.onProgress?.('calibrate', d, t),
        });
  const fromStats = layersFromStats(plan, stats, target, options);
  const { clips, outputParams } = fromStats;
  let layers = fromStats.layers;
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
