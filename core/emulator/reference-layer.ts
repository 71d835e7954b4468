/**
 * One quantized layer computed with the scalar reference functions: what the lowering
 * (core/emulator/lowering) must reproduce bit for bit.
 *
 * - ascend310 (v100): ascendQuant (makeAscendQuantParams(scale_d, offset_d), saturation mode)
 *   -> conv2dInt8 / gemmInt8 with the activation offset folded into the bias
 *   (foldActivationOffsetIntoBias, padded taps read the offset) -> ascendDequantV100 with
 *   deq_scale = deqScaleFp16(scale_d, scale_w[c]) ('fused' by default), relu_flag = fusedRelu.
 * - ascend310p (v200): the same quantization and accumulation -> ascendDequantV200 with the fp32
 *   scale packed in a uint64 word (default 'fp32' product rounding).
 * - nvidia-t4, snapdragon: fp32-reference.ts (QuantizeLinear, ConvInteger/MatMulInteger with
 *   zero points, fp32 requantisation).
 * The output is float32 (on Ascend targets it holds fp16 values).
 */

import type { QuantizedLayer } from '../quantize/layer.ts';
import { type TensorData, tensor } from '../tensor/index.ts';
import {
  conv2dInt8,
  foldActivationOffsetIntoBias,
  gemmInt8,
  weightSumsPerOutput,
} from './accumulate.ts';
import {
  ascendDequantV100,
  ascendDequantV200,
  type DequantV100Reading,
  packDeqScaleV200,
} from './ascend-dequant.ts';
import { ascendQuant, ascendQuantFunction } from './ascend-quant.ts';
import { fp16BitsToNumber } from './fp16.ts';
import {
  convIntegerRef,
  dequantFp32Value,
  type IntegerOperand,
  matmulIntegerRef,
  quantizeLinearValue,
} from './fp32-reference.ts';
import {
  ascendQuantParamsOf,
  deqScalesFp32,
  deqScalesV100,
  deqScalesV200,
  outputChannels,
  requireLoweredTarget,
  weightZeroPointPerTensor,
} from './lowering/scales.ts';
import { wrapInt32 } from './rounding.ts';

/** Switches of {@link referenceLayer} (defaults are the reference's defaults). */
export interface ReferenceLayerOptions {
  /** ascend310 only: AscendDequant v100 reading. Default 'fused'. */
  dequantReading?: DequantV100Reading;
}

function checkInputRank(layer: QuantizedLayer, dims: readonly number[]): void {
  const r = dims.length;
  const ok = layer.kind === 'conv' ? r === 4 : layer.kind === 'gemm' ? r === 2 : r === 2 || r === 3;
  if (!ok) {
    throw new RangeError(
      `layer '${layer.name}' (${layer.kind}): input of rank ${r} [${dims.join(',')}] is not supported`,
    );
  }
}

/** Axis of the output that indexes output channels. */
export function outputChannelAxis(layer: QuantizedLayer, outputRank: number): number {
  if (layer.kind === 'conv') return 1;
  if (layer.kind === 'matmul' && layer.weightSide === 'left') return outputRank - 2;
  return outputRank - 1;
}

function int8Weight(layer: QuantizedLayer): TensorData<'int8'> {
  const w = layer.weight;
  for (const v of w.q) {
    if (v < -128 || v > 127) throw new RangeError(`layer '${layer.name}': weight ${v} is not int8`);
  }
  if (weightZeroPointPerTensor(layer) !== 0) {
    throw new RangeError(`layer '${layer.name}': Ascend weights must be symmetric (zero point 0)`);
  }
  return tensor('int8', w.dims, Int8Array.from(w.q));
}

/** Int32 accumulators of the Ascend path (offset folded into the bias, as the target does). */
function ascendAccumulate(
  layer: QuantizedLayer,
  q: TensorData<'int8'>,
  offset: number,
): TensorData<'int32'> {
  const w = int8Weight(layer);
  if (layer.kind === 'conv') {
    const c = layer.conv!;
    const bias = foldActivationOffsetIntoBias(layer.bias, weightSumsPerOutput(w, 0), offset);
    return conv2dInt8(q, w, bias, {
      strides: c.strides as [number, number],
      pads: c.pads as [number, number, number, number],
      dilations: c.dilations as [number, number],
      group: c.group,
      padValue: offset,
    });
  }
  if (layer.kind === 'gemm') {
    const bias = foldActivationOffsetIntoBias(layer.bias, weightSumsPerOutput(w, 0), offset);
    return gemmInt8(q, w, bias, { transB: true });
  }
  const left = layer.weightSide === 'left';
  const bias = foldActivationOffsetIntoBias(
    layer.bias,
    weightSumsPerOutput(w, left ? 0 : 1),
    offset,
  );
  const rank = q.dims.length;
  const batch = rank === 3 ? q.dims[0]! : 1;
  const [r0, r1] = [q.dims[rank - 2]!, q.dims[rank - 1]!];
  const per = r0 * r1;
  const parts: Int32Array[] = [];
  let m = 0;
  let n = 0;
  for (let b = 0; b < batch; b++) {
    const qb = tensor('int8', [r0, r1], q.data.subarray(b * per, (b + 1) * per));
    if (left) {
      const y = gemmInt8(w, qb, undefined);
      [m, n] = y.dims as [number, number];
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) y.data[i * n + j] = wrapInt32(y.data[i * n + j]! + bias[i]!);
      }
      parts.push(y.data);
    } else {
      const y = gemmInt8(qb, w, bias);
      [m, n] = y.dims as [number, number];
      parts.push(y.data);
    }
  }
  const out = new Int32Array(batch * m * n);
  parts.forEach((p, b) => {
    out.set(p, b * m * n);
  });
  return tensor('int32', rank === 3 ? [batch, m, n] : [m, n], out);
}

/** Int32 accumulators of the fp32 targets (ONNX ConvInteger / MatMulInteger semantics). */
function fp32Accumulate(layer: QuantizedLayer, q: IntegerOperand): TensorData<'int32'> {
  const w: IntegerOperand = {
    dims: layer.weight.dims,
    data: layer.weight.q,
    zeroPoint: weightZeroPointPerTensor(layer),
  };
  if (layer.kind === 'conv') return convIntegerRef(q, w, layer.bias, layer.conv!);
  if (layer.kind === 'gemm') {
    const [nOut, k] = w.dims as [number, number];
    const t = new Int32Array(k * nOut);
    for (let i = 0; i < nOut; i++) for (let p = 0; p < k; p++) t[p * nOut + i] = w.data[i * k + p]!;
    return matmulIntegerRef(
      q,
      { dims: [k, nOut], data: t, zeroPoint: w.zeroPoint },
      layer.bias,
      'last',
    );
  }
  if (layer.weightSide === 'left') return matmulIntegerRef(w, q, layer.bias, 'row');
  return matmulIntegerRef(q, w, layer.bias, 'last');
}

function channelOf(dims: readonly number[], axis: number, channels: number): (i: number) => number {
  let inner = 1;
  for (let a = axis + 1; a < dims.length; a++) inner *= dims[a]!;
  return (i) => Math.floor(i / inner) % channels;
}

/**
 * The layer's input quantizer as a scalar function, float value -> integer: the first step of
 * {@link referenceLayer} (AscendQuant with saturation on Ascend targets, QuantizeLinear on the
 * others). ±Infinity saturate like the largest finite inputs. The function is non-decreasing
 * (every step, fp16 cast, product with a positive scale, offset, rounding, saturation, is).
 */
export function inputQuantizer(layer: QuantizedLayer): (x: number) => number {
  const target = requireLoweredTarget(layer);
  if (target === 'ascend310' || target === 'ascend310p') {
    return ascendQuantFunction(ascendQuantParamsOf(layer));
  }
  const type = target === 'snapdragon' ? 'uint8' : 'int8';
  const s = Math.fround(layer.act.scale);
  const zp = layer.act.zeroPoint;
  return (x) => quantizeLinearValue(x, s, zp, type);
}

/**
 * Computes `layer` on a float32 input with the scalar reference (see the module comment).
 * Input layout: conv [N, C, H, W]; gemm [M, K]; matmul with the weight on the right [.., L, K]
 * (rank 2 or 3), on the left [.., K, N]. Throws for target cpu-wasm (not emulated here).
 */
export function referenceLayer(
  layer: QuantizedLayer,
  input: TensorData<'float32'>,
  options: ReferenceLayerOptions = {},
): TensorData<'float32'> {
  const target = requireLoweredTarget(layer);
  checkInputRank(layer, input.dims);
  const channels = outputChannels(layer);
  if (layer.bias.length !== channels) {
    throw new RangeError(`layer '${layer.name}': bias length ${layer.bias.length} != ${channels}`);
  }
  if (target === 'ascend310' || target === 'ascend310p') {
    const p = ascendQuantParamsOf(layer);
    const q = tensor('int8', input.dims, ascendQuant(input.data, p));
    const acc = ascendAccumulate(layer, q, p.offset);
    const channelAxis = outputChannelAxis(layer, acc.dims.length);
    const bits =
      target === 'ascend310'
        ? ascendDequantV100(acc, deqScalesV100(layer), {
            reluFlag: layer.fusedRelu,
            reading: options.dequantReading ?? 'fused',
            channelAxis,
          })
        : ascendDequantV200(
            acc,
            Array.from(deqScalesV200(layer), (s) => packDeqScaleV200(s)),
            {
              reluFlag: layer.fusedRelu,
              channelAxis,
            },
          );
    return tensor('float32', acc.dims, Float32Array.from(bits.data, fp16BitsToNumber));
  }
  const q: IntegerOperand = {
    dims: input.dims,
    data: Int32Array.from(input.data, inputQuantizer(layer)),
    zeroPoint: layer.act.zeroPoint,
  };
  const acc = fp32Accumulate(layer, q);
  const scales = deqScalesFp32(layer);
  const ch = channelOf(acc.dims, outputChannelAxis(layer, acc.dims.length), channels);
  const out = new Float32Array(acc.data.length);
  for (let i = 0; i < out.length; i++) {
    const y = dequantFp32Value(acc.data[i]!, scales[ch(i)]!);
    // biome-ignore lint/complexity/useMathMinMax: ReLU maps -0 (and NaN) to +0, Math.max does not
    out[i] = layer.fusedRelu ? (y > 0 ? y : 0) : y;
  }
  return tensor('float32', acc.dims, out);
}
