/**
 * Importing a dynamically quantized model: the zoo files ONNX Runtime 1.30's own
 * `quantize_dynamic` wrote (zoo/<task>/ort-dynamic, made by zoo/common/ort_dynamic.py), read by
 * core/import/dynamic.ts and placed on the dynamic target.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { getTask } from '../../zoo/registry.ts';
import { getTarget } from '../formats/targets.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { tensorFromProto } from '../onnx/tensor.ts';
import { ZOO_DIR } from '../onnx/testing.ts';
import { createSession } from '../runtime/index.ts';
import { importKindRefusal, quantizeImported, sameTaskModel } from './layers.ts';
import { importQdq } from './qdq.ts';
import { importRefusal } from './testing.ts';

const bytesOf = (path: string) => new Uint8Array(readFileSync(`${ZOO_DIR}/${path}`));
const ortDynamic = (task: string) => bytesOf(`${task}/ort-dynamic/model.onnx`);
const dynamicTarget = getTarget('cpu-wasm-dynamic');

/** An initializer of a model as plain numbers. */
function initializer(model: ModelProto, name: string): number[] {
  const t = model.graph!.initializer.find((i) => i.name === name);
  if (!t) throw new Error(`no initializer ${name}`);
  return Array.from(tensorFromProto(t).data as ArrayLike<number>);
}

describe("importing ONNX Runtime's quantize_dynamic output (the zoo files)", () => {
  it.each([
    // task, DynamicQuantizeLinear, MatMulInteger/ConvInteger, the file's own DequantizeLinear
    ['smoke-fmnist', 3, 3, 0],
    ['fmnist-resnet', 6, 8, 0],
    // q, k and v share one DynamicQuantizeLinear; the embedding table has the one DequantizeLinear
    ['spam-transformer', 9, 13, 1],
  ])(
    '%s: every integer layer read, of the task model, exact on cpu-wasm-dynamic',
    (task, dql, ops, dq) => {
      const imp = importQdq(decodeModel(ortDynamic(task)));
      expect(imp.removed).toEqual({
        quantizeLinear: 0,
        dequantizeLinear: dq,
        dynamicQuantizeLinear: dql,
        integerOps: ops,
      });
      expect(imp.dynamic.size).toBe(dql);
      expect(imp.activations.size).toBe(0);
      const taskModel = decodeModel(bytesOf(`${task}/model.onnx`));
      // ORT rewrites a Gemm as MatMul + Add, and leaves BatchNormalization after the Conv it
      // quantized: both are still the task's layers.
      expect(sameTaskModel(taskModel, imp, dynamicTarget)).toEqual({
        same: true,
        matched: ops,
        layers: ops,
      });
      const placed = quantizeImported(imp, dynamicTarget);
      expect(placed.layers).toHaveLength(ops);
      for (const l of placed.report) {
        expect(l.activation).toEqual({
          foreign: 'dynamic',
          mapping: 'exact',
          note: 'quantized per input at run time',
        });
        expect(l.weight.foreign).toBe('per-tensor'); // quantize_dynamic's default
        expect(l.weight.mapping).toBe('exact');
        expect(l.weight.saturated).toBe(0); // its int8 grid is [-127, 127]
      }
    },
  );

  it("keeps the file's integers: as they are on a MatMul, sign-folded on a Conv with its BatchNorm", () => {
    const file = decodeModel(ortDynamic('spam-transformer'));
    const placed = quantizeImported(importQdq(file), dynamicTarget);
    const q = placed.layers.find((l) => l.name === '/blocks.0/q/MatMul')!;
    expect(Array.from(q.weight.q)).toEqual(initializer(file, 'onnx::MatMul_208_quantized'));
    expect(new Set(q.weight.scales)).toEqual(
      new Set([Math.fround(initializer(file, 'onnx::MatMul_208_scale')[0]!)]),
    );

    // smoke-fmnist's first conv: per-tensor int8 weights, then BatchNormalization. Folded, each
    // output channel keeps the integers (negated where gamma / sigma < 0) on the scale
    // s_w * |gamma / sigma|.
    const smoke = decodeModel(ortDynamic('smoke-fmnist'));
    const conv = quantizeImported(importQdq(smoke), dynamicTarget).layers[0]!;
    const ints = initializer(smoke, 'features.0.weight_quantized');
    const sw = initializer(smoke, 'features.0.weight_scale')[0]!;
    const [gamma, , , variance] = [
      'features.1.weight',
      'features.1.bias',
      'features.1.running_mean',
      'features.1.running_var',
    ].map((n) => initializer(smoke, n));
    const inner = ints.length / conv.weight.scales.length;
    for (let ch = 0; ch < conv.weight.scales.length; ch++) {
      const factor = gamma![ch]! / Math.sqrt(variance![ch]! + 1e-5);
      expect(conv.weight.scales[ch]! / (sw * Math.abs(factor))).toBeCloseTo(1, 5);
      for (let i = ch * inner; i < (ch + 1) * inner; i++)
        expect(conv.weight.q[i]).toBe(Math.sign(factor) * ints[i]! || 0);
    }
  });

  it('a dynamic file goes on a dynamic target only, a QDQ file on a static one', () => {
    const dyn = importQdq(decodeModel(ortDynamic('smoke-fmnist')));
    expect(importKindRefusal(dyn, dynamicTarget)).toBeUndefined();
    expect(() => quantizeImported(dyn, getTarget('ascend310'))).toThrow(
      /^the file is quantized dynamically .*: ascend310 needs calibrated activation scales; place it on a dynamic target \(cpu-wasm-dynamic\)/,
    );
    const qdq = importQdq(decodeModel(bytesOf('smoke-fmnist/pytorch-ptq/model.onnx')));
    expect(importKindRefusal(qdq, getTarget('ascend310'))).toBeUndefined();
    expect(() => quantizeImported(qdq, dynamicTarget)).toThrow(
      /^the file is quantized statically \(calibrated activation scales, QDQ or QOperator\); cpu-wasm-dynamic quantizes activations at run time/,
    );
  });

  it('refuses an operator-style layout it cannot read, naming the node', () => {
    const refusal = (edit: (m: ModelProto) => void) => {
      const m = decodeModel(ortDynamic('smoke-fmnist'));
      edit(m);
      return importRefusal(m);
    };
    const nodes = (m: ModelProto) => m.graph!.node;
    // the integer result scaled without its Cast to float
    expect(
      refusal((m) => {
        const cast = nodes(m).find((n) => n.opType === 'Cast')!;
        cast.attribute[0]!.i = 6n; // to int32
      }),
    ).toMatch(/: its int32 result is not read by one Cast to float$/);
    // an integer op whose input is not a DynamicQuantizeLinear's
    expect(
      refusal((m) => {
        const op = nodes(m).find((n) => n.opType === 'ConvInteger')!;
        op.input[0] = 'input';
      }),
    ).toMatch(/its input 'input' is not quantized by a DynamicQuantizeLinear/);
    // a DynamicQuantizeLinear output read by something that is not a quantized layer
    expect(
      refusal((m) => {
        const relu = nodes(m).find((n) => n.opType === 'Relu')!;
        relu.input[0] = 'input_scale';
      }),
    ).toMatch(/: its output 'input_scale' is read by .*Relu.*, which is not a quantized layer$/);
  });
});

describe('the placed model runs as the file does', () => {
  beforeAll(() => useNodeRuntime());

  it("spam-transformer: the dynamic target's model gives the file's own logits bit for bit, one email at a time", async () => {
    const bytes = ortDynamic('spam-transformer');
    const placed = quantizeImported(importQdq(decodeModel(bytes)), dynamicTarget);
    const task = getTask('spam-transformer');
    const split = await task.load(nodeDataSource(), 'evaluation');
    // The file as ONNX Runtime runs it at batch 1 (its DynamicQuantizeLinear takes one range
    // over the batch); ours quantizes per sample whatever the batch, so one batch of 16.
    const file = await createSession(bytes, { graphOptimizationLevel: 'all' });
    const ours = await createSession(encodeModel(placed.emulation), {
      graphOptimizationLevel: 'all',
    });
    try {
      const n = 16;
      const batch = (await ours.run(await split.batch(0, n))).logits!.data as Float32Array;
      const k = batch.length / n;
      for (let i = 0; i < n; i++) {
        const one = (await file.run(await split.batch(i, i + 1))).logits!.data as Float32Array;
        expect(Array.from(batch.subarray(i * k, (i + 1) * k))).toEqual(Array.from(one));
      }
    } finally {
      await file.release();
      await ours.release();
    }
  });
});
