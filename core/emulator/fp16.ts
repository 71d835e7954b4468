/**
 * IEEE 754 binary16 (fp16) emulation: conversion with round-to-nearest-even (subnormals
 * included), overflow handling, and single fp16 operations rounded once.
 *
 * Why computing in binary64 and rounding once is exact for ONE fp16 operation:
 * - mul16: two fp16 significands have 11 bits each, so the exact product has at most 22
 *   significant bits, and its exponent lies in [-48, 31]; binary64 (53 bits, exponents down to
 *   -1022) holds it exactly. Rounding that exact value once to fp16 is the correctly rounded
 *   fp16 product.
 * - add16: every fp16 value is an integer multiple of 2^-24 below 2^16, so the exact sum is a
 *   multiple of 2^-24 below 2^17: at most 41 significant bits, again exact in binary64.
 * - Never route a value through binary32 on its way to fp16 unless a rule says the hardware
 *   holds an fp32 intermediate: for a value that is not the result of one fp16 operation
 *   (an int32 x fp16 product, a product of two fp32 scales, an arbitrary double) the binary32
 *   rounding can land exactly on an fp16 halfway point and the second rounding then breaks the
 *   tie the wrong way (double rounding), e.g. 1 + 2^-11 + 2^-30 -> 0x3C01 directly but 0x3C00
 *   via binary32. (For a single fp16 +, -, x binary32 would happen to be safe, since
 *   24 >= 2*11 + 2, but binary64 needs no such argument.)
 */

/**
 * What happens when a rounded result exceeds the fp16 range.
 * - 'inf': IEEE 754 (overflow to ±Inf, NaN stays NaN).
 * - 'saturate': Ascend saturation mode: Inf results become ±65504 and NaN results become 0.
 *   Source: CANN aclrtFloatOverflowMode docs ("saturation mode converts Inf to a maximum
 *   value and NaN to 0"; Atlas inference products (310P) and Atlas training products support
 *   only the saturation mode). The emulator uses 'saturate' as the hardware default.
 */
export type Fp16Overflow = 'inf' | 'saturate';

/** Largest finite fp16, 0x7BFF. */
export const FP16_MAX = 65504;
/** Smallest positive normal fp16, 2^-14 (0x0400). */
export const FP16_MIN_NORMAL = 2 ** -14;
/** Smallest positive subnormal fp16, 2^-24 (0x0001). */
export const FP16_MIN_SUBNORMAL = 2 ** -24;
/** Canonical quiet NaN bit pattern used for IEEE-mode NaN results. */
export const FP16_NAN_BITS = 0x7e00;

// Scratch view of one binary64 for reading its sign and exponent bits (little- or big-endian).
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
/** 2^52: x + 2^52 - 2^52 rounds 0 <= x < 2^52 to an integer, ties to even. */
const ROUND_SHIFTER = 2 ** 52;
/** 2^(10 - e) for e = -14..15 (index e + 14): scales a normal fp16-range value to [1024, 2048). */
const POW2_10_MINUS_E = Float64Array.from({ length: 30 }, (_, i) => 2 ** (10 - (i - 14)));
/**
 * The value of every fp16 bit pattern (every fp16 value is a binary32 value, so exact), built
 * on first use (a few ms) so that importing the module stays free for isolates that never
 * decode fp16.
 */
let FP16_VALUES: Float32Array | undefined;

/**
 * Converts a number (any binary64, hence any binary32) to fp16 bits, rounding to nearest,
 * ties to even, with subnormals. Overflow: values at or beyond 65520 (the midpoint between
 * 65504 and 2^16, which ties to the even "2^16") become ±Inf in 'inf' mode, ±65504 (0x7BFF) in
 * 'saturate' mode. NaN -> 0x7E00 ('inf') or +0 ('saturate'). -0 keeps its sign.
 * Source: IEEE 754-2008 roundTiesToEven; aclrtFloatOverflowMode for 'saturate'.
 * @example toFp16Bits(1) === 0x3c00; toFp16Bits(65520) === 0x7c00; toFp16Bits(2 ** -25) === 0
 */
export function toFp16Bits(x: number, overflow: Fp16Overflow = 'inf'): number {
  if (Number.isNaN(x)) return overflow === 'saturate' ? 0 : FP16_NAN_BITS;
  // The sign and the binary64 exponent come straight from the bits (no log2): -0 keeps its sign.
  F64[0] = x;
  const hi = U32[HI]!;
  const sign = (hi >>> 16) & 0x8000;
  const biased = (hi >>> 20) & 0x7ff;
  const a = sign ? -x : x;
  let e = biased - 1023; // 2^e <= a < 2^(e+1) for normal binary64; below -1022 for 0 and subnormals
  if (e < -14) {
    // fp16 subnormal range (a < 2^-14): the quantum is 2^-24. a * 2^24 < 1024 is exact (a power
    // of two), and adding then subtracting 2^52 rounds it to an integer, ties to even (binary64
    // addition rounds to nearest even, and the spacing of doubles in [2^52, 2^53) is 1).
    // 1024 is exactly the smallest normal, 0x0400.
    return sign | (a * 2 ** 24 + ROUND_SHIFTER - ROUND_SHIFTER);
  }
  if (e > 15) return overflow === 'saturate' ? sign | 0x7bff : sign | 0x7c00; // also Inf
  let m = a * POW2_10_MINUS_E[e + 14]! + ROUND_SHIFTER - ROUND_SHIFTER; // in [1024, 2048]
  if (m === 2048) {
    m = 1024;
    e += 1;
    if (e > 15) return overflow === 'saturate' ? sign | 0x7bff : sign | 0x7c00;
  }
  return sign | ((e + 15) << 10) | (m - 1024);
}

/**
 * Decodes fp16 bits (0..0xFFFF) to the exact number they represent (±Inf, NaN included).
 * Source: IEEE 754-2008 binary16 layout (1 sign, 5 exponent, 10 fraction bits, bias 15).
 */
export function fp16BitsToNumber(bits: number): number {
  FP16_VALUES ??= Float32Array.from({ length: 0x10000 }, (_, b) => decodeFp16(b));
  return FP16_VALUES[bits & 0xffff]!;
}

/** Decodes fp16 bits arithmetically (builds the {@link FP16_VALUES} table). */
function decodeFp16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** Rounds a number to the nearest fp16 value (ties to even) and returns it as a number. */
export function roundToFp16(x: number, overflow: Fp16Overflow = 'inf'): number {
  return fp16BitsToNumber(toFp16Bits(x, overflow));
}

/** True when `x` is exactly representable in fp16 (±Inf and NaN count as representable). */
export function isFp16Value(x: number): boolean {
  if (Number.isNaN(x)) return true;
  return Object.is(fp16BitsToNumber(toFp16Bits(x)), x);
}

function requireFp16(x: number, what: string): void {
  if (!isFp16Value(x)) throw new RangeError(`${what}: ${x} is not an fp16 value`);
}

/**
 * fp16 multiply: exact product (binary64, see module comment) rounded once to fp16.
 * Operands must already be fp16 values. Source: IEEE 754 multiplication on the Ascend vector
 * unit (vmul/vmuls in fp16), e.g. TBE ascend_quant.py `x * scale` with a float16 constant.
 */
export function mul16(a: number, b: number, overflow: Fp16Overflow = 'inf'): number {
  requireFp16(a, 'mul16');
  requireFp16(b, 'mul16');
  return roundToFp16(a * b, overflow);
}

/**
 * fp16 add: exact sum (binary64, see module comment) rounded once to fp16.
 * Operands must already be fp16 values. Source: IEEE 754 addition (vadd/vadds in fp16),
 * e.g. TBE ascend_quant.py `+ offset` with a float16 constant.
 */
export function add16(a: number, b: number, overflow: Fp16Overflow = 'inf'): number {
  requireFp16(a, 'add16');
  requireFp16(b, 'add16');
  return roundToFp16(a + b, overflow);
}

/**
 * Rounds the exact value n * 2^exp (n an arbitrary-size integer) once to fp16 bits, ties to
 * even, with subnormals and the given overflow mode. Used where the exact value does not fit
 * binary64 (int32 x fp32 products have up to 55 significant bits) and as an independent
 * cross-check of {@link toFp16Bits} in the tests.
 */
export function scaledBigIntToFp16Bits(
  n: bigint,
  exp: number,
  overflow: Fp16Overflow = 'inf',
): number {
  const sign = n < 0n ? 0x8000 : 0;
  let a = n < 0n ? -n : n;
  if (a === 0n) return sign;
  let e2 = exp;
  // Normalise so that a is odd (or zero), keeping a * 2^e2 unchanged.
  while ((a & 1n) === 0n) {
    a >>= 1n;
    e2 += 1;
  }
  const bitLen = a.toString(2).length; // a in [2^(bitLen-1), 2^bitLen)
  const topExp = bitLen - 1 + e2; // value in [2^topExp, 2^(topExp+1))
  // Quantum of the fp16 grid at this magnitude: 2^(max(topExp, -14) - 10).
  const q = Math.max(topExp, -14) - 10;
  // Value / 2^q = a * 2^(e2 - q); round it half to even to an integer m.
  const shift = e2 - q;
  let m: bigint;
  if (shift >= 0) {
    m = a << BigInt(shift);
  } else {
    const s = BigInt(-shift);
    const whole = a >> s;
    const rem = a - (whole << s);
    const half = 1n << (s - 1n);
    if (rem > half || (rem === half && (whole & 1n) === 1n)) m = whole + 1n;
    else m = whole;
  }
  // Reassemble: value = m * 2^q with m <= 2048.
  let mm = Number(m);
  let qq = q;
  if (mm === 2048) {
    mm = 1024;
    qq += 1;
  }
  const overflowBits = overflow === 'saturate' ? sign | 0x7bff : sign | 0x7c00;
  if (mm < 1024) return sign | mm; // subnormal (qq === -24)
  const e = qq + 10; // unbiased exponent
  if (e > 15) return overflowBits;
  return sign | ((e + 15) << 10) | (mm - 1024);
}

/**
 * Splits a finite binary64 into an integer significand and a power of two: x = n * 2^exp
 * exactly. Used to feed {@link scaledBigIntToFp16Bits}.
 */
export function decomposeDouble(x: number): { n: bigint; exp: number } {
  if (!Number.isFinite(x)) throw new RangeError(`decomposeDouble: ${x} is not finite`);
  if (x === 0) return { n: 0n, exp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  const fracHi = hi & 0xfffff;
  let n = (BigInt(fracHi) << 32n) | BigInt(lo);
  let exp: number;
  if (biased === 0) {
    exp = -1074;
  } else {
    n |= 1n << 52n;
    exp = biased - 1075;
  }
  return { n: x < 0 ? -n : n, exp };
}
