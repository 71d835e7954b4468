/**
 * `lowerLayer`: one quantized layer (the `QuantizedLayer` contract) lowered into
 * onnxruntime-web operators that reproduce `referenceLayer` bit for bit:
 *
 *   quantize (AscendQuant or QuantizeLinear) -> ConvInteger / MatMulInteger (+ int32 bias,
 *   + ReLU on the accumulator) -> dequantise (v100 / v200 / fp32)
 *
 * One integer kernel per layer plus a handful of elementwise ops, no per-channel loops
 * (per-channel constants broadcast on the output channel axis).
 */

import type { QuantizedLayer } from '../../quantize/layer.ts';
import type { DequantV100Reading } from '../ascend-dequant.ts';
import {
  accumulatorBounds,
  channelShape,
  lowerAccumulation,
  lowerFloatAccumulation,
} from './accumulate.ts';
import type { LoweringContext } from './context.ts';
import {
  type AccumulatorFacts,
  lowerDequantFp32,
  lowerDequantV100,
  lowerDequantV200,
} from './dequantize.ts';
import { lowerAscendQuant, lowerQuantizeLinear } from './quantize.ts';
import {
  ascendQuantParamsOf,
  deqScalesFp32,
  deqScalesV100,
  deqScalesV200,
  integerTypes,
  outputChannels,
  requireLoweredTarget,
  weightZeroPointPerTensor,
} from './scales.ts';

/** Switches of {@link lowerLayer}. */
export interface LowerLayerOptions {
  /** ascend310 only: AscendDequant v100 reading. Default 'fused' (the reference default). */
  dequantReading?: DequantV100Reading;
  /**
   * Skip the NaN guard of the activation quantizer (IsNaN + Where) when the input cannot hold
   * NaN. Default false: NaN inputs quantize like the reference (as 0).
   */
  assumeNoNaN?: boolean;
  /** The input holds finite fp16 values already (see QuantizeLoweringOptions.inputIsFp16). */
  inputIsFp16?: boolean;
  /**
   * Cheaper, equally exact graph (default false): grouped (depthwise) convolutions accumulate
   * on a float Conv when the layer's accumulator bound proves it exact (lowerFloatAccumulation),
   * and the dequantisation's saturation Clip is left out when the bound proves that no input can
   * reach the fp16 overflow threshold. Bit-identical outputs; the accumulator of a float
   * accumulation is a float32 tensor.
   */
  fast?: boolean;
}

/** Names of the tensors a lowered layer produces (for debugging and tests). */
export interface LoweredLayer {
  /** Quantized activation as uint8: the target's q + 128 on int8 targets, q on snapdragon. */
  quantized: string;
  /** int32 accumulator after bias (and ReLU when fused); float32 on the `fast` float path. */
  accumulator: string;
  /** `layer.output`. */
  output: string;
}

/**
 * Appends to `ctx` the nodes and constants that compute float32 tensor `layer.output` from
 * float32 tensor `layer.input` with the arithmetic of `layer.target` (see the module comment
 * and dequantize.ts / quantize.ts for each step). Throws for target cpu-wasm (it runs the QDQ
 * model through ORT's own kernels) and for layers the contract does not allow.
 */
export function lowerLayer(
  ctx: LoweringContext,
  layer: QuantizedLayer,
  options: LowerLayerOptions = {},
): LoweredLayer {
  const target = requireLoweredTarget(layer);
  const prefix = layer.name;
  const channels = outputChannels(layer);
  if (layer.bias.length !== channels) {
    throw new RangeError(`layer '${layer.name}': bias length ${layer.bias.length} != ${channels}`);
  }
  const shape = channelShape(layer, channels);
  const types = integerTypes(target);
  const qopts = {
    assumeNoNaN: options.assumeNoNaN ?? false,
    inputIsFp16: options.inputIsFp16 ?? false,
  };
  let q: string;
  let actZeroPoint: number;
  if (target === 'ascend310' || target === 'ascend310p') {
    const p = ascendQuantParamsOf(layer);
    q = lowerAscendQuant(ctx, layer.input, p, `${prefix}/quant`, { ...qopts, output: 'uint8' });
    actZeroPoint = p.offset + types.shift;
  } else {
    // QuantizeLinear(x, s, zp + shift) into uint8 = the target's q + shift, exactly
    actZeroPoint = layer.act.zeroPoint + types.shift;
    q = lowerQuantizeLinear(
      ctx,
      layer.input,
      layer.act.scale,
      actZeroPoint,
      types.act,
      `${prefix}/quant`,
      qopts,
    );
  }
  const targetWeightZeroPoint = weightZeroPointPerTensor(layer);
  if (target !== 'snapdragon' && targetWeightZeroPoint !== 0) {
    throw new RangeError(
      `layer '${layer.name}': ${target} weights must be symmetric (zero point 0)`,
    );
  }
  const operands = {
    q,
    actType: types.act,
    actZeroPoint,
    weightType: types.weight,
    weightShift: types.shift,
    weightZeroPoint: targetWeightZeroPoint + types.shift,
  };
  // fast: grouped (depthwise) convolutions accumulate in float where exact (ORT-web's
  // ConvInteger is slow there); dense layers keep the integer kernels, which are faster.
  const floatAcc =
    options.fast && (layer.conv?.group ?? 1) > 1
      ? lowerFloatAccumulation(ctx, layer, operands, `${prefix}/int`, layer.fusedRelu)
      : undefined;
  const acc = floatAcc ?? lowerAccumulation(ctx, layer, operands, `${prefix}/int`, layer.fusedRelu);
  const facts: AccumulatorFacts = options.fast
    ? { isFloat: floatAcc !== undefined, bounds: accumulatorBounds(layer, operands) }
    : {};
  const dq = `${prefix}/dequant`;
  if (target === 'ascend310') {
    const values = deqScalesV100(layer);
    lowerDequantV100(
      ctx,
      acc,
      { values, shape },
      options.dequantReading ?? 'fused',
      dq,
      layer.output,
      facts,
    );
  } else if (target === 'ascend310p') {
    lowerDequantV200(ctx, acc, { values: deqScalesV200(layer), shape }, dq, layer.output, facts);
  } else {
    lowerDequantFp32(ctx, acc, { values: deqScalesFp32(layer), shape }, dq, layer.output);
  }
  return { quantized: q, accumulator: acc, output: layer.output };
}
