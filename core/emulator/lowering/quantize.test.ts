import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../../cli/runtime-node.ts';
import { makeGraph, makeModel, makeTensorValueInfo } from '../../onnx/builder.ts';
import type { QuantizedLayer } from '../../quantize/layer.ts';
import { tensor } from '../../tensor/index.ts';
import { ascendQuantValue, makeAscendQuantParams } from '../ascend-quant.ts';
import { quantizeLinearValue } from '../fp32-reference.ts';
import { createLoweringContext } from './context.ts';
import { lowerAscendQuant, lowerQuantizeLinear } from './quantize.ts';
import { adversarialInput, rng, runModel } from './test-support.ts';

beforeAll(() => useNodeRuntime());

const N = 30_000;

async function runQuant(
  build: (ctx: ReturnType<typeof createLoweringContext>) => string,
  x: Float32Array,
): Promise<ArrayLike<number>> {
  const ctx = createLoweringContext(['x']);
  const q = build(ctx);
  const model = makeModel(
    makeGraph({
      nodes: ctx.nodes,
      inputs: [makeTensorValueInfo('x', 'float32', [x.length])],
      outputs: [makeTensorValueInfo(q, 'int8')],
      initializers: ctx.initializers,
    }),
    { opset: 13 },
  );
  const out = await runModel(model, { x: tensor('float32', [x.length], x) });
  return out[q]!.data as Int8Array;
}

function fakeLayer(scale: number, zeroPoint: number): QuantizedLayer {
  return { act: { scale, zeroPoint, qmin: -128, qmax: 127 } } as QuantizedLayer;
}

describe('lowerAscendQuant', () => {
  // scale_d: ordinary, power of two (exact .5 ties), tiny (sqrt_mode), subnormal-ish scale
  const cases: [number, number][] = [
    [0.0317, 0],
    [0.0317, -17],
    [2 ** -4, 5],
    [2 ** -7, -128],
    [0.75, 127],
    [1e-5, 3], // 1/scale_d does not fit fp16 -> sqrt_mode
    [3000, 0], // scale 1/3000 is subnormal in fp16
    [0.1, 0],
  ];
  for (const [scaleD, offset] of cases) {
    it(`equals ascendQuantValue bit for bit (scale_d ${scaleD}, offset ${offset})`, async () => {
      const p = makeAscendQuantParams(scaleD, offset);
      const x = adversarialInput(
        rng(Math.round(scaleD * 1e6) + offset),
        fakeLayer(scaleD, offset),
        N,
      );
      const got = await runQuant((ctx) => lowerAscendQuant(ctx, 'x', p, 'q'), x);
      let bad = -1;
      for (let i = 0; i < N && bad < 0; i++) if (got[i] !== ascendQuantValue(x[i]!, p)) bad = i;
      expect(
        bad,
        bad >= 0 ? `x=${x[bad]} got ${got[bad]} want ${ascendQuantValue(x[bad]!, p)}` : '',
      ).toBe(-1);
    });
  }
});

describe('lowerAscendQuant uint8 output', () => {
  it('returns q + 128 exactly', async () => {
    const p = makeAscendQuantParams(0.0317, -17);
    const x = adversarialInput(rng(5), fakeLayer(0.0317, -17), N);
    const ctx = createLoweringContext(['x']);
    const q = lowerAscendQuant(ctx, 'x', p, 'q', { output: 'uint8' });
    const model = makeModel(
      makeGraph({
        nodes: ctx.nodes,
        inputs: [makeTensorValueInfo('x', 'float32', [N])],
        outputs: [makeTensorValueInfo(q, 'uint8')],
        initializers: ctx.initializers,
      }),
      { opset: 13 },
    );
    const got = (await runModel(model, { x: tensor('float32', [N], x) }))[q]!.data;
    let bad = -1;
    for (let i = 0; i < N && bad < 0; i++) if (got[i] !== ascendQuantValue(x[i]!, p) + 128) bad = i;
    expect(bad).toBe(-1);
  });
});

describe('lowerQuantizeLinear', () => {
  for (const [scale, zp, type] of [
    [0.0317, 0, 'int8'],
    [2 ** -4, 0, 'int8'],
    [0.02, 131, 'uint8'],
    [2 ** -5, 7, 'uint8'],
  ] as const) {
    it(`equals quantizeLinearValue bit for bit (${scale}, ${zp}, ${type})`, async () => {
      const x = adversarialInput(rng(zp + 99), fakeLayer(scale, zp), N);
      const ctx = createLoweringContext(['x']);
      const q = lowerQuantizeLinear(ctx, 'x', scale, zp, type, 'q');
      const model = makeModel(
        makeGraph({
          nodes: ctx.nodes,
          inputs: [makeTensorValueInfo('x', 'float32', [N])],
          outputs: [makeTensorValueInfo(q, type)],
          initializers: ctx.initializers,
        }),
        { opset: 13 },
      );
      const got = (await runModel(model, { x: tensor('float32', [N], x) }))[q]!.data;
      const s = Math.fround(scale);
      let bad = -1;
      for (let i = 0; i < N && bad < 0; i++)
        if (got[i] !== quantizeLinearValue(x[i]!, s, zp, type)) bad = i;
      expect(
        bad,
        bad >= 0
          ? `x=${x[bad]} got ${got[bad]} want ${quantizeLinearValue(x[bad]!, s, zp, type)}`
          : '',
      ).toBe(-1);
    });
  }
});
