/**
 * AscendQuant (fp32/fp16 -> int8/int4), scalar reference.
 *
 * Source: CANN TBE ascend_quant.py (public mirror dengguojie/vue-element-admin,
 * ops/built-in/tbe/impl/ascend_quant.py): an fp32 input is cast to fp16 (`cast_f16_ub`), the
 * attributes `scale` and `offset` become `tvm.const(..., "float16")`, the kernel multiplies by
 * scale in fp16 (twice with sqrt_mode), adds offset in fp16, then casts to int8/int4 with
 * `round_mode` (Round/Floor/Ceil/Trunc). Formula: y = round(x * scale + offset), sqrt_mode:
 * y = round(x * scale * scale + offset) (hicann/ops-nn quant/ascend_quant/README.md).
 *
 * Every step here is one explicit rounding:
 *   x16  = fp16(x)                          (skipped for fp16 inputs)
 *   s16  = fp16(fp32(scale)), o16 = fp16(fp32(offset))   (constants)
 *   m    = fp16(x16 * s16)                  (sqrt_mode: m = fp16(fp16(x16 * s16) * s16))
 *   a    = fp16(m + o16)
 *   y    = saturate(roundMode(a), dst range)
 */

import {
  add16,
  type Fp16Overflow,
  fp16BitsToNumber,
  mul16,
  roundToFp16,
  toFp16Bits,
} from './fp16.ts';
import { INT_RANGE, type RoundMode, roundWithMode, saturateInt } from './rounding.ts';

export type { RoundMode } from './rounding.ts';

/** Output type of AscendQuant: `dst_type` 2 = int8, 29 = int4 (TBE ascend_quant.py). */
export type QuantDstType = 'int8' | 'int4';

/**
 * Parameters of one AscendQuant node (per tensor, as on the Ascend 310 path).
 * Source: AscendQuant attributes scale, offset, sqrt_mode, round_mode, dst_type.
 */
export interface AscendQuantParams {
  /** The `scale` attribute, = 1 / scale_d (or sqrt(1 / scale_d) with sqrtMode). Stored as fp32. */
  scale: number;
  /** The `offset` attribute, = offset_d (an integer for the activation zero point). */
  offset: number;
  /** Multiply by scale twice (each product rounded to fp16). Default false. */
  sqrtMode?: boolean;
  /** Final rounding to integer. Default 'Round' (half to even). */
  roundMode?: RoundMode;
  /** Output type. Default 'int8'. */
  dstType?: QuantDstType;
  /**
   * fp16 overflow behaviour of the cast and the arithmetic. Default 'saturate' (the only mode
   * of Atlas inference / training products, per aclrtFloatOverflowMode); 'inf' is IEEE.
   */
  overflow?: Fp16Overflow;
}

/** The fp16 constants the kernel actually uses. */
export interface AscendQuantConstants {
  /** fp16 value of the scale constant. */
  scale16: number;
  /** fp16 value of the offset constant. */
  offset16: number;
}

/**
 * The fp16 constants of the kernel: the attributes are fp32 (GE float attributes), and
 * `tvm.const(v, "float16")` rounds them to fp16 (IEEE round to nearest even; the emulator uses
 * IEEE overflow here so that a scale beyond fp16 shows up as Inf, see
 * {@link checkAscendQuantParams}). Source: TBE ascend_quant.py `_compute_scale`/`_compute_offset`.
 */
export function ascendQuantConstants(p: AscendQuantParams): AscendQuantConstants {
  return {
    scale16: roundToFp16(Math.fround(p.scale)),
    offset16: roundToFp16(Math.fround(p.offset)),
  };
}

/**
 * Problems with a parameter record, as human-readable strings (empty when usable):
 * - "scale does not fit fp16": fp32(scale) rounds to ±Inf in fp16 (|scale| >= 65520). The
 *   documented remedy is sqrt_mode with scale = sqrt(1/scale_d) (graph-engine manual-quant
 *   guide; see {@link makeAscendQuantParams}).
 * - scale rounds to 0 in fp16 (|scale| <= 2^-25): every output would equal round(offset).
 * - scale is subnormal in fp16 (< 2^-14): fewer than 11 significant bits (reported, usable).
 * - offset not an integer / outside the destination range, or non-finite values.
 */
export function checkAscendQuantParams(p: AscendQuantParams): string[] {
  const issues: string[] = [];
  const dst = p.dstType ?? 'int8';
  const [lo, hi] = INT_RANGE[dst];
  if (!Number.isFinite(p.scale)) issues.push(`scale ${p.scale} is not finite`);
  if (!Number.isFinite(p.offset)) issues.push(`offset ${p.offset} is not finite`);
  if (issues.length > 0) return issues;
  const { scale16 } = ascendQuantConstants(p);
  if (!Number.isFinite(scale16)) {
    issues.push(
      `scale does not fit fp16: ${p.scale} rounds to ${scale16} (use sqrt_mode with sqrt(scale))`,
    );
  } else if (scale16 === 0 && p.scale !== 0) {
    issues.push(`scale ${p.scale} underflows to 0 in fp16`);
  } else if (scale16 !== 0 && Math.abs(scale16) < 2 ** -14) {
    issues.push(`scale ${p.scale} is subnormal in fp16 (${scale16}): reduced precision`);
  }
  if (!Number.isInteger(p.offset) || p.offset < lo || p.offset > hi) {
    issues.push(`offset ${p.offset} is not an integer in [${lo}, ${hi}]`);
  }
  return issues;
}

/**
 * Builds AscendQuant parameters from calibration results: scale = 1 / scale_d (computed in
 * binary64, then stored as the fp32 attribute), offset = offset_d. If that scale does not fit
 * fp16, switches to sqrt_mode with scale = fp32(sqrt(1 / scale_d)), the documented remedy.
 * Where AMCT computes 1/scale_d and in which precision is not public: this is the emulator's
 * reading (docs/EMULATOR.md).
 */
export function makeAscendQuantParams(
  scaleD: number,
  offsetD: number,
  opts: Omit<AscendQuantParams, 'scale' | 'offset' | 'sqrtMode'> = {},
): AscendQuantParams {
  if (!(scaleD > 0) || !Number.isFinite(scaleD)) {
    throw new RangeError(`makeAscendQuantParams: scale_d ${scaleD} must be positive and finite`);
  }
  const inv = 1 / scaleD;
  const direct: AscendQuantParams = { ...opts, scale: Math.fround(inv), offset: offsetD };
  if (Number.isFinite(ascendQuantConstants(direct).scale16)) return { ...direct, sqrtMode: false };
  return { ...opts, scale: Math.fround(Math.sqrt(inv)), offset: offsetD, sqrtMode: true };
}

/** Every intermediate of one AscendQuant evaluation (numbers are exact fp16 values). */
export interface AscendQuantTrace {
  /** Input after the fp32 -> fp16 cast. */
  x16: number;
  /** After the (first) multiply by scale. */
  mul1: number;
  /** After the second multiply (sqrt_mode), else equal to mul1. */
  mul2: number;
  /** After adding offset. */
  added: number;
  /** After the round mode, before saturation (may be ±Inf). */
  rounded: number;
  /** Final integer output. */
  y: number;
}

function assertUsable(p: AscendQuantParams): AscendQuantConstants {
  const issues = checkAscendQuantParams(p).filter((s) => !s.includes('subnormal'));
  if (issues.length > 0) throw new RangeError(`AscendQuant: ${issues.join('; ')}`);
  return ascendQuantConstants(p);
}

/**
 * AscendQuant on one value with all intermediates. `x16` must already be an fp16 value (use
 * {@link ascendQuantTrace} for fp32 inputs).
 */
export function ascendQuantTraceFp16(x16: number, p: AscendQuantParams): AscendQuantTrace {
  return traceWith(x16, p, assertUsable(p));
}

/** {@link ascendQuantTraceFp16} with the constants of parameters already checked usable. */
function traceWith(
  x16: number,
  p: AscendQuantParams,
  { scale16, offset16 }: AscendQuantConstants,
): AscendQuantTrace {
  const ov = p.overflow ?? 'saturate';
  const [lo, hi] = INT_RANGE[p.dstType ?? 'int8'];
  const mul1 = mul16(x16, scale16, ov);
  const mul2 = p.sqrtMode ? mul16(mul1, scale16, ov) : mul1;
  const added = add16(mul2, offset16, ov);
  const rounded = roundWithMode(added, p.roundMode ?? 'Round');
  const y = saturateInt(rounded, lo, hi);
  return { x16, mul1, mul2, added, rounded, y };
}

/**
 * AscendQuant of fp32 values as a function: the parameters are checked once (the same checks
 * and errors as {@link ascendQuantValue}), then each call computes
 * {@link ascendQuantValue}`(x, p)`.
 */
export function ascendQuantFunction(p: AscendQuantParams): (x: number) => number {
  const constants = assertUsable(p);
  return (x) => traceWith(castInput(x, p), p, constants).y;
}

/** The op's input cast: fp32 `x` (checked) to fp16 with the record's overflow mode. */
function castInput(x: number, p: AscendQuantParams): number {
  if (!Number.isNaN(x) && Math.fround(x) !== x) {
    throw new RangeError(`AscendQuant: input ${x} is not an fp32 value`);
  }
  return fp16BitsToNumber(toFp16Bits(x, p.overflow ?? 'saturate'));
}

/**
 * AscendQuant on one fp32 value with all intermediates. `x` must be an fp32 value (the op's
 * input tensor is fp32); it is cast to fp16 with the parameter record's overflow mode.
 */
export function ascendQuantTrace(x: number, p: AscendQuantParams): AscendQuantTrace {
  return ascendQuantTraceFp16(castInput(x, p), p);
}

/**
 * AscendQuant of one fp32 value: saturate(round_mode(fp16(fp16(fp16(x) * s16) + o16))).
 * Source: TBE ascend_quant.py (see module comment).
 */
export function ascendQuantValue(x: number, p: AscendQuantParams): number {
  return ascendQuantTrace(x, p).y;
}

/**
 * AscendQuant over an fp32 array (int8 output; int4 results are stored one per Int8 element,
 * not packed). Source: TBE ascend_quant.py.
 */
export function ascendQuant(x: Float32Array, p: AscendQuantParams): Int8Array {
  const q = ascendQuantFunction(p);
  const out = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = q(x[i]!);
  return out;
}

/**
 * AscendQuant over fp16 input bits (the fp16-input variant of the op: no input cast).
 * Source: TBE ascend_quant.py (dtype float16 path).
 */
export function ascendQuantFp16(x: Uint16Array, p: AscendQuantParams): Int8Array {
  const constants = assertUsable(p);
  const ov = p.overflow ?? 'saturate';
  const out = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let v = fp16BitsToNumber(x[i]!);
    // An fp16 Inf/NaN input under saturation mode reads as the saturated value.
    if (ov === 'saturate' && !Number.isFinite(v)) v = roundToFp16(v, 'saturate');
    out[i] = traceWith(v, p, constants).y;
  }
  return out;
}
