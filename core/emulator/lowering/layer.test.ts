import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../../cli/runtime-node.ts';
import type { QuantizedLayer } from '../../quantize/layer.ts';
import { type TensorData, tensor } from '../../tensor/index.ts';
import { type ReferenceLayerOptions, referenceLayer } from '../reference-layer.ts';
import { createLoweringContext } from './context.ts';
import { lowerLayer } from './layer.ts';
import { buildLayerModel } from './model.ts';
import type { LoweredTargetId } from './scales.ts';
import {
  adversarialInput,
  firstBitDifference,
  type LayerShape,
  type RandomLayerOptions,
  randomLayer,
  rng,
  runModel,
} from './test-support.ts';

beforeAll(() => useNodeRuntime());

const SHAPES: Record<string, LayerShape> = {
  'conv 3x3 pad 1': {
    kind: 'conv',
    n: 2,
    cin: 8,
    cout: 6,
    h: 9,
    w: 9,
    k: 3,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
    group: 1,
  },
  'conv strided, asymmetric pads, dilation 2': {
    kind: 'conv',
    n: 1,
    cin: 4,
    cout: 8,
    h: 12,
    w: 11,
    k: 3,
    strides: [2, 2],
    pads: [0, 2, 1, 1],
    dilations: [2, 2],
    group: 1,
  },
  'depthwise 3x3 pad 1': {
    kind: 'conv',
    n: 1,
    cin: 8,
    cout: 8,
    h: 10,
    w: 10,
    k: 3,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
    group: 8,
  },
  'grouped conv (4 groups)': {
    kind: 'conv',
    n: 1,
    cin: 8,
    cout: 12,
    h: 7,
    w: 7,
    k: 3,
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
    group: 4,
  },
  gemm: { kind: 'gemm', m: 9, k: 40, n: 7 },
  'matmul right, 3-D input': { kind: 'matmul-right', batch: 2, l: 5, k: 24, n: 6 },
  'matmul left, 3-D input': { kind: 'matmul-left', batch: 2, m: 6, k: 20, n: 5 },
  'matmul left, 2-D input': { kind: 'matmul-left', batch: 0, m: 4, k: 12, n: 9 },
};

const TARGETS: LoweredTargetId[] = ['ascend310', 'ascend310p', 'nvidia-t4', 'snapdragon'];

async function expectBitExact(
  layer: QuantizedLayer,
  input: TensorData<'float32'>,
  options: ReferenceLayerOptions = {},
): Promise<void> {
  const want = referenceLayer(layer, input, options);
  // both graphs: the integer kernels, and the `fast` one (float accumulation where exact)
  for (const fast of [false, true]) {
    const { model } = buildLayerModel(layer, input.dims, {
      dequantReading: options.dequantReading,
      fast,
    });
    const out = await runModel(model, { [layer.input]: input });
    const got = out[layer.output]!.data as Float32Array;
    const i = firstBitDifference(got, want.data);
    expect(got.length).toBe(want.data.length);
    expect(i, i >= 0 ? `fast ${fast}, element ${i}: got ${got[i]} want ${want.data[i]}` : '').toBe(
      -1,
    );
  }
}

function inputFor(seed: number, layer: QuantizedLayer, dims: number[]): TensorData<'float32'> {
  const n = dims.reduce((a, b) => a * b, 1);
  return tensor('float32', dims, adversarialInput(rng(seed), layer, n));
}

describe('lowerLayer equals referenceLayer bit for bit', () => {
  let seed = 1000;
  for (const target of TARGETS) {
    for (const [label, shape] of Object.entries(SHAPES)) {
      const s = seed++;
      it(`${target}: ${label}`, async () => {
        const r = rng(s);
        const { layer, inputDims } = randomLayer(r, target, shape);
        await expectBitExact(layer, inputFor(s, layer, inputDims));
      });
    }
    it(`${target}: power-of-two activation scale (exact .5 quantization ties), fused ReLU`, async () => {
      const r = rng(seed++);
      const opts: RandomLayerOptions = { actScale: 2 ** -4, fusedRelu: true };
      const { layer, inputDims } = randomLayer(r, target, SHAPES['conv 3x3 pad 1']!, opts);
      await expectBitExact(layer, inputFor(seed, layer, inputDims));
    });
    it(`${target}: large accumulators (K = 1536, extreme weights, saturated inputs)`, async () => {
      const r = rng(seed++);
      const shape: LayerShape = { kind: 'gemm', m: 8, k: 1536, n: 6 };
      const { layer, inputDims } = randomLayer(r, target, shape, { extremeWeights: true });
      const input = inputFor(seed, layer, inputDims);
      // half of the rows saturate at the top of the range: |acc| > 2^24
      for (let i = 0; i < input.data.length / 2; i++) input.data[i] = 1e3;
      await expectBitExact(layer, input);
    });
  }

  it("ascend310: 'cast-then-mul' dequant switch, with and without fused ReLU", async () => {
    for (const fusedRelu of [false, true]) {
      const r = rng(77 + Number(fusedRelu));
      const { layer, inputDims } = randomLayer(r, 'ascend310', SHAPES['conv 3x3 pad 1']!, {
        fusedRelu,
      });
      await expectBitExact(layer, inputFor(78, layer, inputDims), {
        dequantReading: 'cast-then-mul',
      });
    }
  });

  it('ascend310: tiny activation scale (sqrt_mode AscendQuant), zero and subnormal deq_scale', async () => {
    for (const weightStd of [1e-4, 1]) {
      const r = rng(91);
      const { layer, inputDims } = randomLayer(r, 'ascend310', SHAPES.gemm!, {
        clip: { lo: -1e-3, hi: 2e-3 },
        weightStd,
      });
      const input = inputFor(92, layer, inputDims);
      for (let i = 0; i < input.data.length; i++)
        input.data[i] = Math.fround(input.data[i]! * 1e-3);
      await expectBitExact(layer, input);
    }
  });

  it('fp32 targets with fusedRelu set (ReLU on the accumulator gives +0)', async () => {
    for (const target of ['nvidia-t4', 'snapdragon'] as const) {
      const r = rng(5);
      const { layer, inputDims } = randomLayer(r, target, SHAPES['matmul right, 3-D input']!, {
        fusedRelu: true,
      });
      await expectBitExact(layer, inputFor(6, layer, inputDims));
    }
  });
});

describe('lowerLayer', () => {
  it('throws a clear error for cpu-wasm', () => {
    const { layer } = randomLayer(rng(1), 'nvidia-t4', SHAPES.gemm!);
    const ctx = createLoweringContext();
    expect(() => lowerLayer(ctx, { ...layer, target: 'cpu-wasm' })).toThrow(
      /cpu-wasm is not lowered/,
    );
  });

  it('emits one integer kernel and no float16 arithmetic', () => {
    for (const target of TARGETS) {
      const { layer } = randomLayer(rng(2), target, SHAPES['conv 3x3 pad 1']!, { fusedRelu: true });
      const ctx = createLoweringContext(['x', 'y']);
      lowerLayer(ctx, layer);
      const ops = ctx.nodes.map((n) => n.opType);
      expect(ops.filter((o) => o === 'ConvInteger')).toHaveLength(1);
      expect(ops.filter((o) => o === 'MatMulInteger')).toHaveLength(0);
      expect(ops.length).toBeLessThanOrEqual(24);
    }
  });

  it('fast: depthwise convolutions accumulate on a float Conv, dense ones on ConvInteger', () => {
    for (const target of TARGETS) {
      const ops = (shape: LayerShape) => {
        const { layer } = randomLayer(rng(4), target, shape, { fusedRelu: true });
        const ctx = createLoweringContext(['x', 'y']);
        lowerLayer(ctx, layer, { fast: true });
        return ctx.nodes.map((n) => n.opType);
      };
      const dw = ops(SHAPES['depthwise 3x3 pad 1']!);
      expect(dw.filter((o) => o === 'Conv')).toHaveLength(1);
      expect(dw).not.toContain('ConvInteger');
      expect(ops(SHAPES['conv 3x3 pad 1']!)).toContain('ConvInteger');
    }
  });

  it('fast: the saturation Clip goes where the accumulator bound excludes overflow, only there', () => {
    const clips = (layer: QuantizedLayer, fast: boolean) => {
      const ctx = createLoweringContext(['x', 'y']);
      lowerLayer(ctx, layer, { fast, inputIsFp16: true });
      return ctx.nodes.filter((n) => n.opType === 'Clip').length;
    };
    const small = randomLayer(rng(2), 'ascend310', SHAPES['conv 3x3 pad 1']!).layer;
    expect(clips(small, false)).toBe(1);
    expect(clips(small, true)).toBe(0);
    const big = randomLayer(
      rng(3),
      'ascend310',
      { kind: 'gemm', m: 8, k: 1536, n: 6 },
      {
        extremeWeights: true,
      },
    ).layer;
    // deq_scale 1 (activation and weight scales 1): the bound K * 127 * 255 is far above 65520
    const unit = {
      ...big,
      act: { ...big.act, scale: 1 },
      weight: { ...big.weight, scales: big.weight.scales.map(() => 1) },
    };
    expect(clips(unit, true)).toBe(1);
  });
});
