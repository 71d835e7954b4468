import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { getTarget } from '../formats/targets.ts';
import { decodeModel } from '../onnx/index.ts';
import { tensorFromProto, tensorToProto } from '../onnx/tensor.ts';
import { ZOO_DIR } from '../onnx/testing.ts';
import type { LayerCandidate } from '../quantize/prepare.ts';
import { interfaceMismatch, mapActivation, mapWeight, sameTaskModel } from './layers.ts';
import { importQdq } from './qdq.ts';

const ascend310 = getTarget('ascend310').activations; // int8 asymmetric
const ascend310p = getTarget('ascend310p').activations; // int8 symmetric
const cpuWasm = getTarget('cpu-wasm').activations; // uint8 asymmetric

describe('mapActivation', () => {
  it('uint8 asymmetric -> int8 asymmetric (Ascend 310): the same grid, zero point - 128', () => {
    expect(mapActivation({ scale: 0.011, zeroPoint: 73, type: 'uint8' }, ascend310)).toEqual({
      params: { scale: 0.011, zeroPoint: -55, qmin: -128, qmax: 127 },
      mapping: 'exact',
      note: 'zero point 73 (uint8) -> -55 (int8)',
    });
    // and back: int8 asymmetric -> uint8 asymmetric (cpu-wasm)
    expect(mapActivation({ scale: 0.5, zeroPoint: -55, type: 'int8' }, cpuWasm)).toEqual({
      params: { scale: 0.5, zeroPoint: 73, qmin: 0, qmax: 255 },
      mapping: 'exact',
      note: 'zero point -55 (int8) -> 73 (uint8)',
    });
    // same type: no note
    expect(mapActivation({ scale: 0.5, zeroPoint: 9, type: 'uint8' }, cpuWasm)).toEqual({
      params: { scale: 0.5, zeroPoint: 9, qmin: 0, qmax: 255 },
      mapping: 'exact',
    });
  });

  it('uint8 asymmetric -> int8 symmetric (Ascend 310P): the clip range kept, made symmetric', () => {
    // A ReLU output: [0, 255 * 0.02] = [0, 5.1] -> symmetric step 5.1 / 127.
    const relu = mapActivation({ scale: 0.02, zeroPoint: 0, type: 'uint8' }, ascend310p);
    expect(relu.mapping).toBe('refit');
    expect(relu.params).toEqual({ scale: (255 * 0.02) / 127, zeroPoint: 0, qmin: -127, qmax: 127 });
    expect(relu.note).toBe('asymmetric range [0, 5.1] made symmetric: step x2.01');
    // A range around 0: [-100 * 0.01, 155 * 0.01] -> max |.| = 1.55.
    const mid = mapActivation({ scale: 0.01, zeroPoint: 100, type: 'uint8' }, ascend310p);
    expect(mid.params.scale).toBeCloseTo(1.55 / 127, 15);
    expect(mid.note).toBe('asymmetric range [-1, 1.55] made symmetric: step x1.22');
  });

  it('symmetric -> symmetric: exact; the level -128 is the one a [-127, 127] grid loses', () => {
    expect(mapActivation({ scale: 0.1, zeroPoint: 0, type: 'int8' }, ascend310p)).toEqual({
      params: { scale: 0.1, zeroPoint: 0, qmin: -127, qmax: 127 },
      mapping: 'exact',
      note: 'level -128 saturates to -127',
    });
    // uint8 with zero point 128 is symmetric too (TensorRT-style uint8 export)
    expect(mapActivation({ scale: 0.1, zeroPoint: 128, type: 'uint8' }, ascend310p).mapping).toBe(
      'exact',
    );
  });
});

/** A conv candidate with 2 output channels x 3 weights, float weights given. */
function candidate(data: number[]): LayerCandidate {
  return {
    name: 'conv',
    kind: 'conv',
    nodes: [],
    input: 'x',
    output: 'y',
    weight: { dims: [2, 3, 1, 1], data: Float32Array.from(data), axis: 0 },
    bias: new Float32Array(2),
  };
}

describe('mapWeight', () => {
  const s = [Math.fround(0.01), Math.fround(0.5)];
  const q = [-128, 5, 127, 3, -7, 0];
  const deq = q.map((v, i) => Math.fround(v * s[i < 3 ? 0 : 1]!));
  const foreign = {
    dims: [2, 3, 1, 1],
    q: Int32Array.from(q),
    scales: Float64Array.from(s),
    zeroPoints: new Int32Array(2),
    axis: 0,
    type: 'int8' as const,
  };

  it("keeps the framework's integers and scales on an int8 symmetric per-channel target", () => {
    const m = mapWeight(candidate(deq), foreign, getTarget('ascend310').weights);
    expect(m.mapping).toBe('exact');
    expect(Array.from(m.weight.q)).toEqual([-127, 5, 127, 3, -7, 0]);
    expect(Array.from(m.weight.scales)).toEqual(s);
    expect(m.saturated).toBe(1);
    expect(m.note).toBe('1 weights at -128 saturate to -127');
  });

  it('a per-tensor scale is the same scale on every channel', () => {
    const one = { ...foreign, scales: Float64Array.of(s[0]!), zeroPoints: new Int32Array(1) };
    const data = q.map((v) => Math.fround(v * s[0]!));
    const m = mapWeight(candidate(data), one, getTarget('ascend310').weights);
    expect(m.foreign).toBe('per-tensor');
    expect(m.mapping).toBe('exact');
    expect(Array.from(m.weight.scales)).toEqual([s[0], s[0]]);
  });

  it('re-fits what the target cannot hold, saying why', () => {
    // int4 weights (W4A8)
    const w4 = mapWeight(candidate(deq), foreign, getTarget('ascend310-w4a8').weights);
    expect(w4.mapping).toBe('refit');
    expect(w4.note).toBe('int8 weights re-quantized to int4 (max)');
    expect(Math.max(...Array.from(w4.weight.q).map(Math.abs))).toBe(7);
    // asymmetric weights
    const asym = { ...foreign, zeroPoints: Int32Array.of(3, 0) };
    expect(mapWeight(candidate(deq), asym, getTarget('ascend310').weights).note).toBe(
      'asymmetric weights re-fitted to the symmetric scheme',
    );
    // weights changed after quantization (a BatchNorm folded into them here)
    const folded = deq.map((v) => v * 1.37);
    expect(mapWeight(candidate(folded), foreign, getTarget('ascend310').weights).note).toMatch(
      /^weights are not on the framework grid/,
    );
    // a weight the framework left in float
    const none = mapWeight(candidate(deq), undefined, getTarget('ascend310').weights);
    expect([none.foreign, none.mapping]).toEqual(['float', 'refit']);
  });
});

describe('sameTaskModel (the PyTorch quantization of fmnist-resnet)', () => {
  const read = (p: string) => decodeModel(new Uint8Array(readFileSync(`${ZOO_DIR}/${p}`)));
  const imp = importQdq(read('fmnist-resnet/pytorch-ptq/model.onnx'));
  const target = getTarget('ascend310');

  it('checks the graph inputs and outputs first', () => {
    expect(interfaceMismatch(imp.model, read('fmnist-resnet/model.onnx'))).toBeUndefined();
    expect(interfaceMismatch(imp.model, read('spam-transformer/model.onnx'))).toMatch(
      /^it takes \[input\] and gives \[logits\]; the task's model takes \[.+\] and gives \[.+\]$/,
    );
  });

  it("matches every layer of the task's model: within half a quantization step after BN folding", () => {
    expect(sameTaskModel(read('fmnist-resnet/model.onnx'), imp, target)).toEqual({
      same: true,
      matched: 8,
      layers: 8,
    });
  });

  it('tells another network, or the same one with changed weights', () => {
    expect(sameTaskModel(read('smoke-fmnist/model.onnx'), imp, target)).toEqual({
      same: false,
      matched: 0,
      layers: 3,
      why: 'no imported layer is a conv [8x1x3x3] like /features/features.0/Conv',
    });
    // The task's classifier weights 2% larger: more than rounding moves them.
    const changed = read('fmnist-resnet/model.onnx');
    const fc = changed.graph!.initializer.find((t) => t.name === 'fc.weight')!;
    const w = tensorFromProto(fc).data as Float32Array;
    const scaled = tensorToProto('fc.weight', {
      type: 'float32',
      dims: [10, 128],
      data: w.map((v) => v * 1.02),
    });
    changed.graph!.initializer = changed.graph!.initializer.map((t) =>
      t.name === 'fc.weight' ? scaled : t,
    );
    const r = sameTaskModel(changed, imp, target);
    expect(r.same).toBe(false);
    expect(r.matched).toBe(7);
    expect(r.why).toMatch(
      /^no imported linear \[10x128\] layer has \/fc\/Gemm's weights \(the closest is \d+\.\d quantization steps away; at most 0\.5 is rounding\)$/,
    );
  });
});
