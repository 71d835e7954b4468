/**
 * The constants a quantized layer's target actually uses, derived from the `QuantizedLayer`
 * contract. Shared by the lowering and by `referenceLayer`, so both read the layer the same way.
 */

import { arithmeticTargetId, type BaseTargetId } from '../../formats/targets.ts';
import type { QuantizedLayer } from '../../quantize/layer.ts';
import { deqScaleFp16 } from '../ascend-dequant.ts';
import { type AscendQuantParams, makeAscendQuantParams } from '../ascend-quant.ts';

/** Targets whose arithmetic the lowering reproduces (cpu-wasm runs ORT's own QDQ kernels). */
export type LoweredTargetId = Exclude<BaseTargetId, 'cpu-wasm'>;

/**
 * The arithmetic the layer's target uses (a W4A8 variant uses its base target's: its int4
 * weights are already in `layer.weight`); throws a clear error for targets that are not lowered.
 */
export function requireLoweredTarget(layer: QuantizedLayer): LoweredTargetId {
  const target = arithmeticTargetId(layer.target);
  if (target === 'cpu-wasm') {
    throw new RangeError(
      `layer '${layer.name}': target cpu-wasm is not lowered; it runs the QDQ model through onnxruntime-web's own kernels`,
    );
  }
  return target;
}

/** Number of output channels of the layer (length of the bias). */
export function outputChannels(layer: QuantizedLayer): number {
  const d = layer.weight.dims;
  if (layer.kind === 'matmul' && (layer.weightSide ?? 'right') === 'right') return d[1]!;
  return d[0]!;
}

/** Weight scale of output channel c (per-tensor weights have one scale). */
export function weightScale(layer: QuantizedLayer, c: number): number {
  const s = layer.weight.scales;
  return s.length === 1 ? s[0]! : s[c]!;
}

/**
 * AscendQuant parameters of the layer's input (Ascend targets): scale = 1/scale_d stored as
 * fp32 (sqrt_mode when it does not fit fp16), offset = offset_d; round mode Round, int8,
 * saturation mode (the reference defaults).
 */
export function ascendQuantParamsOf(layer: QuantizedLayer): AscendQuantParams {
  return makeAscendQuantParams(layer.act.scale, layer.act.zeroPoint);
}

/**
 * v100 (ascend310) fp16 deq_scale per output channel: `deqScaleFp16(scale_d, scale_w[c])`,
 * i.e. fp16(fp32(fp32(scale_d) * fp32(scale_w[c]))).
 */
export function deqScalesV100(layer: QuantizedLayer): Float64Array {
  const n = outputChannels(layer);
  return Float64Array.from({ length: n }, (_, c) =>
    deqScaleFp16(layer.act.scale, weightScale(layer, c)),
  );
}

/**
 * v200 (ascend310p) fp32 deq_scale per output channel, formed like the v100 one but kept in
 * fp32: fp32(fp32(scale_d) * fp32(scale_w[c])) (the value packed in the uint64 word).
 */
export function deqScalesV200(layer: QuantizedLayer): Float32Array {
  const n = outputChannels(layer);
  const sd = Math.fround(layer.act.scale);
  return Float32Array.from({ length: n }, (_, c) =>
    Math.fround(sd * Math.fround(weightScale(layer, c))),
  );
}

/**
 * fp32 requantisation scale per output channel of the fp32 targets (nvidia-t4, snapdragon):
 * float32(scale_x * scale_w[c]), the product taken from the contract's `deqScale` (float64).
 */
export function deqScalesFp32(layer: QuantizedLayer): Float32Array {
  const n = outputChannels(layer);
  if (layer.deqScale.length !== n) {
    throw new RangeError(
      `layer '${layer.name}': ${layer.deqScale.length} deqScale values for ${n} output channels`,
    );
  }
  return Float32Array.from(layer.deqScale, (v) => Math.fround(v));
}

/** Per-tensor weight zero point of the layer (all channels equal), or throws. */
export function weightZeroPointPerTensor(layer: QuantizedLayer): number {
  const zp = layer.weight.zeroPoints;
  const z = zp[0] ?? 0;
  for (let i = 1; i < zp.length; i++) {
    if (zp[i] !== z) {
      throw new RangeError(
        `layer '${layer.name}': per-channel weight zero points are not supported by the lowering`,
      );
    }
  }
  return z;
}

/**
 * Element types the lowering feeds to ConvInteger / MatMulInteger: always uint8 x uint8. Signed
 * targets are shifted by +128 (values and zero points, exact: (q + 128) - (zp + 128) = q - zp),
 * because ORT-web's u8 x u8 kernels are an order of magnitude faster than its s8 paths
 * (measured on a 64->64 3x3 conv over 1x64x56x56: ~13 ms u8 x u8, ~140 ms u8 x s8 or s8 x s8).
 */
export function integerTypes(target: LoweredTargetId): {
  act: 'uint8';
  weight: 'uint8';
  /** Added to the target's integer values and zero points to get the uint8 ones. */
  shift: 0 | 128;
} {
  return { act: 'uint8', weight: 'uint8', shift: target === 'snapdragon' ? 0 : 128 };
}
