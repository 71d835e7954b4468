/**
 * core/runtime in Node (cli/runtime-node.ts adapter). The fixture checks are shared with
 * test/workers/runtime.test.ts: both compare against the same committed digests.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ortWasmPath,
  tuneWasmTiering,
  useNodeRuntime,
  WASM_TIERING_BUDGET,
} from '../../cli/runtime-node.ts';
import { createSession, getRuntimeInfo, type ModelSession } from '../../core/runtime/index.ts';
import { tensor } from '../../core/tensor/index.ts';
import {
  CAST_F16_BITS,
  CAST_F32_BITS,
  CONV,
  CONVNET_LOGITS_OPTIMIZED_SHA256,
  CONVNET_LOGITS_SHA256,
  CONVNET_OUTPUT_DIMS,
  float32Bits,
  float32s,
  MATMUL,
  type RuntimeFixtureFiles,
  runCast,
  runConvInteger,
  runConvnet,
  runMatMulInteger,
  sha256Hex,
} from '../fixtures/runtime/fixtures.ts';

const dir = fileURLToPath(new URL('../fixtures/runtime/', import.meta.url));
const read = (name: string) => new Uint8Array(readFileSync(dir + name));

const files: RuntimeFixtureFiles = {
  convnet: read('convnet.onnx'),
  convnetInput: read('convnet.input.bin'),
  convnetTorch: read('convnet.torch.bin'),
  castF16: read('cast_f16.onnx'),
  matmulInteger: read('matmulinteger.onnx'),
  convInteger: read('convinteger.onnx'),
};

let convnet: ModelSession;

// ORT is loaded in this file's worker for the first time: any fetch during load/init would be
// a network access (the Node loader hands ORT the .wasm bytes, so there must be none).
const fetchSpy = vi.fn(() => Promise.reject(new Error('network access during ORT load')));

beforeAll(async () => {
  vi.stubGlobal('fetch', fetchSpy);
  useNodeRuntime();
  const t0 = performance.now();
  convnet = await createSession(files.convnet);
  console.info(
    `node: first createSession (ORT init + convnet) ${(performance.now() - t0).toFixed(0)} ms`,
  );
});

afterAll(() => {
  vi.unstubAllGlobals();
});

describe('core/runtime in Node', () => {
  it('uses the Node loader, single-threaded, without the network', async () => {
    const info = await getRuntimeInfo();
    expect(info).toMatchObject({ loader: 'node', ortVersion: '1.30.0', numThreads: 1 });
    expect(ortWasmPath()).toMatch(/onnxruntime-web\/dist\/ort-wasm-simd-threaded\.wasm$/);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('names the inputs and outputs', () => {
    expect(convnet.inputNames).toEqual(['input']);
    expect(convnet.outputNames).toEqual(['logits']);
  });

  it('computes the committed convnet digest (bit-identical to workerd)', async () => {
    const logits = await runConvnet(convnet, files);
    expect(logits.type).toBe('float32');
    expect(logits.dims).toEqual(CONVNET_OUTPUT_DIMS);
    expect(await sha256Hex(logits.data)).toBe(CONVNET_LOGITS_SHA256);
    // Runs are reproducible within a session too.
    expect(await sha256Hex((await runConvnet(convnet, files)).data)).toBe(CONVNET_LOGITS_SHA256);
  });

  it('agrees with torch to float rounding', async () => {
    const logits = (await runConvnet(convnet, files)).data as Float32Array;
    const ref = float32s(files.convnetTorch);
    expect(logits.length).toBe(ref.length);
    for (let i = 0; i < ref.length; i++)
      expect(Math.abs((logits[i] ?? 0) - (ref[i] ?? 0))).toBeLessThan(1e-5);
  });

  it.each(['basic', 'extended', 'all'] as const)(
    'graph optimisation %s: the optimised digest',
    async (level) => {
      const s = await createSession(files.convnet, { graphOptimizationLevel: level });
      expect(await sha256Hex((await runConvnet(s, files)).data)).toBe(
        CONVNET_LOGITS_OPTIMIZED_SHA256,
      );
      await s.release();
    },
  );

  it('round-trips float -> float16 -> float exactly (raw half bits)', async () => {
    const s = await createSession(files.castF16);
    const { y16, y32, h32 } = await runCast(s);
    expect(y16.type).toBe('float16');
    expect(y16.data).toBeInstanceOf(Uint16Array);
    expect([...y16.data]).toEqual([...CAST_F16_BITS]);
    expect(y32.type).toBe('float32');
    expect(float32Bits(y32)).toEqual([...CAST_F32_BITS]);
    // float16 feeds are raw Uint16 bits too.
    expect(float32Bits(h32)).toEqual([...CAST_F32_BITS]);
    await s.release();
  });

  it('MatMulInteger (uint8 x int8, zero points) is exact', async () => {
    const s = await createSession(files.matmulInteger);
    const y = await runMatMulInteger(s);
    expect(y.type).toBe('int32');
    expect(y.dims).toEqual([3, 5]);
    expect([...y.data]).toEqual([...MATMUL.Y]);
    await s.release();
  });

  it('ConvInteger (uint8, padding, zero point) is exact', async () => {
    const s = await createSession(files.convInteger);
    const y = await runConvInteger(s);
    expect(y.type).toBe('int32');
    expect(y.dims).toEqual([1, 2, 5, 5]);
    expect([...y.data]).toEqual([...CONV.Y]);
    await s.release();
  });

  it('fetches a subset of outputs', async () => {
    const s = await createSession(files.castF16);
    const out = await s.run(
      {
        x: tensor('float32', [2], new Float32Array([1, 2])),
        h: tensor('float16', [1], new Uint16Array([15360])),
      },
      ['y32'],
    );
    expect(Object.keys(out)).toEqual(['y32']);
    await s.release();
  });

  it('rejects bad feeds with clear TypeError / RangeError', async () => {
    const x = tensor('float32', [2, 3, 8, 8], new Float32Array(384));
    await expect(convnet.run({ inputs: x })).rejects.toThrow(TypeError);
    await expect(convnet.run({ inputs: x })).rejects.toThrow(
      /unknown input 'inputs'.*model inputs: input/,
    );
    await expect(convnet.run({})).rejects.toThrow(/missing input 'input'/);
    await expect(
      convnet.run({ input: tensor('int32', [2, 3, 8, 8], new Int32Array(384)) }),
    ).rejects.toThrow(/expects float32, got int32/);
    await expect(
      convnet.run({ input: tensor('float32', [2, 3, 8, 9], new Float32Array(432)) }),
    ).rejects.toThrow(RangeError);
    await expect(
      convnet.run({ input: tensor('float32', [2, 192], new Float32Array(384)) }),
    ).rejects.toThrow(/expects rank 4/);
    await expect(
      convnet.run({ input: { type: 'float32', dims: [2, 3, 8, 8], data: new Float32Array(10) } }),
    ).rejects.toThrow(/needs 384 elements, got 10/);
    await expect(
      convnet.run({
        input: { type: 'float16', dims: [2, 3, 8, 8], data: new Float32Array(384) } as never,
      }),
    ).rejects.toThrow(/float16 needs a Uint16Array/);
    await expect(convnet.run({ input: x }, ['nope'])).rejects.toThrow(/unknown output 'nope'/);
    // The session still works after rejected runs.
    expect(await sha256Hex((await runConvnet(convnet, files)).data)).toBe(CONVNET_LOGITS_SHA256);
  });

  it('rejects bad models and options', async () => {
    await expect(createSession(new Uint8Array(0))).rejects.toThrow(RangeError);
    await expect(createSession([1, 2] as never)).rejects.toThrow(TypeError);
    await expect(
      createSession(files.convnet, { graphOptimizationLevel: 'layout' as never }),
    ).rejects.toThrow(/graphOptimizationLevel/);
    await expect(createSession(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow();
  });

  it('serialises concurrent runs and refuses runs after release', async () => {
    const s = await createSession(files.convnet);
    const digests = await Promise.all(
      [0, 1, 2].map(async () => sha256Hex((await runConvnet(s, files)).data)),
    );
    expect(new Set(digests)).toEqual(new Set([CONVNET_LOGITS_SHA256]));
    await s.release();
    await s.release();
    await expect(runConvnet(s, files)).rejects.toThrow(/released/);
  });
});

describe('tuneWasmTiering (V8 tier-up budget of the Node adapter)', () => {
  it('applies the project budget, honours the override, refuses bad values', () => {
    try {
      expect(tuneWasmTiering({})).toBe(WASM_TIERING_BUDGET);
      expect(WASM_TIERING_BUDGET).toBe(100 * 1_800_000);
      expect(tuneWasmTiering({ CANN_QUANT_WASM_TIERING_BUDGET: '5000000' })).toBe(5_000_000);
      expect(tuneWasmTiering({ CANN_QUANT_WASM_TIERING_BUDGET: 'v8' })).toBe('v8');
      for (const bad of ['0', '-3', '1.5', 'lots'])
        expect(() => tuneWasmTiering({ CANN_QUANT_WASM_TIERING_BUDGET: bad })).toThrow(
          new RangeError(
            `CANN_QUANT_WASM_TIERING_BUDGET must be a positive integer or 'v8', got '${bad}'`,
          ),
        );
    } finally {
      tuneWasmTiering({});
    }
  });
});
