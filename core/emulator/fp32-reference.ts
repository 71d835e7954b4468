/**
 * Scalar reference of the fp32 integer paths (nvidia-t4 / TensorRT-like and snapdragon /
 * SNPE-like targets), ONNX semantics:
 * - quantize: q = saturate(round_half_even(fp32(x / scale)) + zero_point) (QuantizeLinear);
 *   NaN reads as 0 (q = zero_point), like a saturating float -> int conversion;
 * - accumulate: sum((x - x_zp) * (w - w_zp)) in wrapping int32, padded taps read x_zp
 *   (ConvInteger / MatMulInteger), plus the int32 bias;
 * - dequantize: fp32(fp32(acc) * scale32), scale32 = fp32(scale_x * scale_w[c]).
 */

import { elementCount, type TensorData, tensor } from '../tensor/index.ts';
import { roundHalfEven, wrapInt32 } from './rounding.ts';

/** Integer range of an ONNX 8-bit element type. */
export const INT8_TYPE_RANGE = { int8: [-128, 127], uint8: [0, 255] } as const;

/**
 * QuantizeLinear of one fp32 value: saturate(rne(fp32(x / scale32)) + zp) to the type range.
 * `scale32` must be an fp32 value. NaN -> zp; ±Inf saturate.
 */
export function quantizeLinearValue(
  x: number,
  scale32: number,
  zeroPoint: number,
  type: 'int8' | 'uint8',
): number {
  const [lo, hi] = INT8_TYPE_RANGE[type];
  if (Number.isNaN(x)) return zeroPoint;
  const v = roundHalfEven(Math.fround(Math.fround(x) / scale32)) + zeroPoint;
  return Math.min(Math.max(v, lo), hi);
}

/** An integer tensor with a (per-tensor) zero point; values are held in an Int32Array. */
export interface IntegerOperand {
  dims: readonly number[];
  data: Int32Array;
  zeroPoint: number;
}

/** Conv attributes (ONNX, 2-D; pads [top, left, bottom, right]). */
export interface IntegerConvAttrs {
  strides: readonly number[];
  pads: readonly number[];
  dilations: readonly number[];
  group: number;
}

/**
 * ConvInteger reference with int32 bias per output channel (wrapping int32):
 * y[n, co, oy, ox] = bias[co] + sum (x - x_zp) * (w - w_zp); padded taps contribute 0
 * (they read x_zp). x: [N, Cin, H, W], w: [Cout, Cin/group, KH, KW].
 */
export function convIntegerRef(
  x: IntegerOperand,
  w: IntegerOperand,
  bias: Int32Array | undefined,
  attrs: IntegerConvAttrs,
): TensorData<'int32'> {
  const [n, cin, h, wd] = x.dims as [number, number, number, number];
  const [cout, cpg, kh, kw] = w.dims as [number, number, number, number];
  const [sh, sw] = attrs.strides as [number, number];
  const [pt, pl, pb, pr] = attrs.pads as [number, number, number, number];
  const [dh, dw] = attrs.dilations as [number, number];
  const group = attrs.group;
  if (cpg * group !== cin || cout % group !== 0) throw new RangeError('convIntegerRef: groups');
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const copg = cout / group;
  const out = new Int32Array(n * cout * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) {
      const g = Math.floor(co / copg);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let acc = bias ? bias[co]! : 0;
          for (let ci = 0; ci < cpg; ci++) {
            const c = g * cpg + ci;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - pt + ky * dh;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - pl + kx * dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                const xv = x.data[((b * cin + c) * h + iy) * wd + ix]! - x.zeroPoint;
                const wv = w.data[((co * cpg + ci) * kh + ky) * kw + kx]! - w.zeroPoint;
                acc = wrapInt32(acc + xv * wv);
              }
            }
          }
          out[((b * cout + co) * oh + oy) * ow + ox] = acc;
        }
      }
    }
  }
  return tensor('int32', [n, cout, oh, ow], out);
}

/**
 * MatMulInteger reference [.., M, K] x [.., K, N] with numpy broadcasting of one batch axis
 * (either operand of rank 2 or 3), plus an int32 bias broadcast on `biasAxis` of the result
 * ('last' = N, 'row' = M); wrapping int32.
 */
export function matmulIntegerRef(
  a: IntegerOperand,
  b: IntegerOperand,
  bias: Int32Array | undefined,
  biasAxis: 'last' | 'row',
): TensorData<'int32'> {
  const ra = a.dims.length;
  const rb = b.dims.length;
  const [m, k] = [a.dims[ra - 2]!, a.dims[ra - 1]!];
  const [kb, n] = [b.dims[rb - 2]!, b.dims[rb - 1]!];
  if (k !== kb) throw new RangeError(`matmulIntegerRef: inner dimensions ${k} != ${kb}`);
  const ba = ra === 3 ? a.dims[0]! : 1;
  const bb = rb === 3 ? b.dims[0]! : 1;
  if (ba !== bb && ba !== 1 && bb !== 1) throw new RangeError('matmulIntegerRef: batch');
  const batch = Math.max(ba, bb);
  const out = new Int32Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const ao = ba === 1 ? 0 : t * m * k;
    const bo = bb === 1 ? 0 : t * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = bias ? bias[biasAxis === 'last' ? j : i]! : 0;
        for (let p = 0; p < k; p++) {
          const av = a.data[ao + i * k + p]! - a.zeroPoint;
          const bv = b.data[bo + p * n + j]! - b.zeroPoint;
          acc = wrapInt32(acc + av * bv);
        }
        out[t * m * n + i * n + j] = acc;
      }
    }
  }
  const dims = ra === 3 || rb === 3 ? [batch, m, n] : [m, n];
  if (elementCount(dims) !== out.length) throw new RangeError('matmulIntegerRef: dims');
  return tensor('int32', dims, out);
}

/** fp32 dequantisation of one accumulator: fp32(fp32(acc) * scale32). */
export function dequantFp32Value(acc: number, scale32: number): number {
  return Math.fround(Math.fround(acc) * scale32);
}
