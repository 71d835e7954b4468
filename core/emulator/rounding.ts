/**
 * Integer rounding and saturation used by every Ascend INT8 rule. Pure arithmetic on JS
 * numbers (IEEE binary64); every function is exact for the inputs it documents.
 */

/**
 * Round half to even ("rint" under FE_TONEAREST), exact for every finite double.
 * Source: AscendQuant round_mode "Round" (CANN TBE ascend_quant.py `_round_tensor` ->
 * `tbe.round`), documented as rint-like; AscendRequant uses the same rounding.
 * @example roundHalfEven(2.5) === 2; roundHalfEven(3.5) === 4; roundHalfEven(-2.5) === -2
 */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  // |x| >= 2^52 is already an integer in binary64.
  if (Math.abs(x) >= 2 ** 52) return x;
  const f = Math.floor(x);
  const d = x - f; // exact: both are binary64 values below 2^52 with f <= x < f + 1
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The four AscendQuant `round_mode` values (TBE ascend_quant.py `_check_params`). */
export type RoundMode = 'Round' | 'Floor' | 'Ceil' | 'Trunc';

/**
 * Rounds `x` to an integer with an AscendQuant round mode: Round = half to even (rint),
 * Floor, Ceil, Trunc (toward zero). NaN and infinities pass through (saturation decides).
 * Source: CANN TBE ascend_quant.py `_round_tensor` (tbe.round / floor / ceil / trunc).
 */
export function roundWithMode(x: number, mode: RoundMode): number {
  switch (mode) {
    case 'Round':
      return roundHalfEven(x);
    case 'Floor':
      return Math.floor(x);
    case 'Ceil':
      return Math.ceil(x);
    case 'Trunc':
      return Math.trunc(x);
  }
}

/**
 * Clamps an already-integral value to [lo, hi]; NaN becomes 0 (the emulator's choice, matching
 * the saturation-mode rule "NaN results become 0", see docs/EMULATOR.md). Infinities clamp.
 * Source: AMCT `q = clip(round(...), -128, 127)`; aclrtFloatOverflowMode (NaN -> 0).
 */
export function saturateInt(x: number, lo: number, hi: number): number {
  if (Number.isNaN(x)) return 0;
  if (x < lo) return lo;
  if (x > hi) return hi;
  return x;
}

/** Signed range of the quantized output types: int8 = [-128, 127], int4 = [-8, 7]. */
export const INT_RANGE = {
  int8: [-128, 127],
  int4: [-8, 7],
} as const satisfies Record<string, readonly [number, number]>;

/**
 * Two's-complement wrap of an integer-valued number to int32 (ECMAScript ToInt32, i.e. modulo
 * 2^32). Exact for every integer-valued double below 2^53 in magnitude. The emulator's chosen
 * int32 accumulator overflow behaviour (no public source states it; see docs/EMULATOR.md).
 */
export function wrapInt32(x: number): number {
  return x | 0;
}

/** True when `x` is an integer in the int32 range. */
export function isInt32(x: number): boolean {
  return Number.isInteger(x) && x >= -2147483648 && x <= 2147483647;
}
