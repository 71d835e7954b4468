import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import {
  type ModelProto,
  makeAttrInt,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  tensorToProto,
} from '../onnx/index.ts';
import { seededRandom } from '../onnx/testing.ts';
import { tensor } from '../tensor/index.ts';
import {
  accumulateLayerErrors,
  emptyLayerErrorSums,
  expansionAdd,
  expansionSum,
  finalizeLayerErrors,
  type LayerOutputSpec,
  measureLayerErrors,
  mergeLayerErrorSums,
  observeLayerError,
  resolveChannelAxis,
} from './layer-errors.ts';
import type { BatchSource } from './predict.ts';

/**
 * Two independent layers on x[N,2,2,2]: a 1x1 Conv 'c' (identity weights; the "int8" model
 * scales channel 1 by `convScale`) and Flatten -> Gemm 'g' [N,3] (integer weights; the "int8"
 * model adds `gemmBias` to its bias).
 */
function model(convScale = 1, gemmBias = [0, 0, 0]): ModelProto {
  const w = new Float32Array([1, 0, 0, convScale]);
  const gw = new Float32Array(24).map((_, i) => ((i * 7) % 5) - 2);
  return makeModel(
    makeGraph({
      nodes: [
        makeNode('Conv', ['x', 'w'], ['c'], [], { name: 'conv' }),
        makeNode('Relu', ['c'], ['r']),
        makeNode('Flatten', ['x'], ['f'], [makeAttrInt('axis', 1)]),
        makeNode('Gemm', ['f', 'gw', 'gb'], ['g'], [makeAttrInt('transB', 1)], { name: 'fc' }),
      ],
      inputs: [makeTensorValueInfo('x', 'float32', ['N', 2, 2, 2])],
      outputs: [
        makeTensorValueInfo('r', 'float32', ['N', 2, 2, 2]),
        makeTensorValueInfo('g', 'float32', ['N', 3]),
      ],
      initializers: [
        tensorToProto('w', tensor('float32', [2, 2, 1, 1], w)),
        tensorToProto('gw', tensor('float32', [3, 8], gw)),
        tensorToProto('gb', tensor('float32', [3], Float32Array.from(gemmBias))),
      ],
    }),
  );
}

/** `n` samples of x[2,2,2]: dyadic values k/8 (exact everywhere) or arbitrary floats. */
function source(n: number, seed: number, dyadic: boolean): BatchSource & { x: Float32Array } {
  const rand = seededRandom(seed);
  const x = new Float32Array(n * 8).map(() =>
    dyadic ? Math.floor(rand() * 33 - 16) / 8 : (rand() - 0.5) * 3.7,
  );
  return {
    size: n,
    x,
    batch: (s, e) => ({ x: tensor('float32', [e - s, 2, 2, 2], x.slice(s * 8, e * 8)) }),
  };
}

const LAYERS: LayerOutputSpec[] = [
  { name: 'conv', output: 'c' },
  { name: 'fc', output: 'g' },
];
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('exact summation', () => {
  it('fsum-style expansions round the exact sum correctly, in any order', () => {
    const p: number[] = [];
    for (let i = 0; i < 10; i++) expansionAdd(p, 0.1);
    expect(expansionSum(p)).toBe(1);
    const rand = seededRandom(3);
    const xs = Array.from({ length: 2000 }, () => rand() ** 8 * 10 ** Math.floor(rand() * 12));
    const a: number[] = [];
    for (const x of xs) expansionAdd(a, x);
    const b: number[] = [];
    for (const x of [...xs].reverse()) expansionAdd(b, x);
    expect(expansionSum(a)).toBe(expansionSum(b));
    expect(expansionSum([])).toBe(0);
  });
});

describe('channel axis', () => {
  it('defaults to 1 for rank 4, last axis otherwise, accepts negative axes', () => {
    expect(resolveChannelAxis(4)).toBe(1);
    expect(resolveChannelAxis(2)).toBe(1);
    expect(resolveChannelAxis(3)).toBe(2);
    expect(resolveChannelAxis(4, -1)).toBe(3);
    expect(() => resolveChannelAxis(2, 2)).toThrow(RangeError);
  });
});

describe('observeLayerError (no runtime)', () => {
  it('computes per-channel figures on the last axis and counts non-finite values', () => {
    const spec = { name: 'mm', output: 'y' };
    const s = emptyLayerErrorSums(spec);
    // [2 samples, 2 channels]: channel 0 exact, channel 1 off by 1 on a reference of 3 and 4.
    const ref = tensor('float32', [2, 2], new Float32Array([1, 3, 2, 4]));
    const q = tensor('float32', [2, 2], new Float32Array([1, 4, 2, 3]));
    observeLayerError(s, spec, ref, q);
    observeLayerError(
      s,
      spec,
      tensor('float32', [1, 2], new Float32Array([Number.NaN, 0])),
      tensor('float32', [1, 2], new Float32Array([0, 0])),
    );
    const r = finalizeLayerErrors([s]);
    const l = r.layers[0]!;
    expect(l.samples).toBe(3);
    expect(l.elements).toBe(5);
    expect(l.nonFinite).toBe(1);
    expect(l.aboveThreshold).toBe(true); // a NaN always flags the layer
    expect(l.perChannel[0]).toEqual({ relativeError: 0, sqnrDb: null, maxAbsError: 0 });
    expect(l.perChannel[1]!.relativeError).toBeCloseTo(Math.sqrt(2 / 25), 15);
    expect(l.perChannel[1]!.sqnrDb).toBeCloseTo(10 * Math.log10(25 / 2), 12);
    expect(l.relativeError).toBeCloseTo(Math.sqrt(2 / 30), 15);
    expect(l.maxAbsError).toBe(1);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('marks a zero reference with a nonzero error as undefined (null) and flags it', () => {
    const spec = { name: 'dead', output: 'y' };
    const s = emptyLayerErrorSums(spec);
    observeLayerError(
      s,
      spec,
      tensor('float32', [1, 2], new Float32Array([0, 1])),
      tensor('float32', [1, 2], new Float32Array([0.5, 1])),
    );
    const l = finalizeLayerErrors([s]).layers[0]!;
    expect(l.perChannel[0]).toEqual({ relativeError: null, sqnrDb: null, maxAbsError: 0.5 });
    expect(l.channelsAboveThreshold).toBe(1);
    expect(l.relativeError).toBe(0.5);
  });

  it('rejects shape and type mismatches', () => {
    const spec = { name: 'a', output: 'y' };
    const s = emptyLayerErrorSums(spec);
    const a = tensor('float32', [1, 2], new Float32Array(2));
    expect(() =>
      observeLayerError(s, spec, a, tensor('float32', [2, 1], new Float32Array(2))),
    ).toThrow(RangeError);
    expect(() => observeLayerError(s, spec, a, tensor('int8', [1, 2], new Int8Array(2)))).toThrow(
      TypeError,
    );
  });
});

describe('measureLayerErrors (onnxruntime-web)', () => {
  beforeAll(() => useNodeRuntime());

  it('identical models: relative error 0, SQNR null (infinite), nothing flagged', async () => {
    const src = source(10, 1, false);
    const r = await measureLayerErrors(model(), model(), LAYERS, src, {
      indices: range(0, 10),
      batchSize: 4,
    });
    expect(r.samples).toBe(10);
    expect(r.flagged).toEqual([]);
    for (const l of r.layers) {
      expect(l.relativeError).toBe(0);
      expect(l.sqnrDb).toBeNull();
      expect(l.maxAbsError).toBe(0);
      expect(l.perChannel.every((c) => c.relativeError === 0)).toBe(true);
    }
    expect(r.layers.map((l) => [l.channelAxis, l.perChannel.length])).toEqual([
      [1, 2],
      [1, 3],
    ]);
  });

  it('a known perturbation gives the hand-computed SQNR and relative error', async () => {
    const n = 12;
    const src = source(n, 2, true);
    const delta = 2 ** -6;
    const r = await measureLayerErrors(model(), model(1.25, [0, delta, 0]), LAYERS, src, {
      indices: range(0, n),
      batchSize: 5,
    });
    // conv: channel 1 of the output is x[:,1] (identity), perturbed by 0.25 * x[:,1].
    let e0 = 0;
    let e1 = 0;
    let maxX1 = 0;
    for (let s = 0; s < n; s++) {
      for (let k = 0; k < 4; k++) {
        e0 += src.x[s * 8 + k]! ** 2;
        e1 += src.x[s * 8 + 4 + k]! ** 2;
        maxX1 = Math.max(maxX1, Math.abs(src.x[s * 8 + 4 + k]!));
      }
    }
    const conv = r.layers[0]!;
    expect(conv.perChannel[0]).toEqual({ relativeError: 0, sqnrDb: null, maxAbsError: 0 });
    expect(conv.perChannel[1]!.relativeError).toBe(0.25);
    expect(conv.perChannel[1]!.sqnrDb).toBeCloseTo(-20 * Math.log10(0.25), 12); // 12.04 dB
    expect(conv.relativeError).toBeCloseTo(0.25 * Math.sqrt(e1 / (e0 + e1)), 14);
    expect(conv.sqnrDb).toBeCloseTo(10 * Math.log10((e0 + e1) / (0.0625 * e1)), 12);
    expect(conv.maxAbsError).toBe(0.25 * maxX1);
    expect(conv.aboveThreshold).toBe(true);
    expect(conv.channelsAboveThreshold).toBe(1);

    // fc: every sample of channel 1 is off by exactly delta.
    const gw = Array.from({ length: 24 }, (_, i) => ((i * 7) % 5) - 2);
    const g = (s: number, o: number) =>
      range(0, 8).reduce((acc, k) => acc + gw[o * 8 + k]! * src.x[s * 8 + k]!, 0);
    const ref1 = range(0, n).reduce((acc, s) => acc + g(s, 1) ** 2, 0);
    const refAll = range(0, n).reduce(
      (acc, s) => acc + g(s, 0) ** 2 + g(s, 1) ** 2 + g(s, 2) ** 2,
      0,
    );
    const fc = r.layers[1]!;
    expect(fc.perChannel[1]!.relativeError).toBeCloseTo(Math.sqrt((n * delta ** 2) / ref1), 14);
    expect(fc.relativeError).toBeCloseTo(Math.sqrt((n * delta ** 2) / refAll), 14);
    expect(fc.maxAbsError).toBe(delta);
    expect(fc.relativeError!).toBeLessThan(0.05);
    expect(fc.aboveThreshold).toBe(false);
    expect(r.flagged).toEqual(['conv']);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('1 shard and 3 shards (merged in shard order) agree exactly', async () => {
    const n = 30;
    const src = source(n, 7, false);
    const fp32 = model();
    const int8 = model(1.0078125, [0.01, -0.003, 0.02]);
    const one = await accumulateLayerErrors(fp32, int8, LAYERS, src, {
      indices: range(0, n),
      batchSize: 5,
    });
    const shards = await Promise.all(
      [range(0, 10), range(10, 20), range(20, 30)].map((indices) =>
        accumulateLayerErrors(fp32, int8, LAYERS, src, { indices, batchSize: 5 }),
      ),
    );
    const whole = finalizeLayerErrors(one);
    const merged = finalizeLayerErrors(mergeLayerErrorSums(shards));
    expect(merged).toEqual(whole);
    // The brief's tolerance, stated explicitly: 1e-12 relative.
    for (const [i, l] of merged.layers.entries()) {
      const w = whole.layers[i]!;
      expect(Math.abs(l.relativeError! - w.relativeError!)).toBeLessThanOrEqual(
        1e-12 * w.relativeError!,
      );
    }
    // Sums survive JSON (what shards send to the merger).
    const viaJson = JSON.parse(JSON.stringify(shards)) as typeof shards;
    expect(finalizeLayerErrors(mergeLayerErrorSums(viaJson))).toEqual(whole);
    // Reversed shard order: same finalized numbers (the merge is exact).
    expect(finalizeLayerErrors(mergeLayerErrorSums([...shards].reverse()))).toEqual(whole);
    // An empty shard merges as a no-op.
    const empty = await accumulateLayerErrors(fp32, int8, LAYERS, src, { indices: [] });
    expect(finalizeLayerErrors(mergeLayerErrorSums([empty, ...shards]))).toEqual(whole);
  });

  it('honours a custom threshold', async () => {
    const src = source(6, 4, true);
    const r = await measureLayerErrors(
      model(),
      model(1.25, [0, 2 ** -6, 0]),
      LAYERS,
      src,
      { indices: range(0, 6) },
      { threshold: 0.5 },
    );
    expect(r.threshold).toBe(0.5);
    expect(r.flagged).toEqual([]);
  });
});
