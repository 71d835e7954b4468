import { describe, expect, it } from 'vitest';
import { tensor } from '../tensor/index.ts';
import {
  ascendAntiQuant,
  ascendAntiQuantValue,
  ascendDequantV100,
  ascendDequantV100Value,
  ascendDequantV200,
  ascendDequantV200Value,
  ascendRequant,
  ascendRequantValue,
  deqScaleFp16,
  packDeqScaleV200,
  unpackDeqScaleV200,
} from './ascend-dequant.ts';
import { fp16BitsToNumber, toFp16Bits } from './fp16.ts';

describe('v100 deq_scale stored as fp16', () => {
  it('0.02 * 0.003 = 6e-5 is subnormal in fp16: 6e-5 * 2^24 = 1006.63 -> 1007 * 2^-24', () => {
    expect(deqScaleFp16(0.02, 0.003)).toBe(1007 * 2 ** -24);
  });
  it('4e-8 -> 2^-24 (4e-8 * 2^24 = 0.67 -> 1 quantum): 49% relative error', () => {
    expect(deqScaleFp16(2e-4, 2e-4)).toBe(2 ** -24);
  });
  it('1e-4 * 1e-4 = 1e-8 < 2^-25 underflows to 0 and zeroes the layer output', () => {
    // 1e-8 * 2^24 = 0.168 quanta -> 0.
    const d = deqScaleFp16(1e-4, 1e-4);
    expect(d).toBe(0);
    const acc = tensor('int32', [1, 1, 1, 3], Int32Array.from([1000, -5000, 123456]));
    const y = ascendDequantV100(acc, [d]);
    expect(Array.from(y.data).map(fp16BitsToNumber)).toEqual([0, -0, 0]);
    expect(Array.from(y.data).every((b) => (b & 0x7fff) === 0)).toBe(true);
  });
});

describe("v100: 'fused' vs 'cast-then-mul'", () => {
  const d = 1 - 2 ** -10; // 0.9990234375 = 0x3BFF
  it('acc 2049, d = 1 - 2^-10: fused 2047, cast-then-mul 2046', () => {
    // fused: 2049 - 2049 * 2^-10 = 2046.9990234375; quantum 1 in [1024, 2048) -> 2047.
    // cast: fp16(2049) = 2048 (tie between 2048 (even) and 2050); 2048 * d = 2046 exactly.
    expect(ascendDequantV100Value(2049, d)).toBe(2047);
    expect(ascendDequantV100Value(2049, d, { reading: 'cast-then-mul' })).toBe(2046);
  });
  it('acc 100003 beyond fp16, d = fp16(0.1): fused 10000; cast-then-mul 6548 (saturate) / Inf (IEEE)', () => {
    const d01 = fp16BitsToNumber(toFp16Bits(0.1)); // 1638 * 2^-14 = 0.0999755859375
    // fused: 100003 * 0.0999755859375 = 9997.858...; quantum 8 in [8192, 16384):
    //        1249.73 -> 1250 -> 10000.
    // cast (saturation mode): fp16(100003) = 65504; 65504 * d01 = 6548.80078125; quantum 4:
    //        1637.2 -> 1637 -> 6548.   IEEE mode: Inf * d01 = Inf.
    expect(ascendDequantV100Value(100003, d01)).toBe(10000);
    expect(ascendDequantV100Value(100003, d01, { reading: 'cast-then-mul' })).toBe(6548);
    expect(ascendDequantV100Value(100003, d01, { reading: 'cast-then-mul', overflow: 'inf' })).toBe(
      Number.POSITIVE_INFINITY,
    );
  });
  it('sqrt_mode multiplies by d again (rounded): 1000 * 0.5 * 0.5 = 250; relu -> +0', () => {
    expect(ascendDequantV100Value(1000, 0.5, { sqrtMode: true })).toBe(250);
    const r = ascendDequantV100Value(-1000, 0.5, { reluFlag: true });
    expect(Object.is(r, 0)).toBe(true);
  });
  it('per-channel deq scales on an NCHW tensor', () => {
    const acc = tensor('int32', [1, 2, 1, 2], Int32Array.from([10, 20, 10, 20]));
    const y = ascendDequantV100(acc, [0.5, 0.25]);
    expect(Array.from(y.data).map(fp16BitsToNumber)).toEqual([5, 10, 2.5, 5]);
  });
  it('rejects a non-fp16 deq_scale and non-int32 accumulators', () => {
    expect(() => ascendDequantV100Value(1, 0.1)).toThrow(RangeError);
    expect(() => ascendDequantV100Value(2 ** 31, 0.5)).toThrow(RangeError);
  });
});

describe('v200 uint64 deq_scale packing', () => {
  it('1.0 -> 0x3F800000 in the low word, high bits zero', () => {
    expect(packDeqScaleV200(1)).toBe(0x3f800000n);
    expect(packDeqScaleV200(1)).toBe(1065353216n);
  });
  it('0.1 -> fp32 bits 0x3DCCCCCD', () => {
    expect(packDeqScaleV200(0.1)).toBe(0x3dcccccdn);
  });
  it('0.5, offset -1, signMode: 0x3F000000 | (0x1FF << 37) | (1 << 46) = 0x7FE03F000000', () => {
    // 0x1FF << 37 = 0x3FE0_0000_0000; 1 << 46 = 0x4000_0000_0000.
    expect(packDeqScaleV200(0.5, { offset: -1, signMode: true })).toBe(0x7fe03f000000n);
  });
  it('2.0 with offset 5: (5 << 37) | 0x40000000 = 0xA040000000', () => {
    expect(packDeqScaleV200(2, { offset: 5 })).toBe(0xa040000000n);
  });
  it('unpack inverts pack', () => {
    expect(unpackDeqScaleV200(0x7fe03f000000n)).toEqual({ scale: 0.5, offset: -1, signMode: true });
    expect(unpackDeqScaleV200(0xa040000000n)).toEqual({ scale: 2, offset: 5, signMode: false });
    expect(unpackDeqScaleV200(packDeqScaleV200(0.1)).scale).toBe(Math.fround(0.1));
    expect(unpackDeqScaleV200(packDeqScaleV200(3, { offset: -256 })).offset).toBe(-256);
    expect(() => packDeqScaleV200(1, { offset: 256 })).toThrow(RangeError);
  });
});

describe('v200 dequant: fp32 product then fp16 (double rounding) vs exact', () => {
  it('acc 7, s = 9591662 * 2^-26: fp32 path 1.0 (0x3C00), exact 0x3C01', () => {
    // s = fp32 nearest to (1 + 2^-11) / 7: (1 + 2^-11) * 2^26 / 7 = 9591661.71 -> 9591662.
    // Exact product 7 * 9591662 * 2^-26 = 67141634 * 2^-26 = (1 + 2^-11) + 2^-25: just above
    // the fp16 midpoint between 1.0 (even) and 1 + 2^-10 (odd) -> 0x3C01.
    // fp32 product: 2^-25 is a quarter of an fp32 ulp at 1 -> rounds to the midpoint itself,
    // which then ties to even -> 0x3C00.
    const s = 9591662 * 2 ** -26;
    expect(Math.fround(s)).toBe(s);
    expect(toFp16Bits(ascendDequantV200Value(7, s))).toBe(0x3c00);
    expect(toFp16Bits(ascendDequantV200Value(7, s, { productRounding: 'exact' }))).toBe(0x3c01);
  });
  it('plain values, relu and a packed per-channel tensor', () => {
    expect(ascendDequantV200Value(1000, 0.5)).toBe(500);
    expect(Object.is(ascendDequantV200Value(-3, 0.5, { reluFlag: true }), 0)).toBe(true);
    const acc = tensor('int32', [2, 2], Int32Array.from([4, 8, -4, 100000]));
    const y = ascendDequantV200(acc, [packDeqScaleV200(0.25), packDeqScaleV200(1)]);
    // 100000 * 1 -> beyond 65504 -> saturation mode 65504.
    expect(Array.from(y.data).map(fp16BitsToNumber)).toEqual([1, 8, -1, 65504]);
  });
});

describe('AscendRequant', () => {
  it('ties to even: 5 * 0.5 = 2.5 -> 2; 7 * 0.5 = 3.5 -> 4; -5 * 0.5 = -2.5 -> -2', () => {
    expect(ascendRequantValue(5, 0.5)).toBe(2);
    expect(ascendRequantValue(7, 0.5)).toBe(4);
    expect(ascendRequantValue(-5, 0.5)).toBe(-2);
  });
  it('saturates to [-128, 127]; relu after saturation', () => {
    expect(ascendRequantValue(1000, 1)).toBe(127);
    expect(ascendRequantValue(-1000, 1)).toBe(-128);
    expect(ascendRequantValue(-5, 0.5, 0, { reluFlag: true })).toBe(0);
  });
  it('offset is added before the single rounding: 5 * 0.5 + 3 = 5.5 -> 6', () => {
    expect(ascendRequantValue(5, 0.5, 3)).toBe(6);
  });
  it('fp32 vs exact: (2^24 + 1) * 2^-25 = 0.5 + 2^-25 -> exact 1, fp32 path 0', () => {
    // fp32(2^24 + 1) = 2^24 (tie to even) -> 0.5 -> half to even -> 0.
    expect(ascendRequantValue(2 ** 24 + 1, 2 ** -25)).toBe(0);
    expect(ascendRequantValue(2 ** 24 + 1, 2 ** -25, 0, { productRounding: 'exact' })).toBe(1);
  });
  it("tensor form uses each word's scale and offset", () => {
    const acc = tensor('int32', [1, 2], Int32Array.from([5, 5]));
    const y = ascendRequant(acc, [packDeqScaleV200(0.5), packDeqScaleV200(0.5, { offset: 3 })]);
    expect(Array.from(y.data)).toEqual([2, 6]);
  });
});

describe('AscendAntiQuant', () => {
  it('(3 + (-1)) * 0.5 = 1; sqrt_mode: 100 * 0.5 * 0.5 = 25', () => {
    expect(ascendAntiQuantValue(3, { scale: 0.5, offset: -1 })).toBe(1);
    expect(ascendAntiQuantValue(100, { scale: 0.5, offset: 0, sqrtMode: true })).toBe(25);
  });
  it('127 * fp16(0.1) = 12.6969 -> quantum 2^-7: 1625.2 -> 1625/128 = 12.6953125', () => {
    expect(ascendAntiQuantValue(127, { scale: 0.1, offset: 0 })).toBe(12.6953125);
    expect(Array.from(ascendAntiQuant(Int8Array.from([127]), { scale: 0.1, offset: 0 }))).toEqual([
      toFp16Bits(12.6953125),
    ]);
  });
});
