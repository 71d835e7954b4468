import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../../cli/runtime-node.ts';
import {
  makeAttrInt,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from '../../onnx/builder.ts';
import { tensorToProto } from '../../onnx/tensor.ts';
import { tensor } from '../../tensor/index.ts';
import { fp16BitsToNumber, roundToFp16, toFp16Bits } from '../fp16.ts';
import { createLoweringContext } from './context.ts';
import { lowerFp16Rounding } from './fp16.ts';
import { firstBitDifference, rng, runModel } from './test-support.ts';

beforeAll(() => useNodeRuntime());

/** Seeded float32 values: random bit patterns, fp16 midpoints and their float neighbours,
 * subnormals, ties, overflow, specials. */
function castCorpus(): Float32Array {
  const r = rng(20261125);
  const out: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < 400_000; i++) {
    u[0] = Math.floor(r() * 2 ** 32);
    out.push(f[0]!);
  }
  // every fp16 midpoint (positive and negative, subnormal range included) and +-1 float ulp
  for (let b = 0; b < 0x7c00; b++) {
    const a = fp16BitsToNumber(b);
    const c = b === 0x7bff ? 65536 : fp16BitsToNumber(b + 1);
    f[0] = (a + c) / 2;
    for (const d of [-1, 0, 1]) {
      const g = new Float32Array(1);
      const gu = new Uint32Array(g.buffer);
      gu[0] = u[0]! + d;
      out.push(g[0]!, -g[0]!);
    }
    out.push(a, -a);
  }
  // values around the fp16 range and inside the fp32 subnormal range
  for (let i = 0; i < 20_000; i++) {
    out.push(Math.fround(2 ** (-30 + r() * 50) * (r() < 0.5 ? -1 : 1)));
    out.push(Math.fround(65504 + r() * 64) * (r() < 0.5 ? -1 : 1));
  }
  out.push(0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 1e-45, -1e-45);
  return Float32Array.from(out);
}

describe('onnxruntime-web Cast float -> float16 (the fact the lowering rests on)', () => {
  it('equals toFp16Bits bit for bit on a large seeded set (ties, subnormals, overflow)', async () => {
    const x = castCorpus();
    const model = makeModel(
      makeGraph({
        nodes: [makeNode('Cast', ['x'], ['h'], [makeAttrInt('to', 10)])],
        inputs: [makeTensorValueInfo('x', 'float32', [x.length])],
        outputs: [makeTensorValueInfo('h', 'float16', [x.length])],
      }),
      { opset: 13 },
    );
    const got = (await runModel(model, { x: tensor('float32', [x.length], x) })).h!
      .data as Uint16Array;
    let bad = -1;
    for (let i = 0; i < x.length; i++) {
      const want = toFp16Bits(x[i]!, 'inf');
      // NaN: any quiet NaN pattern is NaN; compare classes only
      if (Number.isNaN(x[i]!)) {
        if ((got[i]! & 0x7c00) !== 0x7c00 || (got[i]! & 0x3ff) === 0) bad = i;
      } else if (got[i] !== want) {
        bad = i;
      }
      if (bad >= 0) break;
    }
    expect(
      bad,
      bad >= 0
        ? `x=${x[bad]} got ${got[bad]?.toString(16)} want ${toFp16Bits(x[bad]!).toString(16)}`
        : '',
    ).toBe(-1);
    expect(x.length).toBeGreaterThan(600_000);
  });
});

describe('onnxruntime-web float16 arithmetic (why every fp16 step is lowered as a Cast pair)', () => {
  it('runs float16 Mul/Add in float32 and drops the float16 roundings between them', async () => {
    // x -> Cast f16 -> Mul c -> Add d -> Cast f32: on a chip each step rounds to fp16. ORT-web
    // 1.30 has no float16 kernels for these: its cast insertion computes the chain in float32
    // and removes the casts, the two written ones included. If this test starts failing, ORT-web
    // keeps float16 roundings on its own and the emulator's fp16 steps could use it.
    const F16 = 10;
    const c = toFp16Bits(0.7998046875, 'inf');
    const d = toFp16Bits(0.3330078125, 'inf');
    const model = makeModel(
      makeGraph({
        nodes: [
          makeNode('Cast', ['x'], ['h'], [makeAttrInt('to', F16)]),
          makeNode('Mul', ['h', 'c'], ['m']),
          makeNode('Add', ['m', 'd'], ['a']),
          makeNode('Cast', ['a'], ['y'], [makeAttrInt('to', 1)]),
        ],
        inputs: [makeTensorValueInfo('x', 'float32', [1000])],
        outputs: [makeTensorValueInfo('y', 'float32', [1000])],
        initializers: [
          tensorToProto('c', tensor('float16', [], new Uint16Array([c]))),
          tensorToProto('d', tensor('float16', [], new Uint16Array([d]))),
        ],
      }),
    );
    const r = rng(7);
    const x = Float32Array.from({ length: 1000 }, () => (r() - 0.5) * 8);
    const y = (await runModel(model, { x: tensor('float32', [1000], x) })).y!.data as Float32Array;
    const [cv, dv] = [fp16BitsToNumber(c), fp16BitsToNumber(d)];
    const float32Chain = x.map((v) => Math.fround(Math.fround(v * cv) + dv));
    const fp16Chain = x.map((v) =>
      roundToFp16(roundToFp16(roundToFp16(v, 'inf') * cv, 'inf') + dv, 'inf'),
    );
    expect(firstBitDifference(y, float32Chain)).toBe(-1);
    // and that is not what fp16 hardware computes: 1,000 of 1,000 outputs differ from it here
    const off = y.filter((v, i) => v !== fp16Chain[i]).length;
    expect(off).toBeGreaterThan(900);
  });
});

describe('lowerFp16Rounding', () => {
  it('equals roundToFp16(x, saturate) bit for bit (NaN -> +0, Inf -> 65504, -0 kept)', async () => {
    const x = castCorpus();
    const ctx = createLoweringContext(['x', 'y']);
    lowerFp16Rounding(ctx, 'x', 'y');
    const model = makeModel(
      makeGraph({
        nodes: ctx.nodes,
        inputs: [makeTensorValueInfo('x', 'float32', [x.length])],
        outputs: [makeTensorValueInfo('y', 'float32', [x.length])],
        initializers: ctx.initializers,
      }),
      { opset: 13 },
    );
    const got = (await runModel(model, { x: tensor('float32', [x.length], x) })).y!
      .data as Float32Array;
    const want = Float32Array.from(x, (v) => roundToFp16(v, 'saturate'));
    const i = firstBitDifference(got, want);
    expect(i, i >= 0 ? `x=${x[i]} got ${got[i]} want ${want[i]}` : '').toBe(-1);
  });

  it("'inf' mode is the plain cast pair", async () => {
    const ctx = createLoweringContext(['x', 'y']);
    lowerFp16Rounding(ctx, 'x', 'y', { overflow: 'inf' });
    expect(ctx.nodes.map((n) => n.opType)).toEqual(['Cast', 'Cast']);
    const x = Float32Array.from([1e6, -70000, 65519, 1 + 2 ** -11, Number.NaN]);
    const model = makeModel(
      makeGraph({
        nodes: ctx.nodes,
        inputs: [makeTensorValueInfo('x', 'float32', [x.length])],
        outputs: [makeTensorValueInfo('y', 'float32', [x.length])],
      }),
      { opset: 13 },
    );
    const got = (await runModel(model, { x: tensor('float32', [x.length], x) })).y!
      .data as Float32Array;
    expect(Array.from(got)).toEqual([Infinity, -Infinity, 65504, 1, Number.NaN]);
  });
});
