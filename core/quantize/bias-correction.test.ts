import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { captureSession, gatherBatch } from '../calibrate/capture.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import { getTarget, type Target } from '../formats/targets.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel } from '../onnx/index.ts';
import type { TensorData } from '../tensor/index.ts';
import {
  buildBiasCorrectionModel,
  channelDiffSums,
  correctBiases,
  outputChannelAxis,
} from './bias-correction.ts';
import { buildEmulationModel } from './emulation.ts';
import type { QuantizedLayer } from './layer.ts';
import type { QuantizationResult } from './quantize.ts';
import { quantizeModel } from './quantize.ts';

/** Per layer, per output channel: the mean of (INT8 output - FP32 layer on the same input). */
async function ownErrorMeans(
  q: QuantizationResult,
  layers: QuantizedLayer[],
  target: Target,
  source: BatchSource,
  indices: readonly number[],
): Promise<number[][]> {
  // Emulated targets only: the QDQ model of `cpu-wasm` would also need the output parameters.
  const { model, pairs } = buildBiasCorrectionModel(q.prepared, layers, target, new Map());
  const names = pairs.flatMap((p) => [p.int8, p.reference]);
  const session = await captureSession(model, names);
  try {
    const out = await session.run(await gatherBatch(source, indices), names);
    return pairs.map((p) => channelMeans(out[p.int8]!, out[p.reference]!, p.layer));
  } finally {
    await session.release();
  }
}

/** Per output channel: the mean of (INT8 output - the FP32 model's output of the same layer). */
async function fp32ErrorMeans(
  q: QuantizationResult,
  layers: QuantizedLayer[],
  target: Target,
  source: BatchSource,
  indices: readonly number[],
): Promise<number[][]> {
  const names = layers.map((l) => l.output);
  const feeds = await gatherBatch(source, indices);
  const run = async (model: ModelProto) => {
    const session = await captureSession(model, names);
    try {
      return await session.run(feeds, names);
    } finally {
      await session.release();
    }
  };
  const fp = await run(q.prepared.model);
  const int8 = await run(buildEmulationModel(q.prepared, layers, target));
  return layers.map((l) => channelMeans(int8[l.output]!, fp[l.output]!, l));
}

function channelMeans(int8: TensorData, ref: TensorData, layer: QuantizedLayer): number[] {
  const sums = channelDiffSums(int8, ref, outputChannelAxis(layer, ref.dims.length));
  const count = sums.pop()!;
  return sums.map((s) => s / count);
}

/** |means| in the layer's accumulator units (what the int32 bias counts in). */
const units = (means: number[], l: QuantizedLayer) =>
  means.map((m, c) => Math.abs(m) / l.deqScale[c]!);

describe('own-error bias correction on smoke-fmnist', () => {
  beforeAll(() => useNodeRuntime());

  const task = getTask('smoke-fmnist');
  const indices = Array.from({ length: 50 }, (_, i) => i * 10);
  const setup = async (targetId: string) => {
    const target = getTarget(targetId);
    const split = await task.load(nodeDataSource(), 'calibration');
    const model = decodeModel(await readTaskModel(task.manifest));
    const q = await quantizeModel(model, split, {
      target,
      samples: { indices },
      biasCorrection: false,
    });
    return { target, split, model, q };
  };

  it('the float reference of the first layer is the FP32 layer (it reads the model input)', async () => {
    for (const [targetId, tolerance] of [
      // cpu-wasm runs a QDQ model: the reference reads the float input itself, exactly.
      ['cpu-wasm', 1e-6],
      // ascend310 rounds the model input to fp16 first: relative input error <= 2^-11.
      ['ascend310', 2e-3],
    ] as const) {
      const { target, split, model, q } = await setup(targetId);
      const first = q.layers[0]!;
      const outputParams = new Map<string, never>();
      const { model: bc, pairs } = buildBiasCorrectionModel(
        q.prepared,
        q.layers,
        target,
        outputParams,
      );
      expect(pairs.map((p) => p.layer.name)).toEqual(q.layers.map((l) => l.name));
      const feeds = await gatherBatch(split, indices.slice(0, 8));
      const fp = await captureSession(model, [first.output]);
      const s = await captureSession(bc, [pairs[0]!.reference]);
      try {
        const want = (await fp.run(feeds, [first.output]))[first.output]!.data as Float32Array;
        const got = (await s.run(feeds, [pairs[0]!.reference]))[pairs[0]!.reference]!
          .data as Float32Array;
        expect(got.length).toBe(want.length);
        let worst = 0;
        let peak = 0;
        for (let i = 0; i < want.length; i++) {
          worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
          peak = Math.max(peak, Math.abs(want[i]!));
        }
        expect(worst / peak).toBeLessThanOrEqual(tolerance);
      } finally {
        await fp.release();
        await s.release();
      }
    }
  });

  it('leaves each layer less than half its mean own error', async () => {
    const { target, split, q } = await setup('ascend310');
    const outputParams = new Map<string, never>(); // read by the QDQ model only
    const before = await ownErrorMeans(q, q.layers, target, split, indices);
    const { layers } = await correctBiases(
      q.prepared,
      q.layers,
      target,
      split,
      { indices },
      outputParams,
    );
    const after = await ownErrorMeans(q, layers, target, split, indices);
    layers.forEach((l, li) => {
      const unitsBefore = units(before[li]!, l);
      const unitsAfter = units(after[li]!, l);
      // Measured worst channel, before -> after (accumulator units): conv0 33 -> 2.4, conv1
      // 128 -> 11, gemm 312 -> 127. What is left is not rounding of the bias (<= 0.5 units):
      // the outputs are rounded to fp16, whose step is hundreds of accumulator units at the
      // classifier's logits, and the corrected upstream layers move this layer's input.
      expect(Math.max(...unitsAfter)).toBeLessThan(0.5 * Math.max(...unitsBefore));
    });
  });

  it('an error upstream is not corrected again downstream (no double counting)', async () => {
    const { target, split, q } = await setup('ascend310');
    const outputParams = new Map<string, never>();
    // Shift every channel of the first layer by 2000 accumulator units: a mean error that layer
    // owns. The second layer's input then carries it too (through ReLU and max pooling).
    const shifted = q.layers.map((l, li) =>
      li === 0 ? { ...l, bias: l.bias.map((b) => b + 2000) } : l,
    );
    const correct = (layers: QuantizedLayer[]) =>
      correctBiases(q.prepared, layers, target, split, { indices }, outputParams);
    const plain = await correct(q.layers);
    const moved = await correct(shifted);
    const delta = (r: typeof plain, from: QuantizedLayer[], li: number) =>
      Array.from(r.layers[li]!.bias, (b, c) => b - from[li]!.bias[c]!);
    // The first layer takes its own 2000 units back (measured 1998..2001: fp16 output noise).
    const own = delta(moved, shifted, 0);
    const base = delta(plain, q.layers, 0);
    expect(Math.max(...own.map((d, c) => Math.abs(d - base[c]! + 2000)))).toBeLessThanOrEqual(5);

    // The second layer's correction barely moves: it measures only its own error.
    const second = delta(moved, shifted, 1);
    const secondBase = delta(plain, q.layers, 1);
    const moves = second.map((d, c) => Math.abs(d - secondBase[c]!));
    // Its error against the FP32 model moves by far more: what the one-pass correction against
    // the FP32 model took a second time.
    const l1 = q.layers[1]!;
    const [fpPlain = [], fpMoved = []] = await Promise.all(
      [q.layers, shifted].map(async (ls) =>
        units((await fp32ErrorMeans(q, ls, target, split, indices))[1]!, l1),
      ),
    );
    const fpMoves = fpMoved.map((u, c) => Math.abs(u - fpPlain[c]!));
    // Measured: moves 1..33 units, the FP32-model error 270..3134 units, on every channel.
    expect(moves.length).toBe(fpMoves.length);
    expect(Math.max(...moves.map((m, c) => m / fpMoves[c]!))).toBeLessThan(0.2);
  });
});

describe('channelDiffSums in parts', () => {
  // 3 samples x 2 channels x 4 values: float32 differences whose float64 sums depend on the
  // order of addition (large and small terms mixed).
  const dims = [3, 2, 4];
  const f = new Float32Array(24).map((_, i) => Math.fround(Math.sin(i * 1.7) * 10 ** (i % 5)));
  const q = new Float32Array(24).map((_, i) => Math.fround(f[i]! + Math.cos(i * 0.3) * 1e-3));
  const t = (data: Float32Array, n: number): TensorData => ({
    type: 'float32',
    dims: [n, ...dims.slice(1)],
    data,
  });

  it('continuing the sums over whole-sample parts gives the bytes of the whole batch', () => {
    const whole = channelDiffSums(t(q, 3), t(f, 3), 1);
    const first = channelDiffSums(t(q.subarray(0, 8), 1), t(f.subarray(0, 8), 1), 1);
    const parts = channelDiffSums(t(q.subarray(8), 2), t(f.subarray(8), 2), 1, first);
    expect(parts).toEqual(whole);
    expect(whole[2]).toBe(12);
    // Per-part sums added afterwards are not the same computation (and need not be equal).
    const second = channelDiffSums(t(q.subarray(8), 2), t(f.subarray(8), 2), 1);
    expect(first[0]! + second[0]!).toBeCloseTo(whole[0]!, 6);
  });

  it('refuses partial sums of another channel count', () => {
    expect(() => channelDiffSums(t(q, 3), t(f, 3), 1, [0, 0, 0, 0])).toThrow(
      /partial sums of 3 channels for 2/,
    );
  });
});
