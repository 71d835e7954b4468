import type { ClipRange } from '../calibrate/methods.ts';
import type { TensorScheme } from '../formats/targets.ts';

/**
 * Quantization parameters of one activation tensor: `q = clip(round(x / scale + zeroPoint))`.
 * For Ascend, `scale` is scale_d and `zeroPoint` is offset_d (AMCT naming).
 */
export interface ActivationParams {
  scale: number;
  zeroPoint: number;
  qmin: number;
  qmax: number;
}

/** Integer range of a scheme's element type. */
export function integerRange(scheme: TensorScheme): { qmin: number; qmax: number } {
  switch (scheme.type) {
    case 'int8':
      // Symmetric int8 uses [-127, 127] so that the grid is symmetric (AMCT and TensorRT do).
      return scheme.symmetric ? { qmin: -127, qmax: 127 } : { qmin: -128, qmax: 127 };
    case 'uint8':
      return { qmin: 0, qmax: 255 };
    case 'int4':
      return scheme.symmetric ? { qmin: -7, qmax: 7 } : { qmin: -8, qmax: 7 };
  }
}

/** Smallest scale ever produced (a tensor that is constantly 0 still needs a valid scale). */
export const MIN_SCALE = 2 ** -24;

/**
 * Activation parameters for a clip range under a scheme.
 * - symmetric: scale = max(|lo|, |hi|) / qmax, zero point 0 (uint8: 128).
 * - asymmetric: scale = (hi - lo) / (qmax - qmin), zero point = qmin - round(lo / scale),
 *   so that lo maps to qmin and 0 is exactly representable.
 */
export function activationParams(clip: ClipRange, scheme: TensorScheme): ActivationParams {
  const { qmin, qmax } = integerRange(scheme);
  const lo = Math.min(0, clip.lo);
  const hi = Math.max(0, clip.hi);
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new RangeError(`activationParams: non-finite range [${lo}, ${hi}]`);
  if (scheme.symmetric) {
    const scale = Math.max(MIN_SCALE, Math.max(-lo, hi) / qmax);
    return { scale, zeroPoint: scheme.type === 'uint8' ? 128 : 0, qmin, qmax };
  }
  const scale = Math.max(MIN_SCALE, (hi - lo) / (qmax - qmin));
  const zeroPoint = Math.min(qmax, Math.max(qmin, qmin - Math.round(lo / scale)));
  return { scale, zeroPoint, qmin, qmax };
}

/** Round half to even (IEEE roundTiesToEven), the rounding of every quantizer in this project. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
