/**
 * Importing an operator-style quantized model: the zoo files ONNX Runtime 1.30's own
 * `quantize_static(quant_format=QOperator)` wrote (zoo/<task>/ort-qoperator, made by
 * zoo/common/ort_qoperator.py: QLinearConv, com.microsoft QLinearAdd / QLinearGlobalAveragePool /
 * QGemm, uint8 MaxPool and Flatten), rewritten into QDQ by core/import/qoperator.ts.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { getTask } from '../../zoo/registry.ts';
import { getTarget } from '../formats/targets.ts';
import {
  makeAttrFloat,
  makeAttrInt,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from '../onnx/builder.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { ZOO_DIR } from '../onnx/testing.ts';
import { createSession } from '../runtime/index.ts';
import { quantizeImported, sameTaskModel } from './layers.ts';
import { importQdq } from './qdq.ts';
import { plainQOperator } from './qoperator.ts';
import { importRefusal } from './testing.ts';

const bytesOf = (path: string) => new Uint8Array(readFileSync(`${ZOO_DIR}/${path}`));
const qoperator = (task: string) => bytesOf(`${task}/ort-qoperator/model.onnx`);
const relus = (m: ModelProto) => m.graph!.node.filter((n) => n.opType === 'Relu').length;

describe("importing ONNX Runtime's QOperator files (the zoo files)", () => {
  it.each([
    // task, integer ops (QLinearConv, QLinearMatMul, QLinearAdd/Mul/Softmax,
    // QLinearGlobalAveragePool, QGemm), weighted layers, Relus the rewrite puts back
    ['smoke-fmnist', 3, 3, 2],
    ['fmnist-resnet', 11, 8, 6],
    ['fmnist-mobilenet', 36, 30, 21],
    ['spam-transformer', 63, 13, 9],
  ])(
    '%s: read as the task model, every parameter exact on Ascend 310',
    (task, ops, layers, putBack) => {
      const imp = importQdq(decodeModel(qoperator(task)));
      expect(imp.format).toBe('qoperator');
      expect(imp.removed.integerOps).toBe(ops);
      expect(imp.removed.dynamicQuantizeLinear).toBe(0);
      const taskModel = decodeModel(bytesOf(`${task}/model.onnx`));
      // ONNX Runtime drops a Relu (or mobilenet's ReLU6 Clip) into its output's [0, max] range;
      // the rewrite puts a Relu at every output whose range starts at 0. The CNNs: after each of
      // the task model's Relus (smoke-fmnist 2, fmnist-resnet 5) or Clips (mobilenet 20), and after
      // the global pool of ReLU outputs. spam-transformer (no Relu): after its softmaxes (2), each
      // LayerNorm's variance + epsilon (5) and GELU's 1 + erf (2), all never negative anyway.
      expect(relus(imp.model)).toBe(putBack);
      expect(relus(taskModel)).toBe({ 'smoke-fmnist': 2, 'fmnist-resnet': 5 }[task] ?? 0);
      const ascend = getTarget('ascend310');
      expect(sameTaskModel(taskModel, imp, ascend)).toEqual({
        same: true,
        matched: layers,
        layers,
      });
      const placed = quantizeImported(imp, ascend);
      expect(placed.layers).toHaveLength(layers);
      expect(placed.report.every((l) => l.activation.mapping === 'exact')).toBe(true);
      expect(placed.report.every((l) => l.weight.mapping === 'exact')).toBe(true);
    },
  );

  it('refuses what it cannot read, naming the node', () => {
    const refusal = (edit: (m: ModelProto) => void) => {
      const m = decodeModel(qoperator('fmnist-resnet'));
      edit(m);
      return importRefusal(m);
    };
    const find = (m: ModelProto, op: string) => m.graph!.node.find((n) => n.opType === op)!;
    // an op that does arithmetic on integers and is not a QLinear op
    expect(
      refusal((m) => {
        find(m, 'Flatten').opType = 'Softmax';
      }),
    ).toMatch(/Softmax.*: reads the integer tensor '.+' \(operator-style files are read when/);
    // an integer tensor read with parameters other than its own
    expect(
      refusal((m) => {
        const add = find(m, 'QLinearAdd');
        add.input[1] = 'input_scale';
      }),
    ).toMatch(
      /QLinearAdd.*: reads '.+' with a scale or zero point other than the one it was quantized with$/,
    );
    expect(
      refusal((m) => {
        const gemm = find(m, 'QGemm');
        gemm.attribute = gemm.attribute.map((a) =>
          a.name === 'alpha' ? makeAttrFloat('alpha', 2) : a,
        );
      }),
    ).toMatch(/QGemm.*: alpha 2 \(1 is read\)$/);
  });
});

describe('the placed model runs as the file does', () => {
  beforeAll(() => useNodeRuntime());

  it("smoke-fmnist on cpu-wasm (ONNX Runtime's own kernels): the file's logits bit for bit", async () => {
    const bytes = qoperator('smoke-fmnist');
    const placed = quantizeImported(importQdq(decodeModel(bytes)), getTarget('cpu-wasm'));
    const split = await getTask('smoke-fmnist').load(nodeDataSource(), 'evaluation');
    const batch = await split.batch(0, 200);
    const file = await createSession(bytes, { graphOptimizationLevel: 'all' });
    const ours = await createSession(encodeModel(placed.emulation), {
      graphOptimizationLevel: 'all',
    });
    try {
      const a = (await file.run(batch)).logits!.data as Float32Array;
      const b = (await ours.run(batch)).logits!.data as Float32Array;
      expect(a.length).toBe(2000);
      expect(Array.from(b)).toEqual(Array.from(a));
    } finally {
      await file.release();
      await ours.release();
    }
  });
});

describe('QLinearConcat (variadic inputs)', () => {
  beforeAll(() => useNodeRuntime());

  // x and y quantized with their own parameters, concatenated into a third (as the ONNX Model
  // Zoo's int8 Inception-style models do), dequantized at the output.
  const scalar = (name: string, type: 'float32' | 'uint8', v: number) =>
    tensorToProto(name, {
      type,
      dims: [],
      data: type === 'uint8' ? Uint8Array.of(v) : Float32Array.of(v),
    });
  const model = () =>
    makeModel(
      makeGraph({
        nodes: [
          makeNode('QuantizeLinear', ['x', 'xs', 'xz'], ['xq'], [], { name: 'qx' }),
          makeNode('QuantizeLinear', ['y', 'ys', 'yz'], ['yq'], [], { name: 'qy' }),
          makeNode(
            'QLinearConcat',
            ['cs', 'cz', 'xq', 'xs', 'xz', 'yq', 'ys', 'yz'],
            ['cq'],
            [makeAttrInt('axis', 1)],
            { name: 'cat_quant', domain: 'com.microsoft' },
          ),
          makeNode('DequantizeLinear', ['cq', 'cs', 'cz'], ['out'], [], { name: 'dq' }),
        ],
        inputs: [
          makeTensorValueInfo('x', 'float32', [1, 2, 4]),
          makeTensorValueInfo('y', 'float32', [1, 3, 4]),
        ],
        outputs: [makeTensorValueInfo('out', 'float32', [1, 5, 4])],
        initializers: [
          scalar('xs', 'float32', 0.02),
          scalar('xz', 'uint8', 120),
          scalar('ys', 'float32', 0.05),
          scalar('yz', 'uint8', 100),
          scalar('cs', 'float32', 0.04),
          scalar('cz', 'uint8', 110),
        ],
      }),
      { opset: 13, extraOpsets: [{ domain: 'com.microsoft', version: 1 }] },
    );

  it('reads as Concat between its inputs and output parameters, computing what the op computes', async () => {
    const imp = importQdq(model());
    expect(imp.format).toBe('qoperator');
    expect(imp.model.graph!.node.map((n) => n.opType)).toEqual(['Concat', 'Identity']);
    expect([...imp.activations.entries()]).toEqual([
      ['x', { scale: Math.fround(0.02), zeroPoint: 120, type: 'uint8' }],
      ['y', { scale: Math.fround(0.05), zeroPoint: 100, type: 'uint8' }],
      ['cq__float', { scale: Math.fround(0.04), zeroPoint: 110, type: 'uint8' }],
    ]);
    // The QDQ form against ONNX Runtime's own QLinearConcat kernel, on values spread over both
    // inputs' ranges (some clamped): the same values.
    const rewritten = model();
    plainQOperator(rewritten);
    const x = Float32Array.from({ length: 8 }, (_, i) => -2.3 + 0.61 * i);
    const y = Float32Array.from({ length: 12 }, (_, i) => -4.9 + 0.83 * i);
    const feeds = {
      x: { type: 'float32' as const, dims: [1, 2, 4], data: x },
      y: { type: 'float32' as const, dims: [1, 3, 4], data: y },
    };
    const run = async (m: ReturnType<typeof model>) => {
      const s = await createSession(encodeModel(m));
      try {
        return Array.from((await s.run(feeds)).out!.data as Float32Array);
      } finally {
        await s.release();
      }
    };
    const [kernel, qdq] = [await run(model()), await run(rewritten)];
    expect(kernel).toHaveLength(20);
    expect(Math.min(...kernel)).toBeCloseTo(-4.4, 5); // y's lowest values clamp to the level 0
    expect(qdq).toEqual(kernel);
  });
});
