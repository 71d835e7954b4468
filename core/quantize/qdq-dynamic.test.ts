/**
 * The dynamic export (target cpu-wasm-dynamic, ONNX Runtime's `quantize_dynamic` scheme): what
 * onnxruntime-web computes from it against an independent reference of the ONNX operators'
 * definitions (DynamicQuantizeLinear, ConvInteger / MatMulInteger, fp32 dequantization), and
 * the property the per-sample Scan exists for: a sample's result does not depend on its batch.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { spreadIndices } from '../calibrate/sampler.ts';
import { getTarget } from '../formats/targets.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { tinyConvModel } from '../onnx/testing.ts';
import { createSession } from '../runtime/index.ts';
import { correctLayerBias } from './bias-correction.ts';
import { prepareModel } from './prepare.ts';
import { buildQdqModel } from './qdq.ts';
import { quantizeLayer, quantizeModel } from './quantize.ts';

const target = getTarget('cpu-wasm-dynamic');
const f = Math.fround;

/** Round half to even. */
function rne(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ONNX DynamicQuantizeLinear over one sample, in fp32 as the operator defines it. */
function dynamicQuantize(x: Float32Array): { q: Int32Array; scale: number; zp: number } {
  let lo = 0;
  let hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = f(f(hi - lo) / 255);
  const zp = Math.min(255, Math.max(0, rne(f(0 - f(lo / scale)))));
  const q = Int32Array.from(x, (v) => Math.min(255, Math.max(0, rne(f(v / scale)) + zp)));
  return { q, scale, zp };
}

describe('dynamic export (cpu-wasm-dynamic)', () => {
  beforeAll(() => useNodeRuntime());

  it('computes per sample what DynamicQuantizeLinear -> ConvInteger -> fp32 dequantization define', async () => {
    const prepared = prepareModel(tinyConvModel(), target);
    const c = prepared.layers[0]!;
    // The static activation parameters a dynamic layer carries are never read by its export.
    const layer = quantizeLayer(
      c,
      { scale: 1, zeroPoint: 0, qmin: 0, qmax: 255 },
      target.weights,
      target.id,
    );
    expect(layer.floatBias).toEqual(Float64Array.from(c.bias));
    const model = buildQdqModel(prepared, [layer], target);
    const ops = new Set(model.graph!.node.map((n) => n.opType));
    expect(ops.has('Scan')).toBe(true);
    expect(ops.has('QuantizeLinear')).toBe(false);
    const body = model.graph!.node.find((n) => n.opType === 'Scan')!.attribute[0]!.g!;
    expect(body.node.map((n) => n.opType)).toEqual([
      'Unsqueeze',
      'DynamicQuantizeLinear',
      'ConvInteger',
      'Cast',
      'Mul',
      'Mul',
      'Add',
      'Squeeze',
    ]);

    // Two samples of very different ranges: each must get its own scale.
    const a = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i * 1.7) * 0.05 + 0.01);
    const b = Float32Array.from({ length: 16 }, (_, i) => Math.cos(i * 0.9) * 30 - 4);
    const x = new Float32Array(32);
    x.set(a, 0);
    x.set(b, 16);
    const session = await createSession(encodeModel(model), { graphOptimizationLevel: 'all' });
    const out = (await session.run({ x: { type: 'float32', dims: [2, 1, 4, 4], data: x } })).y!;
    await session.release();
    const got = out.data as Float32Array;

    const w = layer.weight;
    let maxUlpOff = 0;
    for (const [s, sample] of [a, b].entries()) {
      const { q, scale, zp } = dynamicQuantize(sample);
      for (let o = 0; o < 2; o++) {
        const sc = f(scale * f(w.scales[o]!));
        for (let i = 0; i < 4; i++)
          for (let j = 0; j < 4; j++) {
            let acc = 0;
            for (let di = 0; di < 3; di++)
              for (let dj = 0; dj < 3; dj++) {
                const ii = i + di - 1;
                const jj = j + dj - 1;
                if (ii < 0 || ii > 3 || jj < 0 || jj > 3) continue;
                acc += (q[ii * 4 + jj]! - zp) * w.q[o * 9 + di * 3 + dj]!;
              }
            const want = Math.max(0, f(f(acc * sc) + f(c.bias[o]!)));
            const g = got[s * 32 + o * 16 + i * 4 + j]!;
            maxUlpOff = Math.max(
              maxUlpOff,
              Math.abs(g - want) / (Math.abs(want) * 2 ** -23 || 2 ** -149),
            );
          }
      }
    }
    // bit for bit: integer accumulation, then the fp32 scale product, product and bias add
    expect(maxUlpOff).toBe(0);
  });

  it('bias correction moves the float bias of a dynamic layer, not the int32 one', () => {
    const prepared = prepareModel(tinyConvModel(), target);
    const layer = quantizeLayer(
      prepared.layers[0]!,
      { scale: 0.1, zeroPoint: 0, qmin: 0, qmax: 255 },
      target.weights,
      target.id,
    );
    // per-batch sums of (int8 - float) per channel, then the element count
    const { layer: corrected, correction } = correctLayerBias(layer, [[0.32, -0.16, 32]]);
    expect(corrected.bias).toEqual(layer.bias);
    const [b0, b1] = layer.floatBias!;
    expect(corrected.floatBias![0]).toBeCloseTo(b0! - 0.01, 12);
    expect(corrected.floatBias![1]).toBeCloseTo(b1! + 0.005, 12);
    expect(correction.maxBiasChange).toBeCloseTo(0.01, 12);
  });

  // Conv and Gemm layers (smoke-fmnist); MatMul layers on [batch, tokens, features] (spam-transformer)
  it.each(['smoke-fmnist', 'spam-transformer'])(
    'gives a sample the same bits alone and in a batch (%s)',
    async (taskId) => {
      const task = getTask(taskId);
      const model = decodeModel(await readTaskModel(task.manifest));
      const calibration = await task.load(nodeDataSource(), 'calibration');
      const q = await quantizeModel(model, calibration, {
        target,
        samples: { indices: spreadIndices(calibration.size, 20), batchSize: 10 },
        biasCorrection: false,
      });
      expect(q.layers.length).toBeGreaterThan(0);
      const scans = q.qdq.graph!.node.filter((n) => n.opType === 'Scan');
      expect(scans.length).toBe(q.layers.length);
      const session = await createSession(encodeModel(q.qdq), { graphOptimizationLevel: 'all' });
      try {
        const batch = await calibration.batch(0, 8);
        const together = await session.run(batch);
        const name = Object.keys(together)[0]!;
        const all = together[name]!.data as Float32Array;
        const per = all.length / 8;
        for (const k of [0, 3, 7]) {
          const alone = await session.run(await calibration.batch(k, k + 1));
          const bits = new Uint32Array((alone[name]!.data as Float32Array).slice().buffer);
          expect(bits).toEqual(new Uint32Array(all.slice(k * per, (k + 1) * per).buffer));
        }
      } finally {
        await session.release();
      }
    },
  );
});
