/**
 * Dequantisation of the int32 accumulator in onnxruntime-web operators, per target arithmetic.
 * Every function appends nodes that turn int32 tensor `acc` into a float32 tensor `out` and is
 * bit-exact against the reference (saturation mode on the Ascend paths).
 *
 * ## v100 'fused': r = fp16(acc * d16), rounded ONCE (Veltkamp splitting in float64)
 *
 *   p  = double(acc) * d16          exact: |acc| < 2^31 and d16 has 11 significant bits
 *   g  = p * (2^42 + 1)             rounded to nearest even (float64)
 *   t  = g - p                      rounded
 *   hi = g - t                      rounded  -> hi = p rounded to 53 - 42 = 11 significant bits
 *   r  = Clip(float(hi), -65504, 65504)
 *
 * Why it is exact:
 * - Veltkamp's splitting (Dekker 1971) with C = 2^s + 1 in binary64 returns p rounded to nearest
 *   with 53 - s significant bits when no overflow occurs (Boldo 2006, "Pitfalls of a full
 *   floating-point proof", proves it for radix 2 with ties going to even). With s = 42 that is
 *   11 bits: the fp16 grid in the normal range. Ties to even are checked in the tests on every
 *   fp16 midpoint and on accumulators aimed at midpoints.
 * - fp16 subnormal range: p is a multiple of 2^-24 (d16 is, acc is an integer), so below 2^-14
 *   p already is an fp16 subnormal (at most 10 significant bits) and the split returns it
 *   unchanged; no separate path is needed.
 * - No overflow or underflow in float64: |g| < 2^31 * 2^16 * 2^43. hi has 11 bits, so the
 *   float64 -> float cast is exact, and values beyond 65504 (>= 65536 after the split) are
 *   clipped: saturation mode.
 * - Sign of zero: `hi = g - (g - p)` keeps -0 for p = -0 (acc < 0 with d16 = 0), like the
 *   reference; the textbook `g + (p - g)` would give +0.
 * Why not the float32 route: Cast double -> float -> float16 rounds twice; when the float lands
 * exactly on an fp16 midpoint while p does not, the tie is broken the wrong way (tested: the
 * plain cast chain disagrees on accumulators aimed at midpoints).
 *
 * ## v100 'cast-then-mul': r = fp16(fp16(acc) * d16)
 *   Cast float (exact below 2^24; above, the result saturates anyway), Clip, Cast f16, Cast f32,
 *   Mul float32 (exact: fp16 x fp16 has <= 22 bits), Clip, Cast f16, Cast f32 (8 ops). Never a
 *   float16 Mul: ORT-web has no CPU kernel for it and its cast insertion drops the roundings.
 *
 * ## v200: r = fp16(fp32(fp32(acc) * s32))  (the reference's default 'fp32' product rounding)
 *   Cast float, Mul float32, Clip, Cast float16, Cast float. s32 is stored as a float64
 *   constant and cast to float in the graph, so that passes which round float32 constants of
 *   fp16 models to fp16 cannot alter it.
 *
 * ## fp32 targets: r = fp32(fp32(acc) * s32)
 */

import type { DequantV100Reading } from '../ascend-dequant.ts';
import { constant, constantDouble, DT, emit, emitCast, type LoweringContext } from './context.ts';
import { lowerClipFp16Range } from './fp16.ts';

/** Veltkamp constant 2^42 + 1: splits a binary64 value into its top 11 significant bits. */
export const VELTKAMP_FP16 = 2 ** 42 + 1;

/** Where the per-channel constants go: their values and the shape that broadcasts on `acc`. */
export interface ChannelScales {
  values: ArrayLike<number>;
  /** e.g. [C, 1, 1] for NCHW, [N] for [.., N], [M, 1] for [.., M, N]; [] for a single scale. */
  shape: readonly number[];
}

/** What the caller knows about the accumulator (see lowerLayer's `fast` option). */
export interface AccumulatorFacts {
  /** The accumulator is a float32 tensor of exact integers (lowerFloatAccumulation). */
  isFloat?: boolean;
  /**
   * Per-channel bound of |accumulator| for every possible input (accumulatorBounds), when
   * known and below 2^31 (no wrap-around): lets the saturation Clip be left out when the bound
   * proves that no value can reach the fp16 overflow threshold 65520.
   */
  bounds?: readonly number[];
}

/** The fp16 saturation Clip is the identity when max_c bound_c * scale_c * (1 + slack) < 65520. */
function saturationImpossible(
  facts: AccumulatorFacts,
  scales: ArrayLike<number>,
  slack: number,
): boolean {
  const b = facts.bounds;
  if (b === undefined || b.length === 0) return false;
  for (let c = 0; c < b.length; c++) {
    const s = scales.length === 1 ? scales[0]! : scales[c]!;
    if (!(b[c]! < 2 ** 31) || !(b[c]! * s * (1 + slack) < 65520)) return false;
  }
  return true;
}

/**
 * AscendDequant v100 with an fp16 deq_scale per channel (values must be fp16 values >= 0):
 * 'fused' (default, Veltkamp split in float64, 7 ops) or 'cast-then-mul' (8 ops). Writes
 * float32 `out`. Saturation mode. ReLU belongs on the accumulator (see accumulate.ts).
 */
export function lowerDequantV100(
  ctx: LoweringContext,
  acc: string,
  deq16: ChannelScales,
  reading: DequantV100Reading,
  prefix: string,
  out: string,
  facts: AccumulatorFacts = {},
): void {
  if (reading === 'fused') {
    const accD = emitCast(ctx, acc, DT.DOUBLE, `${prefix}/acc64`);
    const d = constantDouble(ctx, `${prefix}/deq_scale`, deq16.shape, deq16.values);
    const p = emit(ctx, 'Mul', [accD, d], `${prefix}/p`);
    const c = constantDouble(ctx, `${prefix}/veltkamp`, [], [VELTKAMP_FP16]);
    const g = emit(ctx, 'Mul', [p, c], `${prefix}/g`);
    const t = emit(ctx, 'Sub', [g, p], `${prefix}/t`);
    const hi = emit(ctx, 'Sub', [g, t], `${prefix}/hi`);
    // |p| < 65520 for every input: hi <= 65504, the Clip is the identity (exact p, no slack).
    if (saturationImpossible(facts, deq16.values, 0)) {
      emitCast(ctx, hi, DT.FLOAT, `${prefix}/f`, out);
      return;
    }
    const f = emitCast(ctx, hi, DT.FLOAT, `${prefix}/f`);
    lowerClipFp16Range(ctx, f, prefix, out);
    return;
  }
  const a = facts.isFloat ? acc : emitCast(ctx, acc, DT.FLOAT, `${prefix}/acc32`);
  const ac = lowerClipFp16Range(ctx, a, `${prefix}/acc`);
  const a16 = emitCast(
    ctx,
    emitCast(ctx, ac, DT.FLOAT16, `${prefix}/acc16`),
    DT.FLOAT,
    `${prefix}/a16`,
  );
  const d = constant(
    ctx,
    `${prefix}/deq_scale16`,
    'float32',
    deq16.shape,
    Float32Array.from(Array.from(deq16.values)),
  );
  const m = emit(ctx, 'Mul', [a16, d], `${prefix}/mul`);
  const m16 = emitCast(
    ctx,
    lowerClipFp16Range(ctx, m, `${prefix}/mul`),
    DT.FLOAT16,
    `${prefix}/mul16`,
  );
  emitCast(ctx, m16, DT.FLOAT, `${prefix}/mul32`, out);
}

/** AscendDequant v200 with fp32 scales (default 'fp32' product rounding), saturation mode. */
export function lowerDequantV200(
  ctx: LoweringContext,
  acc: string,
  scale32: ChannelScales,
  prefix: string,
  out: string,
  facts: AccumulatorFacts = {},
): void {
  const a = facts.isFloat ? acc : emitCast(ctx, acc, DT.FLOAT, `${prefix}/acc32`);
  const sD = constantDouble(ctx, `${prefix}/deq_scale64`, scale32.shape, scale32.values);
  const s = emitCast(ctx, sD, DT.FLOAT, `${prefix}/deq_scale`);
  const m = emit(ctx, 'Mul', [a, s], `${prefix}/mul`);
  // fp32(acc) * s rounded to fp32 is at most |acc| s (1 + 2^-24); a bound below 65520 leaves
  // the Clip as the identity (the cast to fp16 cannot overflow).
  const c = saturationImpossible(facts, scale32.values, 2 ** -23)
    ? m
    : lowerClipFp16Range(ctx, m, prefix);
  const h = emitCast(ctx, c, DT.FLOAT16, `${prefix}/f16`);
  emitCast(ctx, h, DT.FLOAT, `${prefix}/f32`, out);
}

/** fp32 requantisation: out = fp32(fp32(acc) * s32). */
export function lowerDequantFp32(
  ctx: LoweringContext,
  acc: string,
  scale32: ChannelScales,
  prefix: string,
  out: string,
): void {
  const a = emitCast(ctx, acc, DT.FLOAT, `${prefix}/acc32`);
  const s = constant(
    ctx,
    `${prefix}/deq_scale`,
    'float32',
    scale32.shape,
    Float32Array.from(Array.from(scale32.values)),
  );
  emit(ctx, 'Mul', [a, s], `${prefix}/mul`, [], out);
}
