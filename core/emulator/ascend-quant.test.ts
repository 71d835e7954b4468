import { describe, expect, it } from 'vitest';
import { seededPrng as mulberry32 } from '../random.ts';
import {
  type AscendQuantParams,
  ascendQuant,
  ascendQuantConstants,
  ascendQuantFp16,
  ascendQuantFunction,
  ascendQuantTrace,
  ascendQuantValue,
  checkAscendQuantParams,
  makeAscendQuantParams,
} from './ascend-quant.ts';
import { fp16BitsToNumber, toFp16Bits } from './fp16.ts';
import { roundHalfEven } from './rounding.ts';

const q = (x: number, p: AscendQuantParams) => ascendQuantValue(Math.fround(x), p);

describe('AscendQuant: ties after the fp16 steps go to even', () => {
  const p: AscendQuantParams = { scale: 0.5, offset: 0 };
  it('5 * 0.5 = 2.5 -> 2; 7 * 0.5 = 3.5 -> 4; -5 * 0.5 = -2.5 -> -2; 9 * 0.5 = 4.5 -> 4', () => {
    // 0.5 and 5, 7, 9 are fp16 values; the products are exact fp16 values (.5 steps < 2048).
    expect(q(5, p)).toBe(2);
    expect(q(7, p)).toBe(4);
    expect(q(-5, p)).toBe(-2);
    expect(q(9, p)).toBe(4);
  });
  it('offset is added before rounding: 5 * 0.5 + 3 = 5.5 -> 6 (not round(2.5) + 3 = 5)', () => {
    expect(q(5, { scale: 0.5, offset: 3 })).toBe(6);
  });
  it('the fp16 product lands exactly on 3.5: 35 * fp16(0.1) -> 4 (unrounded product gives 3)', () => {
    // fp16(0.1) = 1638 * 2^-14 = 0.0999755859375 (0x2E66).
    // 35 * 1638 * 2^-14 = 3.4991455078125; in [2, 4) the fp16 quantum is 2^-9:
    // 3.4991455078125 * 512 = 1791.5625 -> 1792 -> 3.5 exactly -> half to even -> 4.
    const p01: AscendQuantParams = { scale: 0.1, offset: 0 };
    expect(ascendQuantConstants(p01).scale16).toBe(0.0999755859375);
    const t = ascendQuantTrace(35, p01);
    expect(t.mul1).toBe(3.5);
    expect(t.y).toBe(4);
    expect(roundHalfEven(35 * 0.0999755859375)).toBe(3);
  });
});

describe('AscendQuant: the fp32 -> fp16 input cast', () => {
  it('fp32 2.5 + 2^-12 is not fp16: it casts to 2.5 and quantizes to 2 (fp32 formula: 3)', () => {
    // In [2, 4) the fp16 quantum is 2^-9; 2^-12 < 2^-10 (half a quantum) -> 2.5.
    const x = 2.5 + 2 ** -12; // exact in fp32
    expect(Math.fround(x)).toBe(x);
    const t = ascendQuantTrace(x, { scale: 1, offset: 0 });
    expect(t.x16).toBe(2.5);
    expect(t.y).toBe(2);
    expect(roundHalfEven(x)).toBe(3);
  });
  it('rejects inputs that are not fp32 values', () => {
    expect(() => ascendQuantValue(0.1, { scale: 1, offset: 0 })).toThrow(RangeError);
  });
});

describe('AscendQuant: subnormal scales and inputs', () => {
  it('subnormal fp16 scale fp32(4.1e-5) -> 688 * 2^-24 pushes 36576 onto a tie: 2 (exact: 1)', () => {
    // 4.1e-5 / 2^-24 = 687.87 -> 688 quanta -> s16 = 688 * 2^-24 (subnormal).
    // 36576 = 1143 * 32 is fp16. 36576 * 688 * 2^-24 = 1.4999084472656...;
    // in [1, 2) the quantum is 2^-10: * 1024 = 1535.906 -> 1536 -> 1.5 -> half to even -> 2.
    const p: AscendQuantParams = { scale: 4.1e-5, offset: 0 };
    expect(ascendQuantConstants(p).scale16).toBe(688 * 2 ** -24);
    expect(checkAscendQuantParams(p).some((s) => s.includes('subnormal'))).toBe(true);
    expect(q(36576, p)).toBe(2);
    expect(roundHalfEven(36576 * 4.1e-5)).toBe(1);
  });
  it('subnormal input: fp32 2^-15 + 2^-25 casts to 2^-15 (512.5 quanta -> 512, even)', () => {
    const x = 2 ** -15 + 2 ** -25;
    const t = ascendQuantTrace(x, { scale: 32768, offset: 0 });
    expect(t.x16).toBe(2 ** -15);
    expect(t.mul1).toBe(1);
    expect(t.y).toBe(1);
  });
  it('a scale that rounds to 0 in fp16 is refused', () => {
    expect(checkAscendQuantParams({ scale: 2 ** -26, offset: 0 })[0]).toMatch(/underflows/);
    expect(() => q(1, { scale: 2 ** -26, offset: 0 })).toThrow(RangeError);
  });
});

describe('AscendQuant: values beyond the fp16 range', () => {
  it('saturation mode: 1e6 -> 65504 -> 127 with scale 1, -1e6 -> -128', () => {
    expect(q(1e6, { scale: 1, offset: 0 })).toBe(127);
    expect(q(-1e6, { scale: 1, offset: 0 })).toBe(-128);
  });
  it('saturation mode keeps a finite 65504: 1e6 * fp16(0.001) -> 65.5 -> 66; IEEE mode: Inf -> 127', () => {
    // fp16(0.001) = 1049 * 2^-20. 65504 * 1049 * 2^-20 = 65.530487060546875; in [64, 128) the
    // quantum is 2^-4: * 16 = 1048.49 -> 1048 -> 65.5 -> half to even -> 66.
    const p: AscendQuantParams = { scale: 0.001, offset: 0 };
    expect(ascendQuantConstants(p).scale16).toBe(1049 * 2 ** -20);
    const t = ascendQuantTrace(1e6, p);
    expect(t.x16).toBe(65504);
    expect(t.mul1).toBe(65.5);
    expect(t.y).toBe(66);
    expect(q(1e6, { ...p, overflow: 'inf' })).toBe(127);
    expect(q(-1e6, { ...p, overflow: 'inf' })).toBe(-128);
  });
  it('IEEE mode: +Inf / -Inf inputs saturate to 127 / -128; NaN -> 0', () => {
    const p: AscendQuantParams = { scale: 1, offset: 0, overflow: 'inf' };
    expect(q(Number.POSITIVE_INFINITY, p)).toBe(127);
    expect(q(Number.NEGATIVE_INFINITY, p)).toBe(-128);
    expect(q(Number.NaN, p)).toBe(0);
  });
  it('a product overflowing fp16: 300 * 300 -> 65504 (saturate) -> 127', () => {
    const t = ascendQuantTrace(300, { scale: 300, offset: 0 });
    expect(t.mul1).toBe(65504);
    expect(t.y).toBe(127);
  });
});

describe('AscendQuant: saturation, round modes, int4', () => {
  it('saturates at -128 / 127', () => {
    expect(q(127.4, { scale: 1, offset: 0 })).toBe(127);
    expect(q(127.5, { scale: 1, offset: 0 })).toBe(127); // 128 (even) -> saturate
    expect(q(-128.5, { scale: 1, offset: 0 })).toBe(-128);
    expect(q(-200, { scale: 1, offset: 0 })).toBe(-128);
    expect(q(100, { scale: 1, offset: 30 })).toBe(127);
  });
  it('round modes on fp16(2.7) = 2.69921875 and its negative', () => {
    const base = { scale: 1, offset: 0 };
    expect(q(2.7, { ...base, roundMode: 'Round' })).toBe(3);
    expect(q(2.7, { ...base, roundMode: 'Floor' })).toBe(2);
    expect(q(2.7, { ...base, roundMode: 'Ceil' })).toBe(3);
    expect(q(2.7, { ...base, roundMode: 'Trunc' })).toBe(2);
    expect(q(-2.7, { ...base, roundMode: 'Round' })).toBe(-3);
    expect(q(-2.7, { ...base, roundMode: 'Floor' })).toBe(-3);
    expect(q(-2.7, { ...base, roundMode: 'Ceil' })).toBe(-2);
    expect(q(-2.7, { ...base, roundMode: 'Trunc' })).toBe(-2);
  });
  it('int4 output saturates to [-8, 7]; 7.5 -> 8 (even) -> 7', () => {
    const p: AscendQuantParams = { scale: 1, offset: 0, dstType: 'int4' };
    expect(q(7.5, p)).toBe(7);
    expect(q(6.5, p)).toBe(6);
    expect(q(-9, p)).toBe(-8);
    expect(checkAscendQuantParams({ ...p, offset: 9 })[0]).toMatch(/offset/);
  });
});

describe('AscendQuant: sqrt_mode and the "scale does not fit fp16" condition', () => {
  it('scale 65519 fits (rounds to 65504), 65520 does not', () => {
    expect(checkAscendQuantParams({ scale: 65519, offset: 0 })).toEqual([]);
    expect(checkAscendQuantParams({ scale: 65520, offset: 0 })[0]).toMatch(/does not fit fp16/);
    expect(() => q(1, { scale: 1e5, offset: 0 })).toThrow(/does not fit fp16/);
  });
  it('makeAscendQuantParams switches to sqrt_mode when 1/scale_d does not fit fp16', () => {
    expect(makeAscendQuantParams(0.02, 0)).toMatchObject({
      scale: Math.fround(50),
      sqrtMode: false,
    });
    const p = makeAscendQuantParams(1e-5, 0);
    expect(p.sqrtMode).toBe(true);
    expect(p.scale).toBe(Math.fround(Math.sqrt(1e5)));
  });
  it('sqrt_mode rounds each multiply: 0.001 * 316.25 * 316.25', () => {
    // s16 = fp16(316.2277...) : quantum 0.25 in [256, 512): 1264.91 -> 1265 -> 316.25.
    // x16 = fp16(0.001) = 1049 * 2^-20.
    // mul1 = 1049 * 316.25 * 2^-20 = 0.316378...; quantum 2^-12 in [0.25, 0.5):
    //        * 4096 = 1295.88 -> 1296 -> 0.31640625.
    // mul2 = 0.31640625 * 316.25 = 100.0634765625; quantum 2^-4: * 16 = 1601.02 -> 1601 -> 100.0625.
    // y = round(100.0625) = 100.
    const p = makeAscendQuantParams(1e-5, 0);
    expect(ascendQuantConstants(p).scale16).toBe(316.25);
    const t = ascendQuantTrace(Math.fround(0.001), p);
    expect(t.x16).toBe(1049 * 2 ** -20);
    expect(t.mul1).toBe(0.31640625);
    expect(t.mul2).toBe(100.0625);
    expect(t.y).toBe(100);
  });
});

describe('AscendQuant: array entry points', () => {
  it('ascendQuant over a Float32Array and ascendQuantFp16 over fp16 bits agree', () => {
    const x = Float32Array.from([0, 1.5, 2.5, -2.5, 300, -300, 0.26]);
    const p: AscendQuantParams = { scale: 2, offset: -1 };
    const a = ascendQuant(x, p);
    const b = ascendQuantFp16(
      Uint16Array.from(x, (v) => toFp16Bits(v)),
      p,
    );
    expect(Array.from(a)).toEqual(Array.from(b));
    // 0*2-1=-1; 1.5*2-1=2; 2.5*2-1=4; -2.5*2-1=-6; 600-1 -> 127; -601 -> -128;
    // fp16(0.26)=0.2600097656 -> *2 = 0.520019... -> -1 = -0.47998 -> round -> -0 -> 0
    expect(Array.from(a)).toEqual([-1, 2, 4, -6, 127, -128, 0]);
  });
});

describe('ascendQuantFunction: the parameters checked once', () => {
  it('equals ascendQuantValue on every fp16 value, for plain, offset and sqrt_mode parameters', () => {
    const records: AscendQuantParams[] = [
      { scale: 41.3, offset: 0 },
      { scale: 57.875, offset: -128 },
      makeAscendQuantParams(1 / 70000, 3), // sqrt_mode
    ];
    expect(records[2]!.sqrtMode).toBe(true);
    for (const p of records) {
      const f = ascendQuantFunction(p);
      for (let bits = 0; bits < 0x10000; bits++) {
        const x = fp16BitsToNumber(bits);
        expect(f(x)).toBe(ascendQuantValue(x, p));
      }
    }
  });
  it('throws what ascendQuantValue throws: unusable parameters at once, non-fp32 inputs per call', () => {
    expect(() => ascendQuantFunction({ scale: 1e6, offset: 0 })).toThrow(/does not fit fp16/);
    expect(() => ascendQuantValue(1, { scale: 1e6, offset: 0 })).toThrow(/does not fit fp16/);
    expect(() => ascendQuantFunction({ scale: 2, offset: 0.5 })).toThrow(/not an integer/);
    const f = ascendQuantFunction({ scale: 2, offset: 0 });
    expect(() => f(0.1)).toThrow(/not an fp32 value/);
    expect(f(Math.fround(0.1))).toBe(0);
  });
});

describe('AscendQuant property tests (seeded)', () => {
  it('equals clip(rint(x * s + o)) where every fp16 step is exact by construction', () => {
    // x = k/8, s in {1, 2, 4}, o integer: x*s and x*s + o are multiples of 1/8 below 256 in
    // magnitude, hence exact fp16 values; the emulator and the plain formula must agree,
    // including on the many exact .5 ties this domain produces.
    const rnd = mulberry32(20240601);
    const scales = [1, 2, 4];
    for (let i = 0; i < 5000; i++) {
      const s = scales[Math.floor(rnd() * 3)]!;
      const o = Math.floor(rnd() * 17) - 8;
      const maxK = Math.floor((240 / s) * 8);
      const k = Math.floor(rnd() * (2 * maxK + 1)) - maxK;
      const x = k / 8;
      const expected = Math.min(127, Math.max(-128, roundHalfEven(x * s + o)));
      expect(ascendQuantValue(x, { scale: s, offset: o })).toBe(expected);
    }
  });
  it('stays within 1 of the exact-arithmetic result for general fp32 inputs and normal scales', () => {
    const rnd = mulberry32(7);
    for (let i = 0; i < 5000; i++) {
      const scale = Math.fround(2 ** (rnd() * 8 - 2)); // [0.25, 64)
      const offset = Math.floor(rnd() * 41) - 20;
      const x = Math.fround((rnd() * 2 - 1) * (100 / scale));
      const ideal = Math.min(127, Math.max(-128, roundHalfEven(x * scale + offset)));
      const got = ascendQuantValue(x, { scale, offset });
      expect(Math.abs(got - ideal)).toBeLessThanOrEqual(1);
    }
  });
});
