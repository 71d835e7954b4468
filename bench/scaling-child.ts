/**
 * One scaling measurement in a fresh process (bench/perf.ts --sections scaling runs it): FP32
 * session creation and throughput, INT8 calibration (quantizeModel: ranges, histograms, bias
 * correction) with N samples and the emulation model's throughput, with the size of ORT's
 * WebAssembly memory after each step and the process's max RSS. Prints one JSON line.
 *
 *   npx tsx bench/scaling-child.ts <model.onnx | zoo:task-id> <samples>
 */

import { recordWasmMemory } from '../cli/wasm-memory.ts';

// Record ORT's WebAssembly memory before ORT loads.
const wasm = recordWasmMemory();

const { readFile } = await import('node:fs/promises');
const { nodeDataSource } = await import('../cli/data-source.ts');
const { useNodeRuntime } = await import('../cli/runtime-node.ts');
const { readTaskModel } = await import('../cli/zoo-files.ts');
const { spreadIndices } = await import('../core/calibrate/sampler.ts');
const { getTarget } = await import('../core/formats/targets.ts');
const { decodeModel, encodeModel } = await import('../core/onnx/index.ts');
const { quantizeModel } = await import('../core/quantize/quantize.ts');
const { createSession } = await import('../core/runtime/index.ts');
const { tensor } = await import('../core/tensor/index.ts');
const { TASKS } = await import('../zoo/registry.ts');
type TensorData = import('../core/tensor/index.ts').TensorData;

const [spec, samplesArg] = process.argv.slice(2);
const samples = Number(samplesArg ?? 50);
useNodeRuntime();
const MiB = 2 ** 20;

let bytes: Uint8Array;
let source: {
  size: number;
  batch(s: number, e: number): Record<string, TensorData> | Promise<Record<string, TensorData>>;
};
if (spec!.startsWith('zoo:')) {
  const task = TASKS[spec!.slice(4)]!;
  bytes = await readTaskModel(task.manifest);
  source = await task.load(nodeDataSource(), 'calibration');
} else {
  bytes = new Uint8Array(await readFile(spec!));
  // seeded pseudo-random images [n, 3, 32, 32]
  source = {
    size: 1000,
    batch(s: number, e: number) {
      const n = (e - s) * 3 * 32 * 32;
      const d = new Float32Array(n);
      let x = (s + 1) * 2654435761;
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        d[i] = (x / 2 ** 32) * 4 - 2;
      }
      return { input: tensor('float32', [e - s, 3, 32, 32], d) };
    },
  };
}
const out: Record<string, number | string> = {
  model: spec!,
  samples,
  modelMiB: bytes.length / MiB,
};
let t = performance.now();
const fp32 = await createSession(bytes);
out.createSec = (performance.now() - t) / 1000;
out.wasmAfterCreateMiB = wasm() / MiB;
const batch = await source.batch(0, 10);
await fp32.run(batch);
t = performance.now();
for (let i = 0; i < 3; i++) await fp32.run(batch);
out.fp32SamplesPerSec = 30 / ((performance.now() - t) / 1000);
await fp32.release();
out.wasmAfterFp32MiB = wasm() / MiB;
t = performance.now();
const q = await quantizeModel(decodeModel(bytes), source, {
  target: getTarget('ascend310'),
  samples: { indices: spreadIndices(source.size, samples) },
});
out.calibrateSec = (performance.now() - t) / 1000;
out.wasmAfterCalibrateMiB = wasm() / MiB;
const emu = await createSession(encodeModel(q.emulation));
await emu.run(batch);
t = performance.now();
for (let i = 0; i < 3; i++) await emu.run(batch);
out.emuSamplesPerSec = 30 / ((performance.now() - t) / 1000);
await emu.release();
out.wasmPeakMiB = wasm() / MiB;
out.maxRssMiB = process.resourceUsage().maxRSS / 1024;
out.layers = q.layers.length;
console.log(JSON.stringify(out));
