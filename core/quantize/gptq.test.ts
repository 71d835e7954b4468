/**
 * GPTQ weight rounding (core/quantize/gptq.ts): the Gram matrices of a layer's inputs, checked
 * against ONNX Runtime's own Conv; the rounding on a hand-solved case and on properties that
 * hold for any input.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import {
  makeAttrInt,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from '../onnx/builder.ts';
import { encodeModel } from '../onnx/index.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { seededPrng } from '../random.ts';
import { createSession } from '../runtime/index.ts';
import type { TensorData } from '../tensor/index.ts';
import { type GptqLayer, gptqWeights, gramMatrix, InputGram } from './gptq.ts';
import { quantizeWeight } from './weights.ts';

const act = { scale: 1, zeroPoint: 0, qmin: -127, qmax: 127 };

/** A Gemm layer with K inputs and the given round-to-nearest integers and scale. */
function gemm(rows: number, k: number, q: number[], scale: number): GptqLayer {
  return {
    name: 'fc',
    kind: 'gemm',
    act,
    weight: {
      dims: [rows, k],
      axis: 0,
      q: Int32Array.from(q),
      scales: new Float64Array(rows).fill(scale),
      zeroPoints: new Int32Array(rows),
      qmin: -127,
      qmax: 127,
    },
  };
}

const rowsOf = (vectors: number[][]) => ({
  type: 'float32' as const,
  dims: [vectors.length, vectors[0]!.length],
  data: Float32Array.from(vectors.flat()),
});

describe('GPTQ rounding', () => {
  it('finds the better pair of integers when two inputs are correlated (a hand-solved case)', () => {
    // Inputs (1, 1) nine times, (1, 0) and (0, 1) once: H = [[10, 9], [9, 10]], correlation 0.9.
    // Weights (0.3, 0.3) on a grid of 1: nearest gives (0, 0), error e H e = 0.09 * 38 = 3.42,
    // as large as the signal (0 dB). The first column's error -0.3 moves onto the second as
    // 0.3 * 9 / 10.1 (H_01 / H_11 with 1% damping), 0.3 -> 0.567, which rounds to 1:
    // (0, 1), error 0.09 * 10 + 0.49 * 10 - 2 * 0.21 * 9 = 2.02, the best of all integer pairs
    // ((1, 0) ties it; (1, 1) gives 18.62).
    const layer = gemm(1, 2, [0, 0], 1);
    const gram = new InputGram(layer);
    gram.add(rowsOf([...Array.from({ length: 9 }, () => [1, 1]), [1, 0], [0, 1]]));
    expect([...gramMatrix(gram, 0)]).toEqual([10, 9, 9, 10]);
    expect(gram.vectors).toBe(11);
    const { q, report } = gptqWeights(
      layer,
      { dims: [1, 2], axis: 0, data: Float32Array.of(0.3, 0.3) },
      gram,
    );
    expect([...q]).toEqual([0, 1]);
    expect(report.nearestDb).toBeCloseTo(0, 6); // float32 0.3: 3.42 against 3.42
    expect(report.gptqDb).toBeCloseTo(10 * Math.log10(3.42 / 2.02), 5);
    expect(report.channelsChanged).toBe(1);
  });

  it('rounds to nearest when the inputs are uncorrelated (a diagonal H moves no error)', () => {
    const rand = seededPrng(3);
    const k = 6;
    const w = Float32Array.from({ length: 4 * k }, () => rand() * 2 - 1);
    const nearest = quantizeWeight(
      { dims: [4, k], axis: 0, data: w },
      {
        type: 'int8',
        symmetric: true,
        granularity: 'per-channel',
      },
    );
    const layer: GptqLayer = { name: 'fc', kind: 'gemm', act, weight: nearest };
    const gram = new InputGram(layer);
    // each input alone, with its own energy: H diagonal
    gram.add(
      rowsOf(
        Array.from({ length: k }, (_, i) =>
          Array.from({ length: k }, (_, j) => (i === j ? i + 1 : 0)),
        ),
      ),
    );
    const { q, report } = gptqWeights(layer, { dims: [4, k], axis: 0, data: w }, gram);
    expect([...q]).toEqual([...nearest.q]);
    expect(report.channelsChanged).toBe(0);
    expect(report.gptqDb).toBe(report.nearestDb);
  });

  it('lowers the output error of int4 weights on correlated inputs by several dB', () => {
    // 64 inputs driven by 8 factors plus noise (correlated, as neighbouring pixels or channels
    // are); 16 output channels of int4 weights. Measured: nearest 22.85 dB, GPTQ 37.03 dB (nearly rank 8: much error to move).
    const rand = seededPrng(11);
    const k = 64;
    const rows = 16;
    const mix = Array.from({ length: 8 * k }, () => rand() * 2 - 1);
    const vectors = Array.from({ length: 400 }, () => {
      const f = Array.from({ length: 8 }, () => rand() * 2 - 1);
      return Array.from({ length: k }, (_, j) => {
        let v = 0;
        for (let t = 0; t < 8; t++) v += f[t]! * mix[t * k + j]!;
        return Math.round(20 * v + 4 * (rand() - 0.5));
      });
    });
    const w = Float32Array.from({ length: rows * k }, () => rand() * 2 - 1);
    const nearest = quantizeWeight(
      { dims: [rows, k], axis: 0, data: w },
      {
        type: 'int4',
        symmetric: true,
        granularity: 'per-channel',
      },
    );
    const layer: GptqLayer = { name: 'fc', kind: 'gemm', act, weight: nearest };
    const gram = new InputGram(layer);
    gram.add(rowsOf(vectors));
    const { q, report } = gptqWeights(layer, { dims: [rows, k], axis: 0, data: w }, gram);
    expect(report.nearestDb).toBeCloseTo(22.85, 1);
    expect(report.gptqDb).toBeCloseTo(37.03, 1);
    expect(report.channelsChanged).toBe(rows);
    // the format is kept: the same scales, integers inside the int4 range
    expect(Math.min(...q)).toBeGreaterThanOrEqual(-7);
    expect(Math.max(...q)).toBeLessThanOrEqual(7);
    // independently: the output error of the chosen integers, summed over the inputs
    const outputError = (ints: Int32Array) => {
      let e = 0;
      for (const x of vectors)
        for (let r = 0; r < rows; r++) {
          let d = 0;
          for (let j = 0; j < k; j++)
            d += (ints[r * k + j]! * nearest.scales[r]! - w[r * k + j]!) * x[j]!;
          e += d * d;
        }
      return e;
    };
    expect(10 * Math.log10(outputError(nearest.q) / outputError(q))).toBeCloseTo(
      report.gptqDb - report.nearestDb,
      6,
    );
  });
});

describe('InputGram of a Conv', () => {
  beforeAll(() => useNodeRuntime());

  it("gives, for every output channel, w H w = the sum of squares of ONNX Runtime's Conv output", async () => {
    // group 2, stride 2, uneven padding, dilation 2: every index of the im2col walk matters.
    const rand = seededPrng(5);
    const [n, c, h, w] = [2, 4, 9, 8];
    const [o, kh, kw] = [6, 3, 2];
    const conv = { strides: [2, 1], pads: [1, 0, 2, 1], dilations: [2, 1], group: 2 };
    const weight = Float32Array.from({ length: o * (c / 2) * kh * kw }, () =>
      Math.round(rand() * 6 - 3),
    );
    // inputs on a quantization grid of 0.5 with zero point 3: the Gram is of the integers q - zp
    const params = { scale: 0.5, zeroPoint: 3, qmin: -128, qmax: 127 };
    const ints = Float32Array.from({ length: n * c * h * w }, () => Math.round(rand() * 40 - 20));
    const x = ints.map((v) => v * params.scale);
    const layer: GptqLayer = {
      name: 'conv',
      kind: 'conv',
      act: params,
      conv,
      weight: {
        dims: [o, c / 2, kh, kw],
        axis: 0,
        q: new Int32Array(weight.length),
        scales: new Float64Array(o).fill(1),
        zeroPoints: new Int32Array(o),
        qmin: -127,
        qmax: 127,
      },
    };
    const gram = new InputGram(layer);
    gram.add({ type: 'float32', dims: [n, c, h, w], data: x });
    const model = makeModel(
      makeGraph({
        nodes: [
          makeNode(
            'Conv',
            ['x', 'w'],
            ['y'],
            [
              makeAttrInts('strides', conv.strides),
              makeAttrInts('pads', [conv.pads[0]!, conv.pads[1]!, conv.pads[2]!, conv.pads[3]!]),
              makeAttrInts('dilations', conv.dilations),
              makeAttrInts('kernel_shape', [kh, kw]),
              makeAttrInt('group', conv.group),
            ],
          ),
        ],
        inputs: [makeTensorValueInfo('x', 'float32', [n, c, h, w])],
        outputs: [makeTensorValueInfo('y', 'float32')],
        initializers: [
          tensorToProto('w', { type: 'float32', dims: [o, c / 2, kh, kw], data: weight }),
        ],
      }),
      { opset: 13 },
    );
    const session = await createSession(encodeModel(model));
    let y: Float32Array;
    try {
      // ONNX Runtime on the integers themselves (x / scale - 0 = q - zp with zp folded out)
      y = (await session.run({ x: { type: 'float32', dims: [n, c, h, w], data: ints } })).y!
        .data as Float32Array;
    } finally {
      await session.release();
    }
    const positions = y.length / (n * o);
    expect(gram.vectors).toBe(n * positions); // per group
    const k = (c / 2) * kh * kw;
    for (let oc = 0; oc < o; oc++) {
      let squares = 0;
      for (let s = 0; s < n; s++)
        for (let p = 0; p < positions; p++) squares += y[(s * o + oc) * positions + p]! ** 2;
      const hm = gramMatrix(gram, Math.floor(oc / (o / 2)));
      const wr = weight.subarray(oc * k, (oc + 1) * k);
      let whw = 0;
      for (let i = 0; i < k; i++)
        for (let j = 0; j < k; j++) whw += wr[i]! * hm[i * k + j]! * wr[j]!;
      expect(whw).toBe(squares); // integers all through: exact
    }
  });
});

describe('InputGram of a MatMul', () => {
  beforeAll(() => useNodeRuntime());

  // x [2, 5, 4] batched; the weight on the right ([K=4, N=3]: vectors are x's rows) or on the
  // left ([M=3, K=5]: vectors are x's columns).
  it.each([
    ['right', [4, 3]],
    ['left', [3, 5]],
  ] as const)(
    "gives w H w = the sum of squares of ONNX Runtime's MatMul output (weight on the %s)",
    async (side, wdims) => {
      const rand = seededPrng(side === 'right' ? 7 : 8);
      const dims = [2, 5, 4];
      const ints = Float32Array.from({ length: 40 }, () => Math.round(rand() * 30 - 15));
      const weight = Float32Array.from({ length: wdims[0] * wdims[1] }, () =>
        Math.round(rand() * 8 - 4),
      );
      const layer: GptqLayer = {
        name: 'mm',
        kind: 'matmul',
        weightSide: side,
        act,
        weight: {
          dims: wdims,
          axis: side === 'right' ? 1 : 0,
          q: new Int32Array(weight.length),
          scales: new Float64Array(3).fill(1),
          zeroPoints: new Int32Array(3),
          qmin: -127,
          qmax: 127,
        },
      };
      const gram = new InputGram(layer);
      gram.add({ type: 'float32', dims, data: ints });
      const inputs = side === 'right' ? ['x', 'w'] : ['w', 'x'];
      const model = makeModel(
        makeGraph({
          nodes: [makeNode('MatMul', inputs, ['y'])],
          inputs: [makeTensorValueInfo('x', 'float32', dims)],
          outputs: [makeTensorValueInfo('y', 'float32')],
          initializers: [tensorToProto('w', { type: 'float32', dims: wdims, data: weight })],
        }),
        { opset: 13 },
      );
      const session = await createSession(encodeModel(model));
      let y: TensorData;
      try {
        y = (await session.run({ x: { type: 'float32', dims, data: ints } })).y!;
      } finally {
        await session.release();
      }
      const k = side === 'right' ? 4 : 5;
      expect(gram.vectors).toBe(side === 'right' ? 10 : 8);
      const h = gramMatrix(gram, 0);
      const yd = y.data as Float32Array;
      for (let r = 0; r < 3; r++) {
        // output channel r: column r of y (right) or row r of each [3, 4] slice (left)
        let squares = 0;
        for (let i = 0; i < yd.length; i++) {
          const channel = side === 'right' ? i % 3 : Math.floor(i / 4) % 3;
          if (channel === r) squares += yd[i]! ** 2;
        }
        const wr = Array.from(
          { length: k },
          (_, j) => weight[side === 'right' ? j * 3 + r : r * k + j]!,
        );
        let whw = 0;
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) whw += wr[i]! * h[i * k + j]! * wr[j]!;
        expect(whw).toBe(squares);
      }
    },
  );
});
