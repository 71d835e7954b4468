/**
 * AscendDequant (int32 -> fp16), AscendRequant (int32 -> int8) and AscendAntiQuant
 * (int8 -> fp16), scalar reference.
 *
 * Sources (public mirror of CANN TBE ops: dengguojie/vue-element-admin, ops/built-in/tbe/impl/):
 * - ascend_dequant.py: v100 (Ascend 310) writes `x.astype("float16") * deq_scale` with an fp16
 *   deq_scale (again `* deq_scale` with sqrt_mode, then `tvm.relu` with relu_flag); v200
 *   (Ascend 310P, `is_v200_version` / SHORT_SOC_VERSION Ascend310P) uses the hardware
 *   `tvm.deq_cast` / `tvm.vdeq_cast(x, deq_scale, "float16", do_relu=relu_flag)` with a uint64
 *   deq_scale, and rejects sqrt_mode for uint64.
 * - ascend_requant.py: `tvm.deq_cast` / `vdeq_cast(x, req_scale, "int8", do_relu)` with a uint64
 *   req_scale.
 * - ascend_anti_quant.py: cast int8 -> fp16, `+ offset` (fp16 const), `* scale` (fp16 const,
 *   twice with sqrt_mode).
 * - uint64 layout: asc-devkit `MakeDeqScaleConfig` (fp32 bits in 0-31, 9-bit signed offset in
 *   37-45, sign-mode bit 46), CANN SetDeqScale docs.
 */

import { elementCount, type TensorData, tensor } from '../tensor/index.ts';
import {
  add16,
  decomposeDouble,
  type Fp16Overflow,
  fp16BitsToNumber,
  isFp16Value,
  mul16,
  roundToFp16,
  scaledBigIntToFp16Bits,
  toFp16Bits,
} from './fp16.ts';
import { INT_RANGE, isInt32, roundHalfEven, saturateInt } from './rounding.ts';

/** ReLU on an fp16 value: positive values pass, everything else (-0, NaN too) becomes +0. */
function relu16(x: number): number {
  // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 0) is NaN; this ReLU maps NaN to +0
  return x > 0 ? x : 0;
}

function requireInt32(x: number, what: string): void {
  if (!isInt32(x)) throw new RangeError(`${what}: accumulator ${x} is not int32`);
}

/** Per-channel index of flat element i for dims with the channel on `channelAxis`. */
function channelIndexer(dims: readonly number[], channelAxis: number): (i: number) => number {
  const c = dims[channelAxis];
  if (c === undefined)
    throw new RangeError(`no channel axis ${channelAxis} in [${dims.join(',')}]`);
  const inner = elementCount(dims.slice(channelAxis + 1));
  return (i) => Math.floor(i / inner) % c;
}

function checkScaleCount(n: number, dims: readonly number[], channelAxis: number): void {
  if (n !== 1 && n !== dims[channelAxis]) {
    throw new RangeError(
      `${n} scales for ${dims[channelAxis]} channels (axis ${channelAxis}): need 1 or one per channel`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Ascend 310 (v100): fp16 deq_scale
// ---------------------------------------------------------------------------------------------

/**
 * The fp16 deq_scale of the v100 path: deq_scale = scale_d * scale_w, formed in fp32 (the
 * scales are fp32 calibration records) and stored as fp16, so it is rounded to 11 bits and
 * products below 2^-14 lose precision (subnormal) and products at or below 2^-25 become 0,
 * which zeroes the layer's output. The fp32 intermediate is the emulator's reading of how the
 * toolchain forms the product (not public). Source: AscendDequant v100 requires float16
 * deq_scale (TBE ascend_dequant.py `_check_params`).
 */
export function deqScaleFp16(
  scaleD: number,
  scaleW: number,
  overflow: Fp16Overflow = 'saturate',
): number {
  const product32 = Math.fround(Math.fround(scaleD) * Math.fround(scaleW));
  return roundToFp16(product32, overflow);
}

/**
 * The two readings of the v100 dequantization:
 * - 'fused' (default): the hardware conversion (vconv_deq, s322f16 with DEQSCALE) forms the
 *   exact product int32 x fp16 and rounds it ONCE to fp16. Exact in binary64 (31 + 11 bits).
 * - 'cast-then-mul': the literal TBE expression: int32 -> fp16 cast (rounded; |x| > 65504
 *   overflows), then an fp16 multiply (rounded).
 */
export type DequantV100Reading = 'fused' | 'cast-then-mul';

/** Attributes of AscendDequant on the v100 path. */
export interface AscendDequantV100Params {
  /** Multiply by deq_scale a second time (fp16 multiply, rounded). Default false. */
  sqrtMode?: boolean;
  /** ReLU on the result (negative -> +0). Default false. */
  reluFlag?: boolean;
  /** Which reading of the conversion. Default 'fused'. */
  reading?: DequantV100Reading;
  /** fp16 overflow mode. Default 'saturate'. */
  overflow?: Fp16Overflow;
}

/**
 * AscendDequant v100 on one int32 accumulator with an fp16 deq_scale; returns the fp16 value.
 * fused: r = fp16(acc * d); cast-then-mul: r = fp16(fp16(acc) * d); sqrt_mode: r = fp16(r * d);
 * relu_flag: r = r > 0 ? r : +0 (ReLU commutes with the multiplies since d >= 0, so applying it
 * last equals the TBE order). Source: TBE ascend_dequant.py (v100 branches).
 */
export function ascendDequantV100Value(
  acc: number,
  deqScale16: number,
  p: AscendDequantV100Params = {},
): number {
  requireInt32(acc, 'AscendDequant');
  checkDeqScaleV100(deqScale16);
  return dequantV100(acc, deqScale16, p);
}

function checkDeqScaleV100(deqScale16: number): void {
  if (!isFp16Value(deqScale16) || !Number.isFinite(deqScale16) || deqScale16 < 0) {
    throw new RangeError(`AscendDequant: deq_scale ${deqScale16} is not a finite fp16 value >= 0`);
  }
}

/** {@link ascendDequantV100Value} for an int32 `acc` and a checked `deqScale16`. */
function dequantV100(acc: number, deqScale16: number, p: AscendDequantV100Params): number {
  const ov = p.overflow ?? 'saturate';
  let r: number;
  if ((p.reading ?? 'fused') === 'fused') {
    r = roundToFp16(acc * deqScale16, ov); // exact product: |acc| < 2^31, 11-bit d
  } else {
    r = mul16(roundToFp16(acc, ov), deqScale16, ov);
  }
  if (p.sqrtMode) r = mul16(r, deqScale16, ov);
  return p.reluFlag ? relu16(r) : r;
}

/**
 * AscendDequant v100 over an int32 tensor; `deqScale16` holds one fp16 value per tensor or per
 * channel of `channelAxis` (default 1: NCHW conv output, [M, N] Gemm output). Returns fp16 bits.
 * Each scale is checked once, each accumulator as in {@link ascendDequantV100Value}.
 */
export function ascendDequantV100(
  acc: TensorData<'int32'>,
  deqScale16: ArrayLike<number>,
  p: AscendDequantV100Params & { channelAxis?: number } = {},
): TensorData<'float16'> {
  const axis = p.channelAxis ?? 1;
  checkScaleCount(deqScale16.length, acc.dims, axis);
  for (let c = 0; c < deqScale16.length; c++) checkDeqScaleV100(deqScale16[c]!);
  const ch = deqScale16.length === 1 ? () => 0 : channelIndexer(acc.dims, axis);
  const out = new Uint16Array(acc.data.length);
  const ov = p.overflow ?? 'saturate';
  for (let i = 0; i < acc.data.length; i++) {
    const a = acc.data[i]!;
    requireInt32(a, 'AscendDequant');
    out[i] = toFp16Bits(dequantV100(a, deqScale16[ch(i)]!, p), ov);
  }
  return tensor('float16', acc.dims, out);
}

// ---------------------------------------------------------------------------------------------
// Ascend 310P (v200): uint64 deq_scale, hardware deq_cast
// ---------------------------------------------------------------------------------------------

/** Fields of the uint64 DEQSCALE word. */
export interface DeqScaleFields {
  /** The fp32 scale (bits 0-31). */
  scale: number;
  /** 9-bit signed offset (bits 37-45), in [-256, 255]. */
  offset: number;
  /** Sign-mode bit (46): whether the quantized result is signed. */
  signMode: boolean;
}

function fp32Bits(x: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x);
  return v.getUint32(0);
}

function fp32FromBits(bits: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, bits >>> 0);
  return v.getFloat32(0);
}

/**
 * Packs a v200 deq_scale / req_scale word: fp32 bit pattern of fp32(scale) in bits 0-31,
 * (offset & 0x1FF) << 37, signMode << 46; other bits zero. The graph-level packing of
 * AscendDequant on 310P leaves offset 0 and signMode false (high bits zero).
 * Source: asc-devkit MakeDeqScaleConfig; CANN SetDeqScale(float scale, int16_t offset, bool).
 * @example packDeqScaleV200(1) === 0x3F800000n
 */
export function packDeqScaleV200(
  scale: number,
  opts: { offset?: number; signMode?: boolean } = {},
): bigint {
  const offset = opts.offset ?? 0;
  if (!Number.isInteger(offset) || offset < -256 || offset > 255) {
    throw new RangeError(`packDeqScaleV200: offset ${offset} is not a 9-bit signed integer`);
  }
  const low = BigInt(fp32Bits(Math.fround(scale)));
  const off = BigInt(offset & 0x1ff) << 37n;
  const sign = opts.signMode ? 1n << 46n : 0n;
  return sign | off | low;
}

/** Inverse of {@link packDeqScaleV200} (ignores the unused bits). */
export function unpackDeqScaleV200(word: bigint): DeqScaleFields {
  const scale = fp32FromBits(Number(word & 0xffffffffn));
  const raw = Number((word >> 37n) & 0x1ffn);
  const offset = raw >= 256 ? raw - 512 : raw;
  const signMode = ((word >> 46n) & 1n) === 1n;
  return { scale, offset, signMode };
}

/**
 * How the v200 int32 x fp32 product reaches its target type:
 * - 'fp32' (default): int32 -> fp32 (rounded; exact below 2^24), fp32 x fp32 product rounded
 *   to fp32, then rounded to the target (fp16: a second rounding, i.e. double rounding).
 * - 'exact': the exact product rounded once to the target.
 */
export type V200ProductRounding = 'fp32' | 'exact';

/** Attributes of AscendDequant on the v200 path. */
export interface AscendDequantV200Params {
  /** Hardware ReLU (do_relu). Default false. */
  reluFlag?: boolean;
  /** Default 'fp32'. */
  productRounding?: V200ProductRounding;
  /** fp16 overflow mode. Default 'saturate'. */
  overflow?: Fp16Overflow;
}

/**
 * AscendDequant v200 on one int32 accumulator with an fp32 scale; returns the fp16 value.
 * Source: TBE ascend_dequant.py v200 branches (`deq_cast` / `vdeq_cast`, do_relu); rounding
 * reading per {@link V200ProductRounding}.
 */
export function ascendDequantV200Value(
  acc: number,
  scale32: number,
  p: AscendDequantV200Params = {},
): number {
  requireInt32(acc, 'AscendDequant v200');
  if (Math.fround(scale32) !== scale32 || !Number.isFinite(scale32)) {
    throw new RangeError(`AscendDequant v200: scale ${scale32} is not a finite fp32 value`);
  }
  const ov = p.overflow ?? 'saturate';
  let bits: number;
  if ((p.productRounding ?? 'fp32') === 'fp32') {
    const a32 = Math.fround(acc);
    const prod32 = Math.fround(a32 * scale32); // a32 * scale32 is exact in binary64 (24+24 bits)
    bits = toFp16Bits(prod32, ov);
  } else {
    const { n, exp } = decomposeDouble(scale32);
    bits = scaledBigIntToFp16Bits(BigInt(acc) * n, exp, ov);
  }
  const r = fp16BitsToNumber(bits);
  return p.reluFlag ? relu16(r) : r;
}

/**
 * AscendDequant v200 over an int32 tensor with packed uint64 deq_scale words (one per tensor or
 * per channel of `channelAxis`, default 1). The word's offset and sign-mode fields do not
 * apply to an fp16 output and are ignored. Returns fp16 bits.
 */
export function ascendDequantV200(
  acc: TensorData<'int32'>,
  deqScale: ArrayLike<bigint>,
  p: AscendDequantV200Params & { channelAxis?: number } = {},
): TensorData<'float16'> {
  const axis = p.channelAxis ?? 1;
  checkScaleCount(deqScale.length, acc.dims, axis);
  const scales = Array.from(
    { length: deqScale.length },
    (_, i) => unpackDeqScaleV200(deqScale[i]!).scale,
  );
  const ch = scales.length === 1 ? () => 0 : channelIndexer(acc.dims, axis);
  const ov = p.overflow ?? 'saturate';
  const out = new Uint16Array(acc.data.length);
  for (let i = 0; i < acc.data.length; i++) {
    out[i] = toFp16Bits(ascendDequantV200Value(acc.data[i]!, scales[ch(i)]!, p), ov);
  }
  return tensor('float16', acc.dims, out);
}

// ---------------------------------------------------------------------------------------------
// AscendRequant (int32 -> int8)
// ---------------------------------------------------------------------------------------------

/** Attributes of AscendRequant. */
export interface AscendRequantParams {
  /** ReLU after saturation (max(y, 0)). Default false. */
  reluFlag?: boolean;
  /** Default 'fp32' (see {@link V200ProductRounding}). */
  productRounding?: V200ProductRounding;
}

/** Rounds n * 2^exp + offset half to even, exactly. */
function rintScaledPlusOffset(n: bigint, exp: number, offset: number): number {
  if (exp >= 0) return Number((n << BigInt(exp)) + BigInt(offset));
  const s = BigInt(-exp);
  const num = n + (BigInt(offset) << s); // value = num * 2^exp
  const neg = num < 0n;
  const a = neg ? -num : num;
  const whole = a >> s;
  const rem = a - (whole << s);
  const half = 1n << (s - 1n);
  const r = rem > half || (rem === half && (whole & 1n) === 1n) ? whole + 1n : whole;
  return Number(neg ? -r : r);
}

/**
 * AscendRequant on one int32 accumulator: y = saturate_int8(round_half_even(acc * s + offset)),
 * then max(y, 0) with relu_flag. `offset` is the word's 9-bit offset (0 in the classic graph);
 * adding it before the single rounding is the emulator's reading. With 'fp32' the product and
 * the sum are each rounded to fp32 before the final rounding.
 * Source: TBE ascend_requant.py (`deq_cast` to int8 with uint64 req_scale, do_relu).
 */
export function ascendRequantValue(
  acc: number,
  scale32: number,
  offset = 0,
  p: AscendRequantParams = {},
): number {
  requireInt32(acc, 'AscendRequant');
  if (Math.fround(scale32) !== scale32 || !Number.isFinite(scale32)) {
    throw new RangeError(`AscendRequant: scale ${scale32} is not a finite fp32 value`);
  }
  const [lo, hi] = INT_RANGE.int8;
  let r: number;
  if ((p.productRounding ?? 'fp32') === 'fp32') {
    const prod32 = Math.fround(Math.fround(acc) * scale32);
    r = roundHalfEven(Math.fround(prod32 + offset));
  } else {
    const { n, exp } = decomposeDouble(scale32);
    r = rintScaledPlusOffset(BigInt(acc) * n, exp, offset);
  }
  const y = saturateInt(r, lo, hi);
  return p.reluFlag ? Math.max(y, 0) : y;
}

/**
 * AscendRequant over an int32 tensor with packed uint64 req_scale words (one per tensor or per
 * channel of `channelAxis`, default 1). Uses each word's scale and offset.
 */
export function ascendRequant(
  acc: TensorData<'int32'>,
  reqScale: ArrayLike<bigint>,
  p: AscendRequantParams & { channelAxis?: number } = {},
): TensorData<'int8'> {
  const axis = p.channelAxis ?? 1;
  checkScaleCount(reqScale.length, acc.dims, axis);
  const words = Array.from({ length: reqScale.length }, (_, i) => unpackDeqScaleV200(reqScale[i]!));
  const ch = words.length === 1 ? () => 0 : channelIndexer(acc.dims, axis);
  const out = new Int8Array(acc.data.length);
  for (let i = 0; i < acc.data.length; i++) {
    const w = words[ch(i)]!;
    out[i] = ascendRequantValue(acc.data[i]!, w.scale, w.offset, p);
  }
  return tensor('int8', acc.dims, out);
}

// ---------------------------------------------------------------------------------------------
// AscendAntiQuant (int8 -> fp16)
// ---------------------------------------------------------------------------------------------

/** Attributes of AscendAntiQuant. */
export interface AscendAntiQuantParams {
  /** The `scale` attribute (fp32), held as an fp16 constant. */
  scale: number;
  /** The `offset` attribute (fp32), held as an fp16 constant. */
  offset: number;
  /** Multiply by scale twice. Default false. */
  sqrtMode?: boolean;
  /** fp16 overflow mode. Default 'saturate'. */
  overflow?: Fp16Overflow;
}

/**
 * AscendAntiQuant on one int8 value: y = fp16(fp16(q + o16) * s16) (times s16 again, rounded,
 * with sqrt_mode), s16 = fp16(fp32(scale)), o16 = fp16(fp32(offset)). The int8 -> fp16 cast is
 * exact. Source: TBE ascend_anti_quant.py (cast, + offset, * scale).
 */
export function ascendAntiQuantValue(q: number, p: AscendAntiQuantParams): number {
  if (!Number.isInteger(q) || q < -128 || q > 127) {
    throw new RangeError(`AscendAntiQuant: ${q} is not int8`);
  }
  const ov = p.overflow ?? 'saturate';
  const s16 = roundToFp16(Math.fround(p.scale), ov);
  const o16 = roundToFp16(Math.fround(p.offset), ov);
  const a = add16(q, o16, ov);
  let m = mul16(a, s16, ov);
  if (p.sqrtMode) m = mul16(m, s16, ov);
  return m;
}

/** AscendAntiQuant over an int8 array; returns fp16 bits. */
export function ascendAntiQuant(q: Int8Array, p: AscendAntiQuantParams): Uint16Array {
  const ov = p.overflow ?? 'saturate';
  return Uint16Array.from(q, (v) => toFp16Bits(ascendAntiQuantValue(v, p), ov));
}
