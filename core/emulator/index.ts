/**
 * Scalar TypeScript reference of Ascend INT8 arithmetic. Every rounding step is explicit; see
 * docs/EMULATOR.md for each rule's public source and the readings chosen where sources leave
 * room. Each export carries its source in its own JSDoc.
 */

export {
  type Conv2dAttrs,
  conv2dInt8,
  dotInt8,
  foldActivationOffsetIntoBias,
  type GemmAttrs,
  gemmInt8,
  macInt32,
  matmulInt8,
  weightSumsPerOutput,
} from './accumulate.ts';
export {
  type AscendAntiQuantParams,
  type AscendDequantV100Params,
  type AscendDequantV200Params,
  type AscendRequantParams,
  ascendAntiQuant,
  ascendAntiQuantValue,
  ascendDequantV100,
  ascendDequantV100Value,
  ascendDequantV200,
  ascendDequantV200Value,
  ascendRequant,
  ascendRequantValue,
  type DeqScaleFields,
  type DequantV100Reading,
  deqScaleFp16,
  packDeqScaleV200,
  unpackDeqScaleV200,
  type V200ProductRounding,
} from './ascend-dequant.ts';
export {
  type AscendQuantConstants,
  type AscendQuantParams,
  type AscendQuantTrace,
  ascendQuant,
  ascendQuantConstants,
  ascendQuantFp16,
  ascendQuantFunction,
  ascendQuantTrace,
  ascendQuantTraceFp16,
  ascendQuantValue,
  checkAscendQuantParams,
  makeAscendQuantParams,
  type QuantDstType,
} from './ascend-quant.ts';
export {
  add16,
  decomposeDouble,
  FP16_MAX,
  FP16_MIN_NORMAL,
  FP16_MIN_SUBNORMAL,
  FP16_NAN_BITS,
  type Fp16Overflow,
  fp16BitsToNumber,
  isFp16Value,
  mul16,
  roundToFp16,
  scaledBigIntToFp16Bits,
  toFp16Bits,
} from './fp16.ts';
export {
  INT_RANGE,
  isInt32,
  type RoundMode,
  roundHalfEven,
  roundWithMode,
  saturateInt,
  wrapInt32,
} from './rounding.ts';
