/**
 * Activation quantization in onnxruntime-web operators.
 *
 * AscendQuant (Ascend targets), equal to `ascendQuantValue` of the reference bit for bit:
 *   [IsNaN, Where: NaN -> 0]  Clip(±65504)  Cast f16, Cast f32  Mul s16, Cast f16, Cast f32
 *   [the same Mul again: sqrt_mode]  [Add o16, Cast f16, Cast f32]  QuantizeLinear(1, 0) -> int8
 *   (or QuantizeLinear(1, 128 uint8) -> q + 128: clamp(rne(a) + 128, 0, 255) = clamp(rne(a), -128, 127) + 128)
 * - The NaN guard and the Clip give saturation mode for the input cast (NaN -> 0, |x| >= 65520
 *   -> 65504); the Clip in float32 before the cast equals saturating after it.
 * - Each fp16 operation is done in float32 and rounded by a Cast pair: a product of two fp16
 *   values has <= 22 significant bits (exact in fp32) and a sum rounded to fp32 then to fp16
 *   is correctly rounded because 24 >= 2*11 + 2 (double rounding is innocuous), so each step
 *   equals mul16/add16. Overflow there gives ±Inf instead of ±65504, which saturates to the
 *   same int8 bound (any |a| >= 65376 does), so it needs no guard.
 * - Never float16 arithmetic ops: ORT-web 1.30 has no CPU float16 Mul/Add kernel, so its
 *   InsertCastTransformer runs them in float32 and removes the adjacent Cast pairs, which
 *   silently drops the fp16 roundings (measured: wrong results). Only Cast touches float16. Adding an offset of 0 is skipped
 *   (x + 0 differs from x only in the sign of zero, which the integer rounding erases).
 * - QuantizeLinear with scale 1 and zero point 0 is round half to even and saturation to
 *   [-128, 127] (a / 1 is exact), i.e. `saturateInt(roundHalfEven(a))`.
 *
 * QuantizeLinear (fp32 targets): [NaN guard] QuantizeLinear(x, fp32(scale), zero point),
 * equal to `quantizeLinearValue` (x / scale in fp32, round half to even, + zero point, saturate).
 */

import type { AscendQuantParams } from '../ascend-quant.ts';
import { ascendQuantConstants, checkAscendQuantParams } from '../ascend-quant.ts';
import { constant, DT, emit, emitCast, type LoweringContext } from './context.ts';
import { lowerClipFp16Range, lowerNanToZero } from './fp16.ts';

/** Options of the activation quantizers. */
export interface QuantizeLoweringOptions {
  /**
   * lowerAscendQuant only: 'int8' (default) returns q; 'uint8' returns q + 128 (exact, via the
   * QuantizeLinear zero point 128), the fast activation type of ORT's integer kernels.
   */
  output?: 'int8' | 'uint8';
  /** Skip the NaN guard when the input is known to hold no NaN (saves IsNaN + Where). */
  assumeNoNaN?: boolean;
  /**
   * lowerAscendQuant only: the input already holds finite fp16 values (every float tensor of an
   * fp16 emulation graph does), so the saturating cast to fp16 is the identity and is skipped
   * (saves Clip and a Cast pair). Exact: fp16(x) = x for such x.
   */
  inputIsFp16?: boolean;
}

/**
 * Appends AscendQuant of float32 tensor `input` and returns the name of the int8 result.
 * Supports round mode 'Round', dst type int8, sqrt_mode, and both overflow modes; throws for
 * other round modes, int4, and unusable parameters (as the reference does).
 */
export function lowerAscendQuant(
  ctx: LoweringContext,
  input: string,
  p: AscendQuantParams,
  prefix: string,
  options: QuantizeLoweringOptions = {},
): string {
  if ((p.roundMode ?? 'Round') !== 'Round' || (p.dstType ?? 'int8') !== 'int8') {
    throw new RangeError('lowerAscendQuant: only round_mode Round and dst_type int8 are lowered');
  }
  const issues = checkAscendQuantParams(p).filter((s) => !s.includes('subnormal'));
  if (issues.length > 0) throw new RangeError(`lowerAscendQuant: ${issues.join('; ')}`);
  const { scale16, offset16 } = ascendQuantConstants(p);
  let x = input;
  if ((p.overflow ?? 'saturate') === 'saturate' && !options.inputIsFp16) {
    if (!options.assumeNoNaN) x = lowerNanToZero(ctx, x, prefix);
    x = lowerClipFp16Range(ctx, x, prefix);
  }
  const toFp16 = (v: string, what: string) =>
    emitCast(
      ctx,
      emitCast(ctx, v, DT.FLOAT16, `${prefix}/${what}16`),
      DT.FLOAT,
      `${prefix}/${what}`,
    );
  const x16 = options.inputIsFp16 ? x : toFp16(x, 'x');
  const s16 = constant(ctx, `${prefix}/scale16`, 'float32', [], new Float32Array([scale16]));
  let m = toFp16(emit(ctx, 'Mul', [x16, s16], `${prefix}/mul`), 'm');
  if (p.sqrtMode) m = toFp16(emit(ctx, 'Mul', [m, s16], `${prefix}/mul2`), 'm2');
  let a32 = m;
  if (offset16 !== 0) {
    const o16 = constant(ctx, `${prefix}/offset16`, 'float32', [], new Float32Array([offset16]));
    a32 = toFp16(emit(ctx, 'Add', [m, o16], `${prefix}/add`), 'a');
  }
  const one = constant(ctx, `${prefix}/one`, 'float32', [], new Float32Array([1]));
  const zero =
    options.output === 'uint8'
      ? constant(ctx, `${prefix}/zp128`, 'uint8', [], new Uint8Array([128]))
      : constant(ctx, `${prefix}/zp0`, 'int8', [], new Int8Array([0]));
  return emit(ctx, 'QuantizeLinear', [a32, one, zero], `${prefix}/q`);
}

/**
 * Appends QuantizeLinear(x, fp32(scale), zeroPoint) (int8 or uint8) with a NaN guard (NaN ->
 * zero point, as `quantizeLinearValue`) and returns the name of the integer result.
 */
export function lowerQuantizeLinear(
  ctx: LoweringContext,
  input: string,
  scale: number,
  zeroPoint: number,
  type: 'int8' | 'uint8',
  prefix: string,
  options: QuantizeLoweringOptions = {},
): string {
  const x = options.assumeNoNaN ? input : lowerNanToZero(ctx, input, prefix);
  const s = constant(ctx, `${prefix}/scale`, 'float32', [], new Float32Array([Math.fround(scale)]));
  const zp =
    type === 'int8'
      ? constant(ctx, `${prefix}/zp`, 'int8', [], new Int8Array([zeroPoint]))
      : constant(ctx, `${prefix}/zp`, 'uint8', [], new Uint8Array([zeroPoint]));
  return emit(ctx, 'QuantizeLinear', [x, s, zp], `${prefix}/q`);
}
