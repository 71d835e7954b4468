import { describe, expect, it } from 'vitest';
import type { QuantizedLayer } from '../quantize/layer.ts';
import { tensor } from '../tensor/index.ts';
import { ascendDequantV100Value } from './ascend-dequant.ts';
import { ascendQuantValue } from './ascend-quant.ts';
import { convIntegerRef, type IntegerOperand, matmulIntegerRef } from './fp32-reference.ts';
import { ascendQuantParamsOf, deqScalesV100 } from './lowering/scales.ts';
import { adversarialInput, type LayerShape, randomLayer, rng } from './lowering/test-support.ts';
import { outputChannelAxis, referenceLayer } from './reference-layer.ts';

const SHAPES: LayerShape[] = [
  {
    kind: 'conv',
    n: 1,
    cin: 4,
    cout: 6,
    h: 6,
    w: 5,
    k: 3,
    strides: [2, 1],
    pads: [1, 0, 2, 1],
    dilations: [1, 2],
    group: 2,
  },
  { kind: 'gemm', m: 3, k: 10, n: 4 },
  { kind: 'matmul-right', batch: 2, l: 3, k: 8, n: 5 },
  { kind: 'matmul-left', batch: 2, m: 4, k: 7, n: 3 },
];

/**
 * Independent computation of the ascend310 layer: sum((q - offset) * w) with ZERO padding (no
 * bias folding), + bias, then AscendDequant v100. referenceLayer folds the offset into the bias
 * and pads with the offset instead; both must agree exactly.
 */
function ascend310Unfolded(layer: QuantizedLayer, x: Float32Array, dims: number[]): number[] {
  const p = ascendQuantParamsOf(layer);
  const q: IntegerOperand = {
    dims,
    data: Int32Array.from(x, (v) => ascendQuantValue(v, p)),
    zeroPoint: p.offset,
  };
  const w: IntegerOperand = { dims: layer.weight.dims, data: layer.weight.q, zeroPoint: 0 };
  let acc: { dims: readonly number[]; data: Int32Array };
  if (layer.kind === 'conv') acc = convIntegerRef(q, w, layer.bias, layer.conv!);
  else if (layer.kind === 'gemm') {
    const [n, k] = w.dims as [number, number];
    const t = new Int32Array(k * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) t[j * n + i] = w.data[i * k + j]!;
    acc = matmulIntegerRef(q, { dims: [k, n], data: t, zeroPoint: 0 }, layer.bias, 'last');
  } else if (layer.weightSide === 'left') acc = matmulIntegerRef(w, q, layer.bias, 'row');
  else acc = matmulIntegerRef(q, w, layer.bias, 'last');
  const d = deqScalesV100(layer);
  const axis = outputChannelAxis(layer, acc.dims.length);
  let inner = 1;
  for (let a = axis + 1; a < acc.dims.length; a++) inner *= acc.dims[a]!;
  return Array.from(acc.data, (a, i) =>
    ascendDequantV100Value(a, d[Math.floor(i / inner) % d.length]!),
  );
}

describe('referenceLayer', () => {
  for (const shape of SHAPES) {
    it(`ascend310 ${shape.kind}: offset folded into the bias == (q - offset) with zero padding`, () => {
      const { layer, inputDims } = randomLayer(rng(3), 'ascend310', shape, {
        clip: { lo: -1, hi: 6 },
      });
      expect(layer.act.zeroPoint).not.toBe(0);
      const n = inputDims.reduce((a, b) => a * b, 1);
      const x = adversarialInput(rng(4), layer, n);
      const got = referenceLayer(layer, tensor('float32', inputDims, x));
      expect(Array.from(got.data)).toEqual(ascend310Unfolded(layer, x, inputDims));
    });
  }

  it('fp32 targets: close to the float layer on the dequantized weights (layouts and scales)', () => {
    for (const target of ['nvidia-t4', 'snapdragon'] as const) {
      for (const shape of SHAPES) {
        if (shape.kind !== 'gemm') continue;
        const { layer, inputDims } = randomLayer(rng(8), target, shape);
        const [m, k] = inputDims as [number, number];
        const r = rng(9);
        const x = Float32Array.from({ length: m * k }, () => (r() - 0.4) * 4);
        const y = referenceLayer(layer, tensor('float32', inputDims, x));
        const w = layer.weight;
        const n = w.dims[0]!;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            const c = w.scales.length === 1 ? 0 : j;
            let f = layer.bias[j]! * layer.deqScale[j]!;
            for (let p = 0; p < k; p++)
              f += x[i * k + p]! * (w.q[j * k + p]! - w.zeroPoints[c]!) * w.scales[c]!;
            // quantization error of the activations: at most half a step per tap
            const tol = 0.5 * layer.act.scale * k * 0.5 + 1e-3;
            expect(Math.abs(y.data[i * n + j]! - f)).toBeLessThan(tol);
          }
        }
      }
    }
  });

  it('throws for cpu-wasm and for inputs of the wrong rank', () => {
    const { layer, inputDims } = randomLayer(rng(1), 'ascend310', SHAPES[1]!);
    const x = tensor('float32', inputDims, new Float32Array(inputDims[0]! * inputDims[1]!));
    expect(() => referenceLayer({ ...layer, target: 'cpu-wasm' }, x)).toThrow(/cpu-wasm/);
    expect(() => referenceLayer(layer, tensor('float32', [x.data.length], x.data))).toThrow(/rank/);
  });
});
