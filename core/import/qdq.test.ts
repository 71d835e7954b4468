import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { spreadIndices } from '../calibrate/sampler.ts';
import { getTarget } from '../formats/targets.ts';
import {
  makeAttrInt,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from '../onnx/builder.ts';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { tinyConvModel, ZOO_DIR } from '../onnx/testing.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import { createSession } from '../runtime/index.ts';
import { type ImportedLayer, type ImportedStaticActivation, quantizeImported } from './layers.ts';
import { importQdq } from './qdq.ts';
import { importRefusal } from './testing.ts';

const f32 = (name: string, dims: number[], values: number[]) =>
  tensorToProto(name, { type: 'float32', dims, data: Float32Array.from(values) });
const u8 = (name: string, dims: number[], values: number[]) =>
  tensorToProto(name, { type: 'uint8', dims, data: Uint8Array.from(values) });
const i8 = (name: string, dims: number[], values: number[]) =>
  tensorToProto(name, { type: 'int8', dims, data: Int8Array.from(values) });
const i32 = (name: string, dims: number[], values: number[]) =>
  tensorToProto(name, { type: 'int32', dims, data: Int32Array.from(values) });

/** Weights of the test conv: 2 output channels x 1 x 3 x 3, int8. */
const W = [-128, -60, 0, 17, 127, 3, -5, 90, -1, 12, -127, 44, 0, 0, 5, 127, -80, 9];
const W_SCALES = [0.004, 0.0125];
const BIAS = [1000, -2500];

/**
 * What ONNX Runtime's quantizer writes for Conv -> Relu in the QDQ format (U8S8, per-channel):
 * x -> Q -> DQ, int8 weight -> DQ(axis 0), int32 bias -> DQ, Conv, Relu, y -> Q -> DQ -> out.
 */
function ortStyleModel(nodes: NodeProto[] = [], extra: TensorProto[] = []): ModelProto {
  const xs = 0.02;
  const ys = 0.05;
  return makeModel(
    makeGraph({
      nodes: [
        makeNode('QuantizeLinear', ['x', 'x_s', 'x_z'], ['x_q'], [], { name: 'q_x' }),
        makeNode('DequantizeLinear', ['x_q', 'x_s', 'x_z'], ['x_dq'], [], { name: 'dq_x' }),
        makeNode('DequantizeLinear', ['w_q', 'w_s', 'w_z'], ['w_dq'], [makeAttrInt('axis', 0)], {
          name: 'dq_w',
        }),
        makeNode('DequantizeLinear', ['b_q', 'b_s'], ['b_dq'], [makeAttrInt('axis', 0)], {
          name: 'dq_b',
        }),
        makeNode('Conv', ['x_dq', 'w_dq', 'b_dq'], ['c'], [makeAttrInts('pads', [1, 1, 1, 1])], {
          name: 'conv',
        }),
        makeNode('Relu', ['c'], ['r'], [], { name: 'relu' }),
        makeNode('QuantizeLinear', ['r', 'y_s', 'y_z'], ['r_q'], [], { name: 'q_y' }),
        makeNode('DequantizeLinear', ['r_q', 'y_s', 'y_z'], ['y'], [], { name: 'dq_y' }),
        ...nodes,
      ],
      inputs: [makeTensorValueInfo('x', 'float32', ['N', 1, 4, 4])],
      outputs: [makeTensorValueInfo('y', 'float32', ['N', 2, 4, 4])],
      initializers: [
        f32('x_s', [], [xs]),
        u8('x_z', [], [100]),
        i8('w_q', [2, 1, 3, 3], W),
        f32('w_s', [2], W_SCALES),
        i8('w_z', [2], [0, 0]),
        i32('b_q', [2], BIAS),
        f32('b_s', [2], [Math.fround(xs * W_SCALES[0]!), Math.fround(xs * W_SCALES[1]!)]),
        f32('y_s', [], [ys]),
        u8('y_z', [], [0]),
        ...extra,
      ],
    }),
    { opset: 13 },
  );
}

describe('importQdq', () => {
  it('takes an ONNX Runtime-style QDQ model apart: float model, activations, integer weights', () => {
    const imp = importQdq(ortStyleModel());
    const g = imp.model.graph!;
    expect(g.node.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'Identity']);
    expect(g.node[0]!.input).toEqual(['x', 'w_dq', 'b_dq']);
    // The model output keeps its name through an Identity of the float tensor.
    expect(g.node[2]!.input).toEqual(['r']);
    expect(g.node[2]!.output).toEqual(['y']);
    expect(imp.removed).toEqual({
      quantizeLinear: 2,
      dequantizeLinear: 4,
      dynamicQuantizeLinear: 0,
      integerOps: 0,
    });
    expect(imp.activations.get('x')).toEqual({
      scale: Math.fround(0.02),
      zeroPoint: 100,
      type: 'uint8',
    });
    expect(imp.activations.get('r')).toEqual({
      scale: Math.fround(0.05),
      zeroPoint: 0,
      type: 'uint8',
    });
    const w = imp.weights.get('w_dq')!;
    expect(Array.from(w.q)).toEqual(W);
    expect(Array.from(w.scales)).toEqual(W_SCALES.map(Math.fround));
    expect(w.axis).toBe(0);
    // The float weight is DequantizeLinear's float32 result: q * scale per channel.
    const wf = g.initializer.find((t) => t.name === 'w_dq')!;
    const data = new Float32Array(wf.rawData.slice().buffer);
    expect(data[0]).toBe(Math.fround(-128 * Math.fround(0.004)));
    expect(data[9]).toBe(Math.fround(12 * Math.fround(0.0125)));
    // Bias: int32 * (x scale * w scale) in float32.
    const bf = g.initializer.find((t) => t.name === 'b_dq')!;
    const bias = new Float32Array(bf.rawData.slice().buffer);
    expect(bias[1]).toBe(Math.fround(-2500 * Math.fround(0.02 * 0.0125)));
    // Nothing of the integer model is left.
    expect(g.initializer.map((t) => t.name).sort()).toEqual(['b_dq', 'w_dq']);
  });

  it('reads a fake-quantized float weight (float constant -> Q -> DQ) as integers', () => {
    const m = ortStyleModel();
    const g = m.graph!;
    // Replace the int8 weight by a float one behind a Q -> DQ pair with the same scales.
    const wf = W.map((q, i) => Math.fround(q * Math.fround(W_SCALES[i < 9 ? 0 : 1]!)) + 1e-4);
    g.initializer = g.initializer.filter((t) => t.name !== 'w_q');
    g.initializer.push(f32('w_float', [2, 1, 3, 3], wf));
    g.node.splice(
      2,
      0,
      makeNode('QuantizeLinear', ['w_float', 'w_s', 'w_z'], ['w_q'], [makeAttrInt('axis', 0)]),
    );
    const imp = importQdq(m);
    expect(Array.from(imp.weights.get('w_dq')!.q)).toEqual(W);
    expect(imp.removed).toEqual({
      quantizeLinear: 3,
      dequantizeLinear: 4,
      dynamicQuantizeLinear: 0,
      integerOps: 0,
    });
  });

  it('sees through what PyTorch writes: Q -> Cast(uint8) -> DQ, Cast(ConstantOfShape) zero points, Identity scales', () => {
    const m = ortStyleModel();
    const g = m.graph!;
    const dqx = g.node.find((n) => n.name === 'dq_x')!;
    dqx.input = ['x_q_cast', 'x_s_alias', 'x_z'];
    const dqb = g.node.find((n) => n.name === 'dq_b')!;
    dqb.input = ['b_q', 'b_s', 'b_z'];
    g.initializer.push(
      tensorToProto('b_shape', { type: 'int64', dims: [1], data: new BigInt64Array([2n]) }),
    );
    g.node.unshift(
      makeNode('Identity', ['x_s'], ['x_s_alias']),
      makeNode('ConstantOfShape', ['b_shape'], ['b_zeros']),
      makeNode('Cast', ['b_zeros'], ['b_z'], [makeAttrInt('to', 6)]),
    );
    g.node.splice(
      g.node.findIndex((n) => n.name === 'q_x') + 1,
      0,
      makeNode('Cast', ['x_q'], ['x_q_cast'], [makeAttrInt('to', 2)]),
    );
    const imp = importQdq(m);
    expect(imp.model.graph!.node.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'Identity']);
    expect(imp.activations.get('x')?.zeroPoint).toBe(100);
  });

  it('refuses what it cannot read, naming the node and the reason', () => {
    const bad = importRefusal;
    // A float model: nothing to import.
    expect(bad(tinyConvModel())).toMatch(
      /no QuantizeLinear\/DequantizeLinear found: this is a float model/,
    );
    // Operator-style quantized ops.
    // (QLinear ops are read, core/import/qoperator.ts, when their inputs are quantized tensors.)
    expect(bad(ortStyleModel([makeNode('QLinearConv', ['a'], ['b'], [], { name: 'qc' })]))).toBe(
      "QLinearConv 'qc': its input 'a' is not a quantized tensor",
    );
    expect(
      bad(
        ortStyleModel([
          makeNode('QAttention', ['a'], ['b'], [], { name: 'att', domain: 'com.microsoft' }),
        ]),
      ),
    ).toBe(
      "QAttention 'att': this operator-style quantized op is not read (ONNX Runtime's QOperator ops QLinearConv, QLinearMatMul, QGemm, QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearAveragePool, QLinearSigmoid, QLinearLeakyRelu, QLinearConcat, QLinearSoftmax and quantize_dynamic's layout are); export the model in the QDQ format (QuantizeLinear/DequantizeLinear around float ops)",
    );
    // A per-channel activation quantization.
    const perChannel = ortStyleModel();
    for (const n of perChannel.graph!.node.filter(
      (n) => n.input[0] === 'r' || n.input[0] === 'r_q',
    ))
      n.attribute.push(makeAttrInt('axis', 1));
    perChannel.graph!.initializer = perChannel.graph!.initializer.map((t) =>
      t.name === 'y_s'
        ? f32('y_s', [2], [0.05, 0.06])
        : t.name === 'y_z'
          ? u8('y_z', [2], [0, 0])
          : t,
    );
    expect(bad(perChannel)).toMatch(
      /DequantizeLinear 'dq_y': per-channel quantization of an activation \('r'\)/,
    );
    // A DQ whose scale differs from its Q's (a requantization).
    const requant = ortStyleModel([], [f32('x_s2', [], [0.03])]);
    requant.graph!.node.find((n) => n.name === 'dq_x')!.input[1] = 'x_s2';
    expect(bad(requant)).toMatch(
      /DequantizeLinear 'dq_x': its scale or zero point differs from QuantizeLinear 'q_x'/,
    );
    // An integer output read by something else than a DQ.
    const intOut = ortStyleModel([makeNode('Identity', ['x_q'], ['x_int'], [], { name: 'peek' })]);
    expect(bad(intOut)).toMatch(
      /QuantizeLinear 'q_x': its integer output is read by Identity 'peek'/,
    );
    // A DQ of a non-constant, non-Q input.
    const intIn = ortStyleModel();
    intIn.graph!.node.find((n) => n.name === 'dq_x')!.input[0] = 'x';
    expect(bad(intIn)).toMatch(
      /DequantizeLinear 'dq_x': its input 'x' is neither a constant nor a QuantizeLinear output/,
    );
    // A weight scale count that does not match the axis.
    const axis = ortStyleModel();
    axis.graph!.node.find((n) => n.name === 'dq_w')!.attribute = [makeAttrInt('axis', 2)];
    expect(bad(axis)).toBe("DequantizeLinear 'dq_w': 2 scales on axis 2 of a [2,1,3,3] tensor");
  });

  describe('executed', () => {
    beforeAll(() => useNodeRuntime());

    it('the stripped float model computes what the QDQ model computes with the activation Q/DQ removed', async () => {
      const imp = importQdq(ortStyleModel());
      // Inputs on the input grid and inside its range [-2, 3.1]: only the output's rounding to
      // its 0.05 grid differs (its range [0, 12.75] holds every output here).
      const x = Float32Array.from(
        { length: 16 },
        (_, i) => Math.fround(((i * 13) % 100) - 50) * Math.fround(0.02),
      );
      const feeds = { x: { type: 'float32' as const, dims: [1, 1, 4, 4], data: x } };
      const qdq = await createSession(encodeModel(ortStyleModel()));
      const float = await createSession(encodeModel(imp.model));
      try {
        const a = (await qdq.run(feeds)).y!.data as Float32Array;
        const b = (await float.run(feeds)).y!.data as Float32Array;
        // The QDQ model rounds its output to the 0.05 grid; the float model does not.
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        expect(worst).toBeLessThanOrEqual(0.025 + 1e-6);
        expect(worst).toBeGreaterThan(0);
      } finally {
        await qdq.release();
        await float.release();
      }
    });

    it("on cpu-wasm (ONNX Runtime's own U8S8 scheme) the framework's parameters come back unchanged", () => {
      const imp = importQdq(ortStyleModel());
      const q = quantizeImported(imp, getTarget('cpu-wasm'));
      expect(q.layers).toHaveLength(1);
      const l = q.layers[0]!;
      expect(l.act).toEqual({ scale: Math.fround(0.02), zeroPoint: 100, qmin: 0, qmax: 255 });
      expect(Array.from(l.weight.q)).toEqual(W.map((v) => Math.max(-127, v)));
      expect(Array.from(l.weight.scales)).toEqual(W_SCALES.map(Math.fround));
      expect(Array.from(l.bias)).toEqual(BIAS);
      expect(q.report[0]!.weight).toEqual({
        foreign: 'per-channel',
        mapping: 'exact',
        saturated: 1,
        note: '1 weights at -128 saturate to -127',
      });
    });
  });
});

describe('importQdq on a PyTorch file (zoo/fmnist-resnet/pytorch-ptq, torch.ao FX PTQ exported by torch.onnx)', () => {
  const file = `${ZOO_DIR}/fmnist-resnet/pytorch-ptq/model.onnx`;
  const model = () => decodeModel(new Uint8Array(readFileSync(file)));

  it('reads every QDQ pair and all 8 weighted layers', () => {
    const imp = importQdq(model());
    expect(imp.producer).toBe('pytorch 1.13.0');
    expect(imp.removed).toEqual({
      quantizeLinear: 13,
      dequantizeLinear: 31,
      dynamicQuantizeLinear: 0,
      integerOps: 0,
    });
    expect(imp.weights.size).toBe(8);
    expect(imp.model.graph!.node.filter((n) => n.opType.includes('Quantize'))).toEqual([]);
    expect(imp.model.graph!.node.map((n) => n.opType).filter((o) => o !== 'Relu')).toEqual([
      'Conv',
      'Conv',
      'Conv',
      'Conv',
      'Add',
      'Conv',
      'Conv',
      'Conv',
      'Add',
      'GlobalAveragePool',
      'Flatten',
      'Gemm',
      'Identity',
    ]);
  });

  it('on ascend310 every layer maps exactly (uint8 zero point shifted by -128); on ascend310p the ReLU ranges are re-fitted', () => {
    const imp = importQdq(model());
    const a = quantizeImported(imp, getTarget('ascend310'));
    expect(a.layers).toHaveLength(8);
    expect(a.report.every((l) => l.activation.mapping === 'exact')).toBe(true);
    expect(a.report.every((l) => l.weight.mapping === 'exact')).toBe(true);
    const first = a.report[0]!;
    expect(first.name).toBe('/0/Conv');
    const act = staticActivation(first);
    expect(act.foreign.zeroPoint - 128).toBe(act.target.zeroPoint);
    expect(act.target.scale).toBe(act.foreign.scale);
    const p = quantizeImported(imp, getTarget('ascend310p'));
    expect(p.report.every((l) => l.activation.mapping === 'refit')).toBe(true);
    // A ReLU output [0, 255 s] becomes symmetric [-127 s', 127 s']: s' = 255 s / 127.
    const relu = staticActivation(p.report[1]!);
    expect(relu.foreign.zeroPoint).toBe(0);
    expect(relu.target.scale).toBeCloseTo((255 * relu.foreign.scale) / 127, 12);
  });
});

describe("cann-quant's own QDQ export, imported back", () => {
  beforeAll(() => useNodeRuntime());

  it('on Ascend 310 and 310P: the same integers and a bit-identical emulation (smoke-fmnist, 200 images)', async () => {
    const task = getTask('smoke-fmnist');
    const source = nodeDataSource();
    const calibration = await task.load(source, 'calibration');
    const evaluation = await task.load(source, 'evaluation');
    const model = decodeModel(await readTaskModel(task.manifest));
    for (const id of ['ascend310', 'ascend310p'] as const) {
      const target = getTarget(id);
      const q = await quantizeModel(model, calibration, {
        target,
        samples: { indices: spreadIndices(calibration.size, 50) },
      });
      const back = quantizeImported(importQdq(q.qdq), target);
      expect(back.report.map((l) => [l.activation.mapping, l.weight.mapping])).toEqual(
        q.layers.map(() => ['exact', 'exact']),
      );
      for (const [i, l] of q.layers.entries()) {
        const b = back.layers[i]!;
        expect(b.weight.q).toEqual(l.weight.q);
        expect(b.bias).toEqual(l.bias);
        expect(b.act.zeroPoint).toBe(l.act.zeroPoint);
        // The file holds float32 scales.
        expect(b.act.scale).toBe(Math.fround(l.act.scale));
        expect(Array.from(b.weight.scales)).toEqual(Array.from(l.weight.scales, Math.fround));
      }
      const a = await createSession(encodeModel(q.emulation));
      const c = await createSession(encodeModel(back.emulation));
      try {
        for (let s = 0; s < 200; s += 50) {
          const feeds = await evaluation.batch(s, s + 50);
          const [x, y] = [await a.run(feeds), await c.run(feeds)];
          for (const k of Object.keys(x))
            expect(new Uint32Array((y[k]!.data as Float32Array).slice().buffer)).toEqual(
              new Uint32Array((x[k]!.data as Float32Array).slice().buffer),
            );
        }
      } finally {
        await a.release();
        await c.release();
      }
    }
  });
});

/** A layer's activation mapping from a static (QDQ) file: fails the test on a dynamic one. */
function staticActivation(l: ImportedLayer): ImportedStaticActivation {
  if (l.activation.foreign === 'dynamic') throw new Error(`${l.name}: a dynamic activation`);
  return l.activation as ImportedStaticActivation;
}
