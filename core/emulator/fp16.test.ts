import { describe, expect, it } from 'vitest';
import { seededPrng as mulberry32 } from '../random.ts';
import {
  add16,
  decomposeDouble,
  fp16BitsToNumber,
  mul16,
  roundToFp16,
  scaledBigIntToFp16Bits,
  toFp16Bits,
} from './fp16.ts';
import { roundHalfEven } from './rounding.ts';

describe('toFp16Bits (hand-derived bit patterns)', () => {
  it('1.0 = 0x3C00: sign 0, exponent 0+15=15 (0b01111), fraction 0', () => {
    expect(toFp16Bits(1)).toBe(0x3c00);
  });
  it('65504 = 0x7BFF: (2 - 2^-10) * 2^15, exponent 30, fraction all ones', () => {
    expect(toFp16Bits(65504)).toBe(0x7bff);
  });
  it('65519 rounds down to 65504 (below the midpoint 65520)', () => {
    expect(toFp16Bits(65519)).toBe(0x7bff);
  });
  it('65520 -> Inf: midpoint of 65504 (odd fraction 0x3FF) and 2^16 (even): tie goes up, overflow', () => {
    expect(toFp16Bits(65520)).toBe(0x7c00);
    expect(toFp16Bits(-65520)).toBe(0xfc00);
  });
  it('65520 saturates to 0x7BFF in saturation mode; Inf too; NaN -> +0', () => {
    expect(toFp16Bits(65520, 'saturate')).toBe(0x7bff);
    expect(toFp16Bits(Number.POSITIVE_INFINITY, 'saturate')).toBe(0x7bff);
    expect(toFp16Bits(Number.NEGATIVE_INFINITY, 'saturate')).toBe(0xfbff);
    expect(toFp16Bits(Number.NaN, 'saturate')).toBe(0);
  });
  it('2^-24 = 0x0001 (smallest subnormal)', () => {
    expect(toFp16Bits(2 ** -24)).toBe(0x0001);
  });
  it('2^-25 -> 0: halfway between 0 (even) and 2^-24 (odd)', () => {
    expect(toFp16Bits(2 ** -25)).toBe(0x0000);
    expect(toFp16Bits(-(2 ** -25))).toBe(0x8000); // keeps the sign: -0
  });
  it('3*2^-25 -> 0x0002: halfway between 1*2^-24 (odd) and 2*2^-24 (even)', () => {
    expect(toFp16Bits(3 * 2 ** -25)).toBe(0x0002);
  });
  it('just above 2^-25 rounds up to 0x0001', () => {
    expect(toFp16Bits(2 ** -25 + 2 ** -40)).toBe(0x0001);
  });
  it('1 + 2^-11 -> 1.0: halfway between 1 (fraction 0, even) and 1 + 2^-10', () => {
    expect(toFp16Bits(1 + 2 ** -11)).toBe(0x3c00);
  });
  it('1 + 3*2^-11 -> 0x3C02: halfway between fraction 1 (odd) and 2 (even)', () => {
    expect(toFp16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
  it('largest subnormal rounding up into the smallest normal: (1024 - 0.5) * 2^-24 -> 0x0400', () => {
    // 1023.5 quanta: tie between 1023 (odd) and 1024 (even) -> 1024 = 0x0400 = 2^-14
    expect(toFp16Bits(1023.5 * 2 ** -24)).toBe(0x0400);
  });
  it('-0 -> 0x8000, +0 -> 0x0000, -1 -> 0xBC00', () => {
    expect(toFp16Bits(-0)).toBe(0x8000);
    expect(toFp16Bits(0)).toBe(0x0000);
    expect(toFp16Bits(-1)).toBe(0xbc00);
  });
  it('NaN -> 0x7E00, Inf -> 0x7C00', () => {
    expect(toFp16Bits(Number.NaN)).toBe(0x7e00);
    expect(toFp16Bits(Number.POSITIVE_INFINITY)).toBe(0x7c00);
  });
  it('2049 (not representable: quantum 2 above 2048) ties to even 2048; 2051 ties to 2052', () => {
    expect(fp16BitsToNumber(toFp16Bits(2049))).toBe(2048);
    expect(fp16BitsToNumber(toFp16Bits(2051))).toBe(2052);
  });
});

describe('fp16BitsToNumber', () => {
  it('decodes the reference patterns', () => {
    expect(fp16BitsToNumber(0x3c00)).toBe(1);
    expect(fp16BitsToNumber(0x7bff)).toBe(65504);
    expect(fp16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(fp16BitsToNumber(0x0400)).toBe(2 ** -14);
    expect(Object.is(fp16BitsToNumber(0x8000), -0)).toBe(true);
    expect(fp16BitsToNumber(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(fp16BitsToNumber(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(fp16BitsToNumber(0x7e00))).toBe(true);
  });
  it('round-trips every non-NaN bit pattern', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = fp16BitsToNumber(b);
      if (Number.isNaN(v)) continue;
      expect(toFp16Bits(v)).toBe(b);
    }
  });
});

describe('mul16 / add16', () => {
  it('mul16 rounds the exact product once: 1.5 * (1 + 2^-10) = 1.5 + 1.5*2^-10', () => {
    // exact = 1.5 + 1.5*2^-10 = 1 + 0.5 + 2^-10 + 2^-11: fraction quanta = 512 + 1 + 0.5 -> tie,
    // 513 is odd -> 514: 1 + 514*2^-10 = 0x3C00 + 514 = 0x3E02
    expect(toFp16Bits(mul16(1.5, 1 + 2 ** -10))).toBe(0x3e02);
  });
  it('add16: 2048 + 1 = 2049 ties to 2048 (even), 2048 + 3 = 2051 ties to 2052', () => {
    expect(add16(2048, 1)).toBe(2048);
    expect(add16(2048, 3)).toBe(2052);
  });
  it('add16 rounds the exact sum: 1 + (2^-11 + 2^-21) is above the midpoint -> 0x3C01', () => {
    // b = 2^-11 + 2^-21 is fp16 (11 significant bits, quantum 2^-21 in [2^-11, 2^-10)).
    // Exact sum 1 + 2^-11 + 2^-21 is just above the midpoint 1 + 2^-11 -> 1 + 2^-10.
    expect(toFp16Bits(add16(1, 2 ** -11 + 2 ** -21))).toBe(0x3c01);
  });
  it('double rounding binary64 -> binary32 -> binary16 goes wrong on a non-fp16-op value', () => {
    // x = 1 + 2^-11 + 2^-30: directly, x is above the midpoint 1 + 2^-11 -> 0x3C01.
    // Through binary32 (24 bits) the 2^-30 is lost, x becomes the midpoint itself, and the tie
    // then goes to even (1.0 = 0x3C00). This is why every rule here rounds once, from binary64
    // or from an exact BigInt, unless the hardware is stated to hold an fp32 intermediate.
    const x = 1 + 2 ** -11 + 2 ** -30;
    expect(toFp16Bits(x)).toBe(0x3c01);
    expect(toFp16Bits(Math.fround(x))).toBe(0x3c00);
  });
  it('rejects operands that are not fp16 values', () => {
    expect(() => mul16(0.1, 1)).toThrow(RangeError);
    expect(() => add16(1, 2049)).toThrow(RangeError);
  });
  it('overflow of an fp16 product: 256 * 256 = 65536 -> Inf / 65504 (saturate)', () => {
    expect(mul16(256, 256)).toBe(Number.POSITIVE_INFINITY);
    expect(mul16(256, 256, 'saturate')).toBe(65504);
  });
});

describe('independent cross-check against the BigInt rounding path', () => {
  it('toFp16Bits agrees with scaledBigIntToFp16Bits on 20000 seeded random doubles', () => {
    const rnd = mulberry32(1234);
    for (let i = 0; i < 20000; i++) {
      // Spread magnitudes from 2^-30 to 2^17 so subnormals, normals and overflow all occur.
      const mag = 2 ** (rnd() * 47 - 30);
      const x = (rnd() < 0.5 ? -1 : 1) * mag * (1 + rnd());
      const { n, exp } = decomposeDouble(x);
      expect(scaledBigIntToFp16Bits(n, exp)).toBe(toFp16Bits(x));
      expect(scaledBigIntToFp16Bits(n, exp, 'saturate')).toBe(toFp16Bits(x, 'saturate'));
    }
  });
  it('agrees on every exact midpoint between adjacent fp16 values', () => {
    for (let b = 0; b < 0x7bff; b += 7) {
      const lo = fp16BitsToNumber(b);
      const hi = fp16BitsToNumber(b + 1);
      const mid = (lo + hi) / 2; // exact in binary64
      const { n, exp } = decomposeDouble(mid);
      const expected = (b & 1) === 0 ? b : b + 1; // ties to the even pattern
      expect(toFp16Bits(mid)).toBe(expected);
      expect(scaledBigIntToFp16Bits(n, exp)).toBe(expected);
    }
  });
  it('roundToFp16 is idempotent', () => {
    const rnd = mulberry32(99);
    for (let i = 0; i < 1000; i++) {
      const x = (rnd() - 0.5) * 1000;
      const r = roundToFp16(x);
      expect(roundToFp16(r)).toBe(r);
    }
  });
});

/**
 * The textbook conversion toFp16Bits used before it read the exponent from the bits (log2 to
 * find the binade, roundHalfEven on the scaled value): the oracle for the fast path.
 */
function toFp16BitsTextbook(x: number, overflow: 'inf' | 'saturate' = 'inf'): number {
  if (Number.isNaN(x)) return overflow === 'saturate' ? 0 : 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const overflowBits = overflow === 'saturate' ? sign | 0x7bff : sign | 0x7c00;
  if (a === Number.POSITIVE_INFINITY) return overflowBits;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  if (2 ** (e + 1) <= a) e += 1;
  if (e > 15) return overflowBits;
  let m = roundHalfEven(a * 2 ** (10 - e));
  if (m === 2048) {
    m = 1024;
    e += 1;
  }
  if (e > 15) return overflowBits;
  return sign | ((e + 15) << 10) | (m - 1024);
}

/** The binary64 neighbours of x (x itself when x is not finite). */
function neighbours(x: number): number[] {
  const f = new Float64Array([x]);
  const b = new BigInt64Array(f.buffer);
  const out: number[] = [];
  for (const d of [-1n, 1n]) {
    const g = new BigInt64Array([b[0]! + d]);
    out.push(new Float64Array(g.buffer)[0]!);
  }
  return out;
}

describe('toFp16Bits (exponent from the bits) against the textbook conversion', () => {
  const both = (x: number) => {
    expect(toFp16Bits(x), `${x}`).toBe(toFp16BitsTextbook(x));
    expect(toFp16Bits(x, 'saturate'), `${x} saturate`).toBe(toFp16BitsTextbook(x, 'saturate'));
  };
  it('every fp16 value, every midpoint between neighbours, and the doubles either side of each', () => {
    for (let b = 0; b < 0x7c00; b++) {
      for (const s of [1, -1]) {
        const v = s * fp16BitsToNumber(b);
        both(v);
        // the midpoint to the next pattern (65520 above 0x7BFF: the overflow threshold)
        const next = b === 0x7bff ? 65536 : fp16BitsToNumber(b + 1);
        const mid = (s * (fp16BitsToNumber(b) + next)) / 2;
        both(mid);
        for (const n of neighbours(mid)) both(n);
      }
    }
  });
  it('400000 seeded doubles over the whole binary64 range, binary64 subnormals and specials', () => {
    const rnd = mulberry32(20261126);
    for (let i = 0; i < 400000; i++) {
      // exponents -1074..1023, denser near the fp16 range
      const exp = i % 2 ? Math.floor(rnd() * 2098) - 1074 : Math.floor(rnd() * 60) - 40;
      const x = (rnd() < 0.5 ? -1 : 1) * (1 + rnd()) * 2 ** exp;
      both(x);
    }
    for (const x of [
      0,
      -0,
      5e-324,
      -5e-324,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Infinity,
      -Infinity,
      NaN,
    ])
      both(x);
  });
});
