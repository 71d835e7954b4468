import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getTarget } from '../formats/targets.ts';
import {
  makeAttrFloat,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from '../onnx/builder.ts';
import { decodeModel } from '../onnx/index.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { ZOO_DIR } from '../onnx/testing.ts';
import { clippedNormalMoments } from './gaussian.ts';
import { activationDistributions, predictRisk, riskLevel } from './risk.ts';

const f32 = (name: string, dims: number[], values: number[]) =>
  tensorToProto(name, { type: 'float32', dims, data: new Float32Array(values) });

/**
 * x[N,2,4,4] -> conv1 (1x1) -> bn1 (gamma [1, 2], beta [0, 1]) -> relu -> conv2 (1x1, weights
 * on the int8 grid: +-max or 0 per row) -> bn2 (gamma [2, 1, 0.5], beta [0.5, 0, -1]) -> y.
 * Every BN has mean 0, variance 1 and epsilon 0, so folding multiplies row o by gamma_o exactly.
 */
function twoConvModel() {
  const bn = (name: string, x: string, y: string) =>
    makeNode(
      'BatchNormalization',
      [x, `${name}.g`, `${name}.b`, `${name}.m`, `${name}.v`],
      [y],
      [makeAttrFloat('epsilon', 0)],
      { name },
    );
  return makeModel(
    makeGraph({
      nodes: [
        makeNode('Conv', ['x', 'w1'], ['c1'], [makeAttrInts('kernel_shape', [1, 1])], {
          name: 'conv1',
        }),
        bn('bn1', 'c1', 'b1'),
        makeNode('Relu', ['b1'], ['r1'], [], { name: 'relu1' }),
        makeNode('Conv', ['r1', 'w2'], ['c2'], [makeAttrInts('kernel_shape', [1, 1])], {
          name: 'conv2',
        }),
        bn('bn2', 'c2', 'y'),
      ],
      inputs: [makeTensorValueInfo('x', 'float32', ['N', 2, 4, 4])],
      outputs: [makeTensorValueInfo('y', 'float32', ['N', 3, 4, 4])],
      initializers: [
        f32('w1', [2, 2, 1, 1], [0.3, -0.7, 0.25, 0.9]),
        f32('bn1.g', [2], [1, 2]),
        f32('bn1.b', [2], [0, 1]),
        f32('bn1.m', [2], [0, 0]),
        f32('bn1.v', [2], [1, 1]),
        f32('w2', [3, 2, 1, 1], [1, -1, 1, 1, 0, 1]),
        f32('bn2.g', [3], [2, 1, 0.5]),
        f32('bn2.b', [3], [0.5, 0, -1]),
        f32('bn2.m', [3], [0, 0, 0]),
        f32('bn2.v', [3], [1, 1, 1]),
      ],
    }),
    { opset: 17 },
  );
}

describe('activationDistributions', () => {
  it('reads N(beta, gamma^2) off a BatchNorm and carries the ReLU bound', () => {
    const d = activationDistributions(twoConvModel().graph!);
    const r1 = d.get('r1')!;
    expect([...r1.mu]).toEqual([0, 1]);
    expect([...r1.sigma]).toEqual([1, 2]);
    expect([r1.lo, r1.hi]).toEqual([0, Number.POSITIVE_INFINITY]);
    expect(r1.source).toBe('BatchNormalization bn1 -> Relu');
    expect(d.has('x')).toBe(false);
    expect(d.has('c1')).toBe(false);
  });

  it('recognises a written-out LayerNorm after an embedding, and a residual Add', () => {
    const table = Array.from({ length: 4 * 3 }, (_, i) => [1, 2, 3][i % 3]! * (i < 6 ? 1 : -1));
    const model = makeModel(
      makeGraph({
        nodes: [
          makeNode('Gather', ['table', 'ids'], ['e']),
          makeNode('ReduceMean', ['e'], ['m'], [makeAttrInts('axes', [-1])]),
          makeNode('Sub', ['e', 'm'], ['d']),
          makeNode('Mul', ['d', 'd'], ['d2']),
          makeNode('ReduceMean', ['d2'], ['v'], [makeAttrInts('axes', [-1])]),
          makeNode('Add', ['v', 'eps'], ['ve']),
          makeNode('Sqrt', ['ve'], ['s']),
          makeNode('Div', ['d', 's'], ['n']),
          makeNode('Mul', ['n', 'gamma'], ['g']),
          makeNode('Add', ['g', 'beta'], ['h']),
          makeNode('Add', ['h', 'e'], ['res']),
          makeNode('MatMul', ['h', 'w'], ['y']),
        ],
        inputs: [makeTensorValueInfo('ids', 'int64', ['N', 5])],
        outputs: [makeTensorValueInfo('y', 'float32', ['N', 5, 2])],
        initializers: [
          f32('table', [4, 3], table),
          f32('eps', [], [1e-5]),
          f32('gamma', [3], [1, -2, 0.5]),
          f32('beta', [3], [0.1, 0, -0.1]),
          f32('w', [3, 2], [1, 2, 3, 4, 5, 6]),
        ],
      }),
    );
    const d = activationDistributions(model.graph!);
    // the table's columns: +-1, +-2, +-3 in equal numbers: mean 0, std 1, 2, 3
    expect([...d.get('e')!.mu]).toEqual([0, 0, 0]);
    expect([...d.get('e')!.sigma]).toEqual([1, 2, 3]);
    expect(d.get('n')!.source).toMatch(/standardised by Div/);
    const h = d.get('h')!;
    expect([...h.mu].map((v) => Math.fround(v))).toEqual([0.1, 0, -0.1].map(Math.fround));
    expect([...h.sigma]).toEqual([1, 2, 0.5]);
    // residual: independent branches, variances add
    const res = d.get('res')!;
    for (const [c, v] of [2, 8, 9.25].entries()) expect(res.sigma[c]! ** 2).toBeCloseTo(v, 12);
    expect(res.approximations.join()).toMatch(/independent/);
    // no distribution for ReduceMean / Sqrt outputs
    expect(d.has('m')).toBe(false);
    expect(d.has('s')).toBe(false);
  });
});

describe('predictRisk', () => {
  // conv2's input r1: channel 0 relu(N(0, 1)), channel 1 relu(N(1, 4)); z = 4 gives [0, 1 + 4 x 2]
  const power =
    (clippedNormalMoments(0, 1, 0, Infinity).meanSquare +
      clippedNormalMoments(1, 2, 0, Infinity).meanSquare) /
    2;

  it('predicts the input noise on Ascend 310 (asymmetric int8) exactly', () => {
    const r = predictRisk(twoConvModel(), getTarget('ascend310'));
    const conv2 = r.layers.find((l) => l.name === 'conv2')!;
    const step = 9 / 255;
    expect(conv2.input!.lo).toBe(0);
    expect(conv2.input!.hi).toBe(9);
    expect(conv2.input!.step).toBeCloseTo(step, 15);
    expect(conv2.inputSqnrDb!).toBeCloseTo(10 * Math.log10(power / (step ** 2 / 12)), 9);
    // weights on the grid: no weight noise; the folded BN gives the output's signal:
    // sum (beta^2 + gamma^2) = 6.5, and the input noise reaches it through sum w'^2 = 10.25
    expect(conv2.signal).toBe('batchnorm');
    expect(conv2.weightSqnrDb).toBeGreaterThan(130);
    expect(conv2.sqnrDb).toBeCloseTo(10 * Math.log10(6.5 / ((step ** 2 / 12) * 10.25)), 5);
    expect(conv2.flags).toEqual([]);
    // conv1 reads the model input: weight noise only, said so
    const conv1 = r.layers.find((l) => l.name === 'conv1')!;
    expect(conv1.inputSqnrDb).toBeNull();
    expect(conv1.signal).toBe('weights only');
    expect(conv1.flags[0]).toMatch(/not determined/);
    expect(r.covered).toBe(1);
    expect(r.layers.map((l) => l.share).reduce((a, b) => a + b)).toBeCloseTo(1, 12);
  });

  it('costs symmetric activations 20 log10(255/127) dB on a ReLU output, and flags it', () => {
    const asym = predictRisk(twoConvModel(), getTarget('ascend310')).layers.find(
      (l) => l.name === 'conv2',
    )!;
    const sym = predictRisk(twoConvModel(), getTarget('ascend310p')).layers.find(
      (l) => l.name === 'conv2',
    )!;
    expect(asym.inputSqnrDb! - sym.inputSqnrDb!).toBeCloseTo(20 * Math.log10(255 / 127), 9);
    expect(sym.flags[0]).toMatch(/symmetric activations on a non-negative input/);
  });

  it("gives the weight's SQNR on the target's weight grid (int8 and int4, per channel)", () => {
    const r8 = predictRisk(twoConvModel(), getTarget('ascend310'));
    const r4 = predictRisk(twoConvModel(), getTarget('ascend310-w4a8'));
    // conv1's folded rows [0.3, -0.7] and [0.5, 1.8]; each row's max is exact on its grid.
    // int8 (max/127): 0.3 -> 54 steps, 0.5 -> 35 steps; int4 (max/7): 0.3 -> 3 (exact), 0.5 -> 2
    const signal = 0.3 ** 2 + 0.7 ** 2 + 0.5 ** 2 + 1.8 ** 2;
    const noise8 = (0.3 - (54 * 0.7) / 127) ** 2 + (0.5 - (35 * 1.8) / 127) ** 2;
    const noise4 = (0.5 - (2 * 1.8) / 7) ** 2;
    const conv1 = (r: typeof r8) => r.layers.find((l) => l.name === 'conv1')!;
    expect(conv1(r8).weightSqnrDb).toBeCloseTo(10 * Math.log10(signal / noise8), 4);
    expect(conv1(r4).weightSqnrDb).toBeCloseTo(10 * Math.log10(signal / noise4), 4);
    expect(r4.predictedSqnrDb).toBeLessThan(r8.predictedSqnrDb);
  });

  it('pins smoke-fmnist, from the shipped model alone', () => {
    const model = decodeModel(
      new Uint8Array(readFileSync(join(ZOO_DIR, 'smoke-fmnist', 'model.onnx'))),
    );
    const a = predictRisk(model, getTarget('ascend310'));
    const w4 = predictRisk(model, getTarget('ascend310-w4a8'));
    expect(a.covered).toBe(2);
    expect(a.layers).toHaveLength(3);
    // bench/results/risk-2026-11-29.md: measured 42.5 dB (ascend310) and 21.5 dB (W4A8) at the
    // model output; the prediction is the pessimistic sum of the layers' own noise
    expect(a.predictedSqnrDb).toBeCloseTo(35.7, 1);
    expect(w4.predictedSqnrDb).toBeCloseTo(13.4, 1);
    // the same doubles as in workerd (test/workers/risk.test.ts)
    expect(a.predictedSqnrDb).toBe(35.717396650597514);
    expect(predictRisk(model, getTarget('ascend310p-w4a8')).predictedSqnrDb).toBe(
      13.390651094592252,
    );
    expect(a.level).toBe('low');
    expect(w4.level).toBe('high');
  });

  it('takes stated input statistics for the first layer', () => {
    const r = predictRisk(twoConvModel(), getTarget('ascend310'), {
      inputs: { x: { mean: 0, std: 1, min: -1, max: 2 } },
    });
    const conv1 = r.layers.find((l) => l.name === 'conv1')!;
    // range [-1, 2] (inside mean +- 4 std), asymmetric int8: step 3 / 255; E[x^2] = 1 exactly
    expect(conv1.input!.source).toMatch(/^input x \(stated/);
    expect(conv1.inputSqnrDb!).toBeCloseTo(10 * Math.log10(1 / ((3 / 255) ** 2 / 12)), 9);
    expect(r.covered).toBe(2);
    expect(() =>
      predictRisk(twoConvModel(), getTarget('ascend310'), {
        inputs: { image: { mean: 0, std: 1, min: -1, max: 2 } },
      }),
    ).toThrow(/'image', which is not an input of the model \(inputs: x\)/);
    expect(() =>
      predictRisk(twoConvModel(), getTarget('ascend310'), {
        inputs: { x: { mean: 0, std: -1, min: -1, max: 2 } },
      }),
    ).toThrow(/std >= 0/);
  });

  it('recomputes the power of a stated input after a ReLU (the stated E[x^2] no longer holds)', () => {
    const model = makeModel(
      makeGraph({
        nodes: [
          makeNode('Relu', ['x'], ['r']),
          makeNode('Conv', ['r', 'w'], ['y'], [makeAttrInts('kernel_shape', [1, 1])], {
            name: 'conv',
          }),
        ],
        inputs: [makeTensorValueInfo('x', 'float32', ['N', 1, 4, 4])],
        outputs: [makeTensorValueInfo('y', 'float32', ['N', 1, 4, 4])],
        initializers: [f32('w', [1, 1, 1, 1], [1])],
      }),
    );
    const conv = predictRisk(model, getTarget('ascend310'), {
      inputs: { x: { mean: 0, std: 1, min: -1, max: 2 } },
    }).layers[0]!;
    // relu(x) of the stated x: clip(N(0, 1), 0, 2), range [0, 2], step 2 / 255
    const power = clippedNormalMoments(0, 1, 0, 2).meanSquare;
    expect(conv.input!.hi).toBe(2);
    expect(conv.inputSqnrDb!).toBeCloseTo(10 * Math.log10(power / ((2 / 255) ** 2 / 12)), 9);
  });

  it('attenuates noise before a global average pool, and carries the pooled distribution', () => {
    // x[N,2,4,4] -> conv (1x1, 1 channel) -> bn (gamma 1, beta 0) -> relu -> GAP -> flatten -> gemm
    const model = makeModel(
      makeGraph({
        nodes: [
          makeNode('Conv', ['x', 'w'], ['c'], [makeAttrInts('kernel_shape', [1, 1])], {
            name: 'conv',
          }),
          makeNode(
            'BatchNormalization',
            ['c', 'g', 'b0', 'm', 'v'],
            ['bn'],
            [makeAttrFloat('epsilon', 0)],
          ),
          makeNode('Relu', ['bn'], ['r']),
          makeNode('GlobalAveragePool', ['r'], ['p']),
          makeNode('Flatten', ['p'], ['f']),
          makeNode('Gemm', ['f', 'fcw'], ['y'], [], { name: 'fc' }),
        ],
        inputs: [makeTensorValueInfo('x', 'float32', ['N', 2, 4, 4])],
        outputs: [makeTensorValueInfo('y', 'float32', ['N', 3])],
        initializers: [
          f32('w', [1, 2, 1, 1], [0.5, -0.25]),
          f32('g', [1], [1]),
          f32('b0', [1], [0]),
          f32('m', [1], [0]),
          f32('v', [1], [1]),
          f32('fcw', [3, 1], [1, -1, 0.5]),
        ],
      }),
    );
    const r = predictRisk(model, getTarget('ascend310'));
    // relu(N(0, 1)) over S = 16 positions: E[x] = 1/sqrt(2 pi), E[x^2] = 1/2;
    // gain = E[x^2] / (E[x]^2 + Var[x] / 16) / 16
    const m1 = 1 / Math.sqrt(2 * Math.PI);
    const gain = 0.5 / (m1 ** 2 + (0.5 - m1 ** 2) / 16) / 16;
    const conv = r.layers.find((l) => l.name === 'conv')!;
    const fc = r.layers.find((l) => l.name === 'fc')!;
    expect(conv.outputGainDb).toBeCloseTo(10 * Math.log10(gain), 9);
    expect(fc.outputGainDb).toBe(0);
    const pooled = activationDistributions(model.graph!).get('f')!;
    expect(pooled.mu[0]).toBeCloseTo(m1, 12);
    expect(pooled.sigma[0]).toBeCloseTo(Math.sqrt((0.5 - m1 ** 2) / 16), 12);
    expect(fc.input!.source).toMatch(/GlobalAveragePool over 16 positions/);
    // the model figure weighs each layer's noise by its gain
    const nsr = (l: typeof conv) => 10 ** (-l.sqnrDb / 10) * 10 ** (l.outputGainDb / 10);
    expect(r.predictedSqnrDb).toBeCloseTo(-10 * Math.log10(nsr(conv) + nsr(fc)), 9);
  });

  it('reads a BatchNorm parameter passed through an Identity (exporters share constants)', () => {
    const model = twoConvModel();
    const g = model.graph!;
    g.node.unshift(makeNode('Identity', ['bn2.b'], ['bn2.b.shared']));
    g.node.find((n) => n.name === 'bn2')!.input[2] = 'bn2.b.shared';
    expect([...activationDistributions(g).get('y')!.mu]).toEqual([0.5, 0, -1]);
  });

  it('rejects a model without a graph and a bad z', () => {
    const model = twoConvModel();
    expect(() => predictRisk({ ...model, graph: undefined }, getTarget('ascend310'))).toThrow(
      /no graph/,
    );
    expect(() => predictRisk(model, getTarget('ascend310'), { z: 0 })).toThrow(/z must be/);
  });

  it('labels levels at 30 and 20 dB', () => {
    expect([riskLevel(30), riskLevel(29.9), riskLevel(20), riskLevel(19.9)]).toEqual([
      'low',
      'medium',
      'medium',
      'high',
    ]);
  });
});
