import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { spreadIndices } from '../calibrate/sampler.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import { getTarget, type TargetId } from '../formats/targets.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { createSession } from '../runtime/index.ts';
import { buildEmulationModel, clampAbsorbedBy, emulatedInputName } from './emulation.ts';
import type { QuantizedLayer } from './layer.ts';
import { activationParams } from './params.ts';
import { quantizeModel } from './quantize.ts';

/** A layer with only what its input quantizer reads: the target and the activation parameters. */
function layerFor(target: TargetId, min: number, max: number): QuantizedLayer {
  const scheme = getTarget(target).activations;
  return { target, act: activationParams({ lo: min, hi: max }, scheme) } as QuantizedLayer;
}

/** Runs both models on the first `n` samples; fails on any differing bit; returns the values compared. */
async function sameOutputBits(
  a: ModelProto,
  b: ModelProto,
  source: BatchSource,
  n: number,
): Promise<number> {
  const sa = await createSession(encodeModel(a));
  const sb = await createSession(encodeModel(b));
  try {
    let compared = 0;
    for (let i = 0; i < n; i += 50) {
      const feeds = await source.batch(i, Math.min(n, i + 50));
      const [x, y] = [await sa.run(feeds), await sb.run(feeds)];
      expect(Object.keys(x).sort()).toEqual(Object.keys(y).sort());
      for (const name of Object.keys(y)) {
        const bx = new Uint32Array((x[name]!.data as Float32Array).slice().buffer);
        const by = new Uint32Array((y[name]!.data as Float32Array).slice().buffer);
        expect(bx).toEqual(by);
        compared += by.length;
      }
    }
    return compared;
  } finally {
    await sa.release();
    await sb.release();
  }
}

/**
 * A zoo task quantized for `targetId` (50 spread calibration samples, no bias correction), its
 * emulation with clamps absorbed and with every clamp kept, and its evaluation split.
 */
async function emulationPair(taskId: string, targetId: TargetId) {
  const task = getTask(taskId);
  const source = nodeDataSource();
  const calibration = await task.load(source, 'calibration');
  const evaluation = await task.load(source, 'evaluation');
  const target = getTarget(targetId);
  const q = await quantizeModel(decodeModel(await readTaskModel(task.manifest)), calibration, {
    target,
    samples: { indices: spreadIndices(calibration.size, 50) },
    biasCorrection: false,
  });
  return {
    q,
    evaluation,
    absorbed: buildEmulationModel(q.prepared, q.layers, target),
    kept: buildEmulationModel(q.prepared, q.layers, target, { absorbClamps: false }),
  };
}

const count = (m: ModelProto, op: string) => m.graph!.node.filter((n) => n.opType === op).length;

describe('clampAbsorbedBy', () => {
  it('absorbs ReLU6 and ReLU into an asymmetric int8 quantizer calibrated on [0, <= 6]', () => {
    for (const target of ['ascend310', 'snapdragon'] as const) {
      expect(clampAbsorbedBy(layerFor(target, 0, 6), 0, 6)).toBe(true);
      expect(clampAbsorbedBy(layerFor(target, 0, 4.5), 0, 6)).toBe(true);
      expect(clampAbsorbedBy(layerFor(target, 0, 4.5), 0, Infinity)).toBe(true);
    }
  });

  it('keeps a clamp whose bound lies inside the quantizer range', () => {
    // calibrated up to 7: inputs in (6, 7] quantize above q(6), so the clamp at 6 matters
    expect(clampAbsorbedBy(layerFor('ascend310', 0, 7), 0, 6)).toBe(false);
    // calibrated from -1: negative inputs quantize below q(0), so the ReLU matters
    expect(clampAbsorbedBy(layerFor('ascend310', -1, 6), 0, 6)).toBe(false);
    expect(clampAbsorbedBy(layerFor('ascend310', -1, 6), 0, Infinity)).toBe(false);
  });

  it('absorbs an absent bound on the other side', () => {
    expect(clampAbsorbedBy(layerFor('ascend310', -1, 6), -Infinity, 6)).toBe(true);
  });

  it('keeps ReLU before a symmetric quantizer (ascend310p): q(0) = 0 is not its floor', () => {
    expect(clampAbsorbedBy(layerFor('ascend310p', 0, 6), 0, 6)).toBe(false);
    expect(clampAbsorbedBy(layerFor('ascend310p', -6, 6), -Infinity, 6)).toBe(true);
  });

  it("decides with the chip's fp16 arithmetic, not with exact arithmetic", () => {
    // range [0, 6.0115]: exactly, 6 / scale = 254.51 rounds to 255 (q(6) = 127, saturated), but
    // AscendQuant computes fp16(6 * fp16(1 / scale)) = fp16(6 * 42.40625) = 254.5 (a tie, to
    // even), + offset -128 = 126.5, which rounds to even: q(6) = 126, so the clamp at 6 matters
    const layer = layerFor('ascend310', 0, 6.0115);
    expect(Math.round(6 / layer.act.scale) + layer.act.zeroPoint).toBe(127);
    expect(clampAbsorbedBy(layer, 0, 6)).toBe(false);
  });
});

describe('clamps absorbed into the next quantizer on fmnist-mobilenet', () => {
  beforeAll(() => useNodeRuntime());

  // ascend310p's activations are symmetric: every ReLU6 stays (see above)
  it.each([
    ['ascend310', 9],
    ['ascend310p', 27],
  ] as const)('%s: Clips left %i of 27, the outputs are the same bits', async (targetId, left) => {
    const { q, evaluation, absorbed, kept } = await emulationPair('fmnist-mobilenet', targetId);
    const clips = (m: ModelProto) => count(m, 'Clip');
    // 27 Clips: 20 ReLU6 that feed only a quantized layer, the ReLU6 that also feeds a
    // residual Add, the one before global pooling, and fp16 saturation Clips of float ops
    expect(clips(kept)).toBe(27);
    expect(clips(absorbed)).toBe(left);
    // the layer after a left-out ReLU6 reads the ReLU6's input (the previous layer's
    // output), and the model says so
    const byName = (n: string) => q.layers.find((l) => l.name === `/features/features.3/${n}`)!;
    const layer = byName('block/block.3/Conv');
    expect(layer.input).toBe('/features/features.3/block/block.2/Clip_output_0');
    expect(emulatedInputName(kept, layer.input)).toBe(layer.input);
    if (left < 27) {
      expect(emulatedInputName(absorbed, layer.input)).toBe(byName('block/block.0/Conv').output);
      expect(absorbed.graph!.node.some((n) => n.output.includes(layer.input))).toBe(false);
    }

    expect(await sameOutputBits(absorbed, kept, evaluation, 200)).toBe(2000);
  });
});

describe('clamps moved past MaxPool and Flatten on smoke-fmnist (Conv Relu MaxPool Conv Relu MaxPool Flatten Gemm)', () => {
  beforeAll(() => useNodeRuntime());

  it.each([
    ['ascend310', 0],
    ['ascend310p', 2],
  ] as const)('%s: %i Relu left, each after its MaxPool; the same bits', async (targetId, left) => {
    const { q, evaluation, absorbed: moved, kept } = await emulationPair('smoke-fmnist', targetId);
    expect(count(kept, 'Relu')).toBe(2);
    expect(count(moved, 'Relu')).toBe(left);
    const producer = new Map(moved.graph!.node.flatMap((n) => n.output.map((o) => [o, n])));
    for (const pool of moved.graph!.node.filter((n) => n.opType === 'MaxPool')) {
      // the pool reads a layer's dequantised output directly, no Relu in between
      expect(producer.get(pool.input[0]!)?.opType).toBe('Cast');
      expect(pool.output[0]).toMatch(/__unclamped$/);
    }
    // the Gemm behind MaxPool -> Flatten reads the Flatten output (ascend310: unclamped)
    const gemm = q.layers.find((l) => l.kind === 'gemm')!;
    expect(emulatedInputName(moved, gemm.input)).toBe(
      left === 0 ? `${gemm.input}__unclamped` : gemm.input,
    );
    expect(await sameOutputBits(moved, kept, evaluation, 500)).toBe(5000);
  });
});
