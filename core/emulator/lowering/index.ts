/**
 * Lowering of quantized layers into onnxruntime-web operators that reproduce the scalar
 * reference of core/emulator bit for bit (see layer.ts, quantize.ts, accumulate.ts,
 * dequantize.ts, fp16.ts).
 */

export {
  type AccumulationOperands,
  accumulatorBounds,
  channelShape,
  type IntegerType,
  lowerAccumulation,
  lowerFloatAccumulation,
} from './accumulate.ts';
export {
  constant,
  constantDouble,
  createLoweringContext,
  DT,
  emit,
  emitCast,
  type LoweringContext,
} from './context.ts';
export {
  type AccumulatorFacts,
  type ChannelScales,
  lowerDequantFp32,
  lowerDequantV100,
  lowerDequantV200,
  VELTKAMP_FP16,
} from './dequantize.ts';
export {
  type Fp16RoundingOptions,
  lowerClipFp16Range,
  lowerFp16Rounding,
  lowerNanToZero,
} from './fp16.ts';
export { type LoweredLayer, type LowerLayerOptions, lowerLayer } from './layer.ts';
export { buildLayerModel, type LayerModelOptions } from './model.ts';
export { lowerAscendQuant, lowerQuantizeLinear, type QuantizeLoweringOptions } from './quantize.ts';
export {
  ascendQuantParamsOf,
  deqScalesFp32,
  deqScalesV100,
  deqScalesV200,
  integerTypes,
  type LoweredTargetId,
  outputChannels,
  requireLoweredTarget,
  weightScale,
  weightZeroPointPerTensor,
} from './scales.ts';
