/**
 * core/runtime inside workerd (functions/runtime-workerd.ts adapter), against the same committed
 * digests and exact values as test/node/runtime.test.ts: equal digests = bit-identical outputs.
 *
 * Model and tensor files are imported as modules: wrangler.toml's `Data` rule (`**\/*.onnx`,
 * `**\/*.bin`) makes each import an ArrayBuffer, in `wrangler dev` and in this vitest pool alike.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createSession, getRuntimeInfo, type ModelSession } from '../../core/runtime/index.ts';
import { tensor } from '../../core/tensor/index.ts';
import { useWorkerdRuntime } from '../../functions/runtime-workerd.ts';
import castF16 from '../fixtures/runtime/cast_f16.onnx';
import convInteger from '../fixtures/runtime/convinteger.onnx';
import convnetInput from '../fixtures/runtime/convnet.input.bin';
import convnetModel from '../fixtures/runtime/convnet.onnx';
import convnetTorch from '../fixtures/runtime/convnet.torch.bin';
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
import matmulInteger from '../fixtures/runtime/matmulinteger.onnx';

const files: RuntimeFixtureFiles = {
  convnet: new Uint8Array(convnetModel),
  convnetInput: new Uint8Array(convnetInput),
  convnetTorch: new Uint8Array(convnetTorch),
  castF16: new Uint8Array(castF16),
  matmulInteger: new Uint8Array(matmulInteger),
  convInteger: new Uint8Array(convInteger),
};

let convnet: ModelSession;

beforeAll(async () => {
  useWorkerdRuntime();
  const t0 = Date.now();
  convnet = await createSession(files.convnet);
  console.info(`workerd: first createSession (ORT init + convnet) ${Date.now() - t0} ms`);
});

describe('core/runtime in workerd', () => {
  it('runs in workerd with the workerd loader, single-threaded', async () => {
    expect(navigator.userAgent).toBe('Cloudflare-Workers');
    expect(await getRuntimeInfo()).toMatchObject({
      loader: 'workerd',
      ortVersion: '1.30.0',
      numThreads: 1,
    });
  });

  it('imports .onnx and .bin files as ArrayBuffers (Data rule)', () => {
    expect(convnetModel).toBeInstanceOf(ArrayBuffer);
    expect(convnetInput.byteLength).toBe(2 * 3 * 8 * 8 * 4);
    expect(files.convnet.byteLength).toBeGreaterThan(20_000);
  });

  it('computes the committed convnet digest (bit-identical to Node)', async () => {
    const logits = await runConvnet(convnet, files);
    expect(logits.dims).toEqual(CONVNET_OUTPUT_DIMS);
    expect(await sha256Hex(logits.data)).toBe(CONVNET_LOGITS_SHA256);
    const ref = float32s(files.convnetTorch);
    const got = logits.data as Float32Array;
    for (let i = 0; i < ref.length; i++)
      expect(Math.abs((got[i] ?? 0) - (ref[i] ?? 0))).toBeLessThan(1e-5);
  });

  it('graph optimisation all: the optimised digest', async () => {
    const s = await createSession(files.convnet, { graphOptimizationLevel: 'all' });
    expect(await sha256Hex((await runConvnet(s, files)).data)).toBe(
      CONVNET_LOGITS_OPTIMIZED_SHA256,
    );
    await s.release();
  });

  it('round-trips float -> float16 -> float exactly (raw half bits)', async () => {
    const s = await createSession(files.castF16);
    const { y16, y32, h32 } = await runCast(s);
    expect(y16.type).toBe('float16');
    expect(y16.data).toBeInstanceOf(Uint16Array);
    expect([...y16.data]).toEqual([...CAST_F16_BITS]);
    expect(float32Bits(y32)).toEqual([...CAST_F32_BITS]);
    expect(float32Bits(h32)).toEqual([...CAST_F32_BITS]);
    await s.release();
  });

  it('MatMulInteger and ConvInteger are exact', async () => {
    const mm = await createSession(files.matmulInteger);
    expect([...(await runMatMulInteger(mm)).data]).toEqual([...MATMUL.Y]);
    await mm.release();
    const conv = await createSession(files.convInteger);
    expect([...(await runConvInteger(conv)).data]).toEqual([...CONV.Y]);
    await conv.release();
  });

  it('validates feeds as in Node', async () => {
    await expect(
      convnet.run({ input: tensor('float32', [1, 3, 8, 8], new Float32Array(192)) }),
    ).rejects.toThrow(/expects dims \[2,3,8,8\]/);
    await expect(convnet.run({ x: tensor('float32', [1], new Float32Array(1)) })).rejects.toThrow(
      TypeError,
    );
  });
});
