import type { TargetId } from '../formats/targets.ts';
import type { ActivationParams } from './params.ts';
import type { QuantizedWeight } from './weights.ts';

/**
 * One weighted layer after quantization: everything the emulator lowering and the QDQ export
 * need, independent of the ONNX node it came from. Produced by the quantizer, consumed by
 * core/emulator/lowering (emulation graph) and core/quantize/qdq (deployable QDQ graph).
 */
export interface QuantizedLayer {
  /** Name of the original node (report key). */
  name: string;
  kind: 'conv' | 'gemm' | 'matmul';
  /** Float input tensor name (activation) and float output tensor name in the original graph. */
  input: string;
  output: string;
  /** Activation quantization of `input` (per tensor). */
  act: ActivationParams;
  /**
   * Weight, quantized. Conv: OIHW, axis 0. Gemm: normalised to [N, K] (transB = 1 layout), axis 0.
   * MatMul with a constant right operand: [K, N], axis 1; with a constant left operand: [M, K],
   * axis 0 (see `weightSide`).
   */
  weight: QuantizedWeight;
  /** MatMul only: which operand is the constant weight. */
  weightSide?: 'right' | 'left';
  /**
   * Bias in accumulator units (scale_d * scale_w[c]), int32, one per output channel, NOT yet
   * compensated for the activation offset (the lowering does that, exactly as the target does).
   */
  bias: Int32Array;
  /** Per output channel dequantisation scale scale_d * scale_w[c], float64 before target rounding. */
  deqScale: Float64Array;
  /**
   * Dynamic targets only (activation scales computed at run time, so no int32 bias can be
   * fixed in advance): the bias in float, added after dequantization, as ONNX Runtime's
   * dynamic quantization keeps it. Bias correction adjusts this one there.
   */
  floatBias?: Float64Array;
  /** Conv attributes (ONNX semantics; pads as [top, left, bottom, right]). */
  conv?: { strides: number[]; pads: number[]; dilations: number[]; group: number };
  /** A Relu/Clip(0, x) directly after the layer that the target fuses into dequantisation. */
  fusedRelu: boolean;
  target: TargetId;
}
