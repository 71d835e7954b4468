import { describe, expect, it } from 'vitest';
import { TARGETS } from '../formats/targets.ts';
import {
  makeAttrInt,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  tensorToProto,
} from '../onnx/index.ts';
import { tensor } from '../tensor/index.ts';
import { OP_ENERGY } from './energy.ts';
import { perfModel } from './perf-model.ts';
import type { ModelShapes } from './shapes.ts';

const zeros = (dims: number[]) =>
  tensor('float32', dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));

/** x[1,Cin,8,8] -> Conv(Cin->16, 3x3, pad 1) -> Relu -> Reshape -> MatMul [2,512]x[512,10] -> Add(b). */
function model(cin: number) {
  const conv = makeNode(
    'Conv',
    ['x', 'w', 'cb'],
    ['c'],
    [makeAttrInts('pads', [1, 1, 1, 1]), makeAttrInt('group', 1)],
    { name: 'conv' },
  );
  const relu = makeNode('Relu', ['c'], ['r'], [], { name: 'relu' });
  const reshape = makeNode('Reshape', ['r', 'shape'], ['f'], [], { name: 'reshape' });
  const mm = makeNode('MatMul', ['f', 'm'], ['mm'], [], { name: 'fc' });
  const add = makeNode('Add', ['mm', 'mb'], ['y'], [], { name: 'fc_bias' });
  const g = makeGraph({
    nodes: [conv, relu, reshape, mm, add],
    inputs: [makeTensorValueInfo('x', 'float32', [1, cin, 8, 8])],
    outputs: [makeTensorValueInfo('y', 'float32', [2, 10])],
    initializers: [
      tensorToProto('w', zeros([16, cin, 3, 3])),
      tensorToProto('cb', zeros([16])),
      tensorToProto('shape', tensor('int64', [2], new BigInt64Array([2n, 512n]))),
      tensorToProto('m', zeros([512, 10])),
      tensorToProto('mb', zeros([10])),
    ],
  });
  const shapes: ModelShapes = {
    inputs: { x: [1, cin, 8, 8] },
    tensors: {
      x: { type: 'float32', dims: [1, cin, 8, 8] },
      w: { type: 'float32', dims: [16, cin, 3, 3] },
      cb: { type: 'float32', dims: [16] },
      c: { type: 'float32', dims: [1, 16, 8, 8] },
      r: { type: 'float32', dims: [1, 16, 8, 8] },
      shape: { type: 'int64', dims: [2] },
      f: { type: 'float32', dims: [2, 512] },
      m: { type: 'float32', dims: [512, 10] },
      mm: { type: 'float32', dims: [2, 10] },
      mb: { type: 'float32', dims: [10] },
      y: { type: 'float32', dims: [2, 10] },
    },
  };
  const quantized = [
    { name: 'conv', nodes: [conv] },
    { name: 'fc', nodes: [mm, add] },
  ];
  return { model: makeModel(g, { opset: 13 }), shapes, quantized };
}

describe('perfModel', () => {
  it('counts MACs, bytes and roofline latency per node (hand-computed, Ascend 310)', () => {
    const { model: m, shapes, quantized } = model(32);
    const r = perfModel(m, shapes, TARGETS.ascend310, { quantized });
    const [conv, relu, reshape, fc, bias] = r.layers;
    // Conv: N·Cout·H·W·Cin·kh·kw = 1·16·8·8·32·9
    expect(conv!.macs).toBe(294_912);
    expect(conv!.ops).toBe(589_824);
    // int8: input 2048 B + weights 4608 B + int32 bias 64 B + fp16 output 2048 B
    expect(conv!.int8).toMatchObject({ precision: 'int8', bytes: 8768, bound: 'memory' });
    expect(conv!.int8.latency).toBeCloseTo(8768 / 25.6e9, 18);
    // fp16 baseline: 4096 + 9216 + 32 + 2048
    expect(conv!.float).toMatchObject({ precision: 'fp16', bytes: 15_392 });
    expect(conv!.float.latency).toBeCloseTo(15_392 / 25.6e9, 18);
    expect(relu!.ops).toBe(1024);
    expect(relu!.int8).toEqual(relu!.float);
    expect(reshape!.int8.bytes).toBe(0);
    // MatMul [2,512] x [512,10]: 2·10·512
    expect(fc!.macs).toBe(10_240);
    expect(fc!.int8.bytes).toBe(1024 + 5120 + 2 * 10 * 2);
    expect(bias!.layer).toBe('fc');
    expect(bias!.int8.bytes).toBe(0);
    expect(bias!.float.bytes).toBe((20 + 10 + 20) * 2);
    const sum = (k: 'int8' | 'float') => r.layers.reduce((s, l) => s + l[k].latency!, 0);
    expect(r.totals.int8.latency).toBeCloseTo(sum('int8'), 18);
    expect(r.speedup).toBeCloseTo(sum('float') / sum('int8'), 12);
    expect(r.energyGain.powerTime).toBeCloseTo(r.speedup!, 12);
    // op energy of the conv: MACs x (0.2 + 0.1) pJ + bytes x 162.5 pJ
    expect(conv!.int8.energy.opEnergy).toBeCloseTo((294_912 * 0.3 + 8768 * 162.5) * 1e-12, 18);
    expect(conv!.float.energy.opEnergy).toBeCloseTo((294_912 * 1.5 + 15_392 * 162.5) * 1e-12, 18);
    expect(OP_ENERGY.dramByte.value).toBe(162.5);
    expect(r.energyGain.used).toBe('op-energy');
    expect(r.energyGain.value).toBe(r.energyGain.opEnergy);
  });

  it('counts a conv with Cin <= 16 at fp16 cost on Ascend 310 only', () => {
    const { model: m, shapes, quantized } = model(16);
    const a = perfModel(m, shapes, TARGETS.ascend310, { quantized }).layers[0]!;
    expect(a.int8).toEqual(a.float);
    expect(a.note).toMatch(/Cin = 16 <= 16/);
    const p = perfModel(m, shapes, TARGETS.ascend310p, { quantized }).layers[0]!;
    expect(p.int8.precision).toBe('int8');
  });

  it('uses the fp32 baseline off Ascend and is measured-only on cpu-wasm', () => {
    const { model: m, shapes, quantized } = model(32);
    const t4 = perfModel(m, shapes, TARGETS['nvidia-t4'], { quantized });
    expect(t4.layers[0]!.float).toMatchObject({ precision: 'fp32', bytes: 2 * 15_392 });
    const cpu = perfModel(m, shapes, TARGETS['cpu-wasm'], { quantized });
    expect(cpu.modelled).toBe(false);
    expect(cpu.speedup).toBeNull();
    expect(cpu.energyGain.value).toBeNull();
    expect(cpu.layers[0]!.macs).toBe(294_912);
    // Nothing quantized: speed-up exactly 1.
    expect(perfModel(m, shapes, TARGETS.ascend310).speedup).toBe(1);
  });
});
