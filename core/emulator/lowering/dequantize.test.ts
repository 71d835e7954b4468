import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../../cli/runtime-node.ts';
import { makeGraph, makeModel, makeTensorValueInfo } from '../../onnx/builder.ts';
import { tensor } from '../../tensor/index.ts';
import { ascendDequantV100Value, ascendDequantV200Value } from '../ascend-dequant.ts';
import { fp16BitsToNumber, roundToFp16, toFp16Bits } from '../fp16.ts';
import { dequantFp32Value } from '../fp32-reference.ts';
import { createLoweringContext, type LoweringContext } from './context.ts';
import { lowerDequantFp32, lowerDequantV100, lowerDequantV200 } from './dequantize.ts';
import { firstBitDifference, rng, runModel } from './test-support.ts';

beforeAll(() => useNodeRuntime());

const C = 16;

/** fp16 deq_scales: subnormal, tiny, ordinary, and the documented examples. */
function deqScales(r: () => number): number[] {
  const d = [2 ** -24, 1007 * 2 ** -24, 1 - 2 ** -10, roundToFp16(0.1), 0];
  while (d.length < C) {
    const bits = 0x0001 + Math.floor(r() * 0x3c00); // (0, 1]
    d.push(fp16BitsToNumber(bits));
  }
  return d;
}

/** Accumulators: random over all magnitudes, and aimed at fp16 midpoints of acc * d. */
function accumulators(r: () => number, d: number[], rows: number): Int32Array {
  const acc = new Int32Array(rows * C);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < C; c++) {
      let a: number;
      const pick = r();
      if (pick < 0.4 || d[c] === 0) {
        a = Math.floor((r() - 0.5) * 2 ** (1 + Math.floor(r() * 31)));
      } else {
        // a midpoint M between adjacent fp16 values, then acc ~ M / d
        const bits = Math.floor(r() * 0x7bff);
        const m = (fp16BitsToNumber(bits) + fp16BitsToNumber(bits + 1)) / 2;
        a = Math.round(m / d[c]!) + Math.floor(r() * 3) - 1;
        if (r() < 0.5) a = -a;
      }
      acc[i * C + c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, a));
    }
  }
  acc.set([0, 2049, 2 ** 31 - 1, -(2 ** 31), 100003, -100003, 7, -1], 0);
  return acc;
}

async function run(
  build: (ctx: LoweringContext) => void,
  acc: Int32Array,
  rows: number,
): Promise<Float32Array> {
  const ctx = createLoweringContext(['acc', 'y']);
  build(ctx);
  const model = makeModel(
    makeGraph({
      nodes: ctx.nodes,
      inputs: [makeTensorValueInfo('acc', 'int32', [rows, C])],
      outputs: [makeTensorValueInfo('y', 'float32', [rows, C])],
      initializers: ctx.initializers,
    }),
    { opset: 13 },
  );
  const out = await runModel(model, { acc: tensor('int32', [rows, C], acc) });
  return out.y!.data as Float32Array;
}

function expectSame(got: Float32Array, want: Float32Array, acc: Int32Array, d: ArrayLike<number>) {
  const i = firstBitDifference(got, want);
  const msg = i >= 0 ? `acc=${acc[i]} d=${d[i % C]} got ${got[i]} want ${want[i]}` : '';
  expect(i, msg).toBe(-1);
}

describe('lowerDequantV100', () => {
  const r = rng(7);
  const d = deqScales(r);
  const rows = 8000;
  const acc = accumulators(r, d, rows);

  it("'fused' equals ascendDequantV100Value bit for bit, on accumulators aimed at fp16 midpoints", async () => {
    const got = await run(
      (ctx) => lowerDequantV100(ctx, 'acc', { values: d, shape: [C] }, 'fused', 'dq', 'y'),
      acc,
      rows,
    );
    const want = Float32Array.from(acc, (a, i) => ascendDequantV100Value(a, d[i % C]!));
    expectSame(got, want, acc, d);
    // The test set really is adversarial: the plain double -> float -> float16 chain (double
    // rounding) disagrees with the reference on many of these accumulators.
    let doubleRounded = 0;
    acc.forEach((a, i) => {
      const p = a * d[i % C]!;
      if (Math.abs(p) < 65504 && toFp16Bits(Math.fround(p)) !== toFp16Bits(p)) doubleRounded++;
    });
    expect(doubleRounded).toBeGreaterThan(100);
    // the documented example: acc = 2049, d = 1 - 2^-10 -> 2047 (fused)
    expect(got[1]).toBe(ascendDequantV100Value(2049, d[1]!));
  });

  it("'cast-then-mul' equals the reference reading bit for bit", async () => {
    const got = await run(
      (ctx) => lowerDequantV100(ctx, 'acc', { values: d, shape: [C] }, 'cast-then-mul', 'dq', 'y'),
      acc,
      rows,
    );
    const want = Float32Array.from(acc, (a, i) =>
      ascendDequantV100Value(a, d[i % C]!, { reading: 'cast-then-mul' }),
    );
    expectSame(got, want, acc, d);
  });
});

describe('lowerDequantV200 and lowerDequantFp32', () => {
  const r = rng(11);
  const s = Array.from({ length: C }, (_, c) =>
    c === 0 ? 9591662 * 2 ** -26 : Math.fround(2 ** (-20 + r() * 20) * (1 + r())),
  );
  const rows = 4000;
  const acc = accumulators(r, s, rows);
  acc[0] = 7; // the documented double-rounding example of the v200 'fp32' reading

  it('v200 equals ascendDequantV200Value (fp32 product, then fp16) bit for bit', async () => {
    const got = await run(
      (ctx) => lowerDequantV200(ctx, 'acc', { values: s, shape: [C] }, 'dq', 'y'),
      acc,
      rows,
    );
    const want = Float32Array.from(acc, (a, i) => ascendDequantV200Value(a, s[i % C]!));
    expectSame(got, want, acc, s);
  });

  it('fp32 equals fp32(fp32(acc) * s) bit for bit', async () => {
    const got = await run(
      (ctx) => lowerDequantFp32(ctx, 'acc', { values: s, shape: [C] }, 'dq', 'y'),
      acc,
      rows,
    );
    const want = Float32Array.from(acc, (a, i) => dequantFp32Value(a, s[i % C]!));
    expectSame(got, want, acc, s);
  });
});
