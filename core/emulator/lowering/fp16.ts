/**
 * fp16 rounding of a float32 tensor in onnxruntime-web operators, and the guards that give the
 * reference's saturation-mode semantics (Inf -> ±65504, NaN -> 0).
 *
 * Fact this rests on (tested in fp16.test.ts on a large seeded set plus every fp16 midpoint):
 * ORT-web's `Cast` float -> float16 equals the reference `toFp16Bits(x, 'inf')` bit for bit
 * (round to nearest even, subnormals, overflow to ±Inf at 65520, NaN stays NaN); float16 ->
 * float is exact.
 */

import type { Fp16Overflow } from '../fp16.ts';
import { constant, DT, emit, emitCast, type LoweringContext } from './context.ts';

/** Largest finite fp16. */
const FP16_MAX = 65504;

/** Options of {@link lowerFp16Rounding}. */
export interface Fp16RoundingOptions {
  /** Default 'saturate' (the reference's hardware default): ±Inf -> ±65504, NaN -> +0. */
  overflow?: Fp16Overflow;
  /**
   * Skip the NaN guard (IsNaN + Where) in saturation mode when the caller knows the tensor
   * holds no NaN. Default false (exact for NaN too).
   */
  assumeNoNaN?: boolean;
}

/**
 * Replaces NaN by +0: `Where(IsNaN(x), 0, x)`. Returns the guarded tensor's name.
 * (Clip, Max, Relu and Cast in ORT-web all let NaN through, so a dedicated guard is needed.)
 */
export function lowerNanToZero(ctx: LoweringContext, input: string, prefix: string): string {
  const isNan = emit(ctx, 'IsNaN', [input], `${prefix}/isnan`);
  const zero = constant(ctx, `${prefix}/zero`, 'float32', [], new Float32Array([0]));
  return emit(ctx, 'Where', [isNan, zero, input], `${prefix}/nan0`);
}

/**
 * Appends `Clip(x, -65504, 65504)`: in float32 before a cast to fp16 this is exactly the
 * saturation mode (values in (65504, 65520) round to 65504 anyway; beyond, Inf becomes 65504).
 */
export function lowerClipFp16Range(
  ctx: LoweringContext,
  input: string,
  prefix: string,
  out?: string,
): string {
  const lo = constant(ctx, `${prefix}/fp16min`, 'float32', [], new Float32Array([-FP16_MAX]));
  const hi = constant(ctx, `${prefix}/fp16max`, 'float32', [], new Float32Array([FP16_MAX]));
  return emit(ctx, 'Clip', [input, lo, hi], `${prefix}/sat`, [], out);
}

/**
 * Rounds float32 tensor `input` to fp16 values, written as float32 tensor `output`: equals
 * `roundToFp16(x, overflow)` of the reference element by element, bit for bit (sign of zero
 * included). Saturation mode: [IsNaN, Where,] Clip(±65504), Cast float16, Cast float (4 ops,
 * 2 with `assumeNoNaN`); IEEE mode: the two casts.
 */
export function lowerFp16Rounding(
  ctx: LoweringContext,
  input: string,
  output: string,
  options: Fp16RoundingOptions = {},
): void {
  const prefix = `${output}/fp16`;
  let x = input;
  if ((options.overflow ?? 'saturate') === 'saturate') {
    if (!options.assumeNoNaN) x = lowerNanToZero(ctx, x, prefix);
    x = lowerClipFp16Range(ctx, x, prefix);
  }
  const h = emitCast(ctx, x, DT.FLOAT16, `${prefix}/f16`);
  emitCast(ctx, h, DT.FLOAT, `${prefix}/f32`, output);
}
