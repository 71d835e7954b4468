/**
 * int8 x int8 -> int32 accumulation (the cube unit), scalar reference: dot product, Conv2D
 * (NCHW, groups incl. depthwise, strides, pads, dilations), MatMul and Gemm, int32 bias, and the
 * folding of the activation offset into the bias.
 *
 * Accumulator overflow: the emulator WRAPS (two's complement, modulo 2^32) after every
 * multiply-add and after the bias add. No public source found states whether the cube unit
 * wraps or saturates its int32 accumulators; wrapping is what an int32 adder does without
 * extra logic, and it makes the result independent of summation order (addition modulo 2^32
 * is associative), which a saturating accumulator would not be. Models certified here stay far
 * from the bound (|sum| <= K * 128 * 128 + |bias|), so this choice only defines the edge.
 *
 * Activation offset: AscendQuant adds offset_d before the cube, so the cube computes
 * sum((q - offset) * w) + offset * sum(w). The graph engine inserts a QuantBiasOptimization
 * node on the bias input (Ascend/metadef register/graph_optimizer/graph_fusion/
 * fusion_quant_util_impl.cc: BiasOptimizeByEdge, inputs cube_optimization_bias,
 * cube_optimization_filter, offset): the emulator's reading is
 * bias' = bias - offset * sum(w over the output channel's kernel), in int32, with the conv's
 * padding filled with the offset value (Conv2D `offset_x`) so that padded taps cancel too.
 */

import { elementCount, type TensorData, tensor } from '../tensor/index.ts';
import { isInt32, wrapInt32 } from './rounding.ts';

/** Adds a * b to the int32 accumulator `acc`, wrapping modulo 2^32. */
export function macInt32(acc: number, a: number, b: number): number {
  // a * b is at most 2^14 in magnitude for int8 inputs; the sum is exact before wrapping.
  return wrapInt32(acc + a * b);
}

/**
 * int8 dot product accumulated in int32 (wrapping), starting from `init` (e.g. the bias).
 * Source: cube unit int8 x int8 -> int32 (Mmad); overflow behaviour: emulator choice (wrap).
 */
export function dotInt8(a: Int8Array, b: Int8Array, init = 0): number {
  if (a.length !== b.length) throw new RangeError(`dotInt8: lengths ${a.length} != ${b.length}`);
  if (!isInt32(init)) throw new RangeError(`dotInt8: init ${init} is not int32`);
  let acc = init;
  for (let i = 0; i < a.length; i++) acc = macInt32(acc, a[i]!, b[i]!);
  return acc;
}

/** Output channels conv2dInt8 accumulates together (4 planes per input row read). */
const CO_BLOCK = 4;

/** Conv2D attributes, ONNX conventions. */
export interface Conv2dAttrs {
  /** [strideH, strideW], default [1, 1]. */
  strides?: readonly [number, number];
  /** [top, left, bottom, right] (ONNX `pads` order), default zeros. */
  pads?: readonly [number, number, number, number];
  /** [dilationH, dilationW], default [1, 1]. */
  dilations?: readonly [number, number];
  /** Number of groups; Cin and Cout must be divisible by it. Depthwise: group = Cin. */
  group?: number;
  /**
   * int8 value read for padded positions (Ascend Conv2D `offset_x`). Default 0. Set it to the
   * activation offset when the offset is folded into the bias (see module comment).
   */
  padValue?: number;
}

/**
 * Reference int8 Conv2D with int32 accumulation and optional int32 bias (per output channel).
 * input: [N, Cin, H, W] int8; weight: [Cout, Cin/group, KH, KW] int8; output: [N, Cout, OH, OW]
 * int32 with OH = floor((H + top + bottom - dilH*(KH-1) - 1) / strideH) + 1 (same for W).
 * Accumulation order: bias first, then (ci, kh, kw) in row-major order; with wrapping int32 the
 * order does not change the result.
 */
export function conv2dInt8(
  input: TensorData<'int8'>,
  weight: TensorData<'int8'>,
  bias: Int32Array | undefined,
  attrs: Conv2dAttrs = {},
): TensorData<'int32'> {
  if (input.dims.length !== 4 || weight.dims.length !== 4) {
    throw new RangeError('conv2dInt8: input and weight must be 4-D (NCHW / OIHW)');
  }
  const [n, cin, h, w] = input.dims as [number, number, number, number];
  const [cout, cinPerGroup, kh, kw] = weight.dims as [number, number, number, number];
  const [sh, sw] = attrs.strides ?? [1, 1];
  const [pt, pl, pb, pr] = attrs.pads ?? [0, 0, 0, 0];
  const [dh, dw] = attrs.dilations ?? [1, 1];
  const group = attrs.group ?? 1;
  const padValue = attrs.padValue ?? 0;
  if (cin % group !== 0 || cout % group !== 0 || cinPerGroup !== cin / group) {
    throw new RangeError(
      `conv2dInt8: Cin ${cin}, Cout ${cout}, weight Cin/group ${cinPerGroup}, group ${group} disagree`,
    );
  }
  if (!Number.isInteger(padValue) || padValue < -128 || padValue > 127) {
    throw new RangeError(`conv2dInt8: padValue ${padValue} is not int8`);
  }
  if (bias && bias.length !== cout) {
    throw new RangeError(`conv2dInt8: bias length ${bias.length} != Cout ${cout}`);
  }
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (oh <= 0 || ow <= 0) throw new RangeError('conv2dInt8: empty output');
  const coutPerGroup = cout / group;
  const x = input.data;
  const wt = weight.data;
  const out = new Int32Array(n * cout * oh * ow);
  // One weight tap at a time: plane += w * (shifted input rows).
  // The sum is kept exact in float64 (|sum| <= K * 2^14 + 2^31 << 2^53) and wrapped to int32
  // once at the end, which equals wrapping after every multiply-accumulate (int32 wrapping is
  // addition modulo 2^32). For each tap the output columns split into three runs: left of the
  // input (padValue), inside it, right of it; rows above or below the input read padValue.
  // Output channels are taken CO_BLOCK at a time (within one group): each input row a tap reads
  // is loaded once for the block's planes. Depthwise layers (one output channel per group) take
  // them one at a time.
  const block = Math.min(CO_BLOCK, coutPerGroup);
  const size = oh * ow;
  const planes = new Float64Array(block * size);
  const taps = new Float64Array(block);
  for (let b = 0; b < n; b++) {
    // the block ends at the group's end, so every channel in it reads the same inputs
    for (let co0 = 0, nb = 0; co0 < cout; co0 += nb) {
      const g = Math.floor(co0 / coutPerGroup);
      nb = Math.min(block, (g + 1) * coutPerGroup - co0);
      for (let j = 0; j < nb; j++) planes.fill(bias ? bias[co0 + j]! : 0, j * size, (j + 1) * size);
      for (let ci = 0; ci < cinPerGroup; ci++) {
        const xc = (b * cin + g * cinPerGroup + ci) * h * w;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            let any = false;
            for (let j = 0; j < nb; j++) {
              const wv = wt[(((co0 + j) * cinPerGroup + ci) * kh + ky) * kw + kx]!;
              taps[j] = wv;
              if (wv !== 0) any = true;
            }
            if (!any) continue;
            // ox with 0 <= ox * sw - pl + kx * dw < w: [oxLo, oxHi)
            const shift = kx * dw - pl;
            const oxLo = Math.min(ow, Math.max(0, Math.ceil(-shift / sw)));
            const oxHi = Math.max(oxLo, Math.min(ow, Math.floor((w - 1 - shift) / sw) + 1));
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * sh - pt + ky * dh;
              const row = oy * ow;
              if (iy < 0 || iy >= h) {
                if (padValue !== 0)
                  for (let j = 0; j < nb; j++) {
                    const padTerm = padValue * taps[j]!;
                    const r = j * size + row;
                    for (let ox = 0; ox < ow; ox++) planes[r + ox]! += padTerm;
                  }
                continue;
              }
              const xr = xc + iy * w + shift;
              if (padValue !== 0)
                for (let j = 0; j < nb; j++) {
                  const padTerm = padValue * taps[j]!;
                  const r = j * size + row;
                  for (let ox = 0; ox < oxLo; ox++) planes[r + ox]! += padTerm;
                  for (let ox = oxHi; ox < ow; ox++) planes[r + ox]! += padTerm;
                }
              if (nb === 4) {
                const w0 = taps[0]!;
                const w1 = taps[1]!;
                const w2 = taps[2]!;
                const w3 = taps[3]!;
                const r1 = size + row;
                const r2 = 2 * size + row;
                const r3 = 3 * size + row;
                for (let ox = oxLo; ox < oxHi; ox++) {
                  const xv = x[xr + ox * sw]!;
                  planes[row + ox]! += w0 * xv;
                  planes[r1 + ox]! += w1 * xv;
                  planes[r2 + ox]! += w2 * xv;
                  planes[r3 + ox]! += w3 * xv;
                }
              } else {
                for (let j = 0; j < nb; j++) {
                  const wv = taps[j]!;
                  if (wv === 0) continue;
                  const r = j * size + row;
                  for (let ox = oxLo; ox < oxHi; ox++) planes[r + ox]! += wv * x[xr + ox * sw]!;
                }
              }
            }
          }
        }
      }
      for (let j = 0; j < nb; j++) {
        const o = (b * cout + co0 + j) * size;
        for (let i = 0; i < size; i++) out[o + i] = wrapInt32(planes[j * size + i]!);
      }
    }
  }
  return tensor('int32', [n, cout, oh, ow], out);
}

/** Gemm attributes (ONNX): A is [M, K] (or [K, M] with transA), B is [K, N] (or [N, K]). */
export interface GemmAttrs {
  transA?: boolean;
  transB?: boolean;
}

/**
 * Reference int8 Gemm: Y[m, n] = bias[n] + sum_k A[m, k] * B[k, n], int32 wrapping.
 * With transB (the usual FullyConnection weight layout [N, K]) B is read transposed.
 */
export function gemmInt8(
  a: TensorData<'int8'>,
  b: TensorData<'int8'>,
  bias: Int32Array | undefined,
  attrs: GemmAttrs = {},
): TensorData<'int32'> {
  if (a.dims.length !== 2 || b.dims.length !== 2) throw new RangeError('gemmInt8: 2-D inputs');
  const [a0, a1] = a.dims as [number, number];
  const [b0, b1] = b.dims as [number, number];
  const [m, k] = attrs.transA ? [a1, a0] : [a0, a1];
  const [kb, n] = attrs.transB ? [b1, b0] : [b0, b1];
  if (k !== kb) throw new RangeError(`gemmInt8: inner dimensions ${k} != ${kb}`);
  if (bias && bias.length !== n)
    throw new RangeError(`gemmInt8: bias length ${bias.length} != ${n}`);
  // Rows of A and columns of B as contiguous int8 runs of length k, then one dot product per
  // output: the sum is exact in float64 (|sum| <= k * 2^14 + 2^31 << 2^53) and wrapped to int32
  // once, which equals wrapping after every multiply-accumulate (as in conv2dInt8).
  const rows = attrs.transA ? transposeInt8(a.data, k, m) : a.data;
  const cols = attrs.transB ? b.data : transposeInt8(b.data, k, n);
  const out = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let acc = bias ? bias[j]! : 0;
      for (let p = 0; p < k; p++) acc += rows[ai + p]! * cols[bj + p]!;
      out[i * n + j] = wrapInt32(acc);
    }
  }
  return tensor('int32', [m, n], out);
}

/** The [c, r] transpose of an int8 matrix stored [r, c] row-major. */
function transposeInt8(x: Int8Array, r: number, c: number): Int8Array {
  const t = new Int8Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = x[i * c + j]!;
  return t;
}

/** Reference int8 MatMul [M, K] x [K, N] -> [M, N] int32 with optional bias [N]. */
export function matmulInt8(
  a: TensorData<'int8'>,
  b: TensorData<'int8'>,
  bias?: Int32Array,
): TensorData<'int32'> {
  return gemmInt8(a, b, bias, {});
}

/**
 * Per-output-channel sums of an int8 weight tensor: sums over every axis except `outAxis`
 * (0 for Conv OIHW and Gemm transB [N, K]; 1 for MatMul / Gemm [K, N]). Exact (no overflow:
 * at most 2^31 / 128 elements per channel).
 */
export function weightSumsPerOutput(weight: TensorData<'int8'>, outAxis = 0): Int32Array {
  const dims = weight.dims;
  const nOut = dims[outAxis];
  if (nOut === undefined) throw new RangeError(`weightSumsPerOutput: no axis ${outAxis}`);
  const inner = elementCount(dims.slice(outAxis + 1));
  const sums = new Float64Array(nOut);
  for (let i = 0; i < weight.data.length; i++) {
    const o = Math.floor(i / inner) % nOut;
    sums[o] = sums[o]! + weight.data[i]!;
  }
  const out = new Int32Array(nOut);
  for (let o = 0; o < nOut; o++) {
    if (!isInt32(sums[o]!)) throw new RangeError('weightSumsPerOutput: sum exceeds int32');
    out[o] = sums[o]!;
  }
  return out;
}

/**
 * Folds the activation offset into the int32 bias: bias'[c] = bias[c] - offset * sum(w[c]),
 * computed in int32 with wrapping (the same arithmetic as the accumulator, so the identity
 * conv(q, w, bias', padValue = offset) == conv(q - offset, w, bias, padValue = 0) holds exactly,
 * including past the int32 range). `bias` undefined means zeros.
 * Source: graph-engine QuantBiasOptimization (Ascend/metadef fusion_quant_util_impl.cc); the
 * formula itself is the emulator's reading (docs/EMULATOR.md).
 */
export function foldActivationOffsetIntoBias(
  bias: Int32Array | undefined,
  weightSums: Int32Array,
  offset: number,
): Int32Array {
  if (!Number.isInteger(offset) || offset < -128 || offset > 127) {
    throw new RangeError(`foldActivationOffsetIntoBias: offset ${offset} is not int8`);
  }
  if (bias && bias.length !== weightSums.length) {
    throw new RangeError('foldActivationOffsetIntoBias: bias and weight sums differ in length');
  }
  const out = new Int32Array(weightSums.length);
  for (let c = 0; c < weightSums.length; c++) {
    const b = bias ? bias[c]! : 0;
    // Math.imul is the exact int32 product modulo 2^32; the subtraction then wraps.
    out[c] = wrapInt32(b - Math.imul(offset, weightSums[c]!));
  }
  return out;
}
