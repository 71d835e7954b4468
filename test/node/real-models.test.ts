/**
 * Real-world (third-party-style) ONNX models through the quantizer: every model of
 * test/fixtures/models (see make_models.py) on every target. For each pair: quantizeModel on 8
 * seeded random calibration inputs (bias correction off), then the emulation model and the QDQ
 * model run in onnxruntime-web on 4 other random inputs and are compared with the original FP32
 * model. Checks: nothing crashes, every Conv/Gemm/MatMul is either quantized or reported as float
 * with a reason, the quantized-layer count is the pinned one, and outputs are finite and within
 * the pinned relative L2 error of FP32.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import type { BatchSource } from '../../core/evaluate/predict.ts';
import { getTarget, type TargetId } from '../../core/formats/targets.ts';
import { decodeModel, encodeModel, type GraphProto, type ModelProto, subgraphs } from '../../core/onnx/index.ts';
import { seededRandom } from '../../core/onnx/testing.ts';
import { quantizeModel } from '../../core/quantize/quantize.ts';
import { createSession } from '../../core/runtime/index.ts';
import { concatBatch, type TensorData, tensor } from '../../core/tensor/index.ts';

const dir = fileURLToPath(new URL('../fixtures/models/', import.meta.url));

interface ModelEntry {
  file: string;
  opset: number;
  inputs: { name: string; shape: number[] }[];
}
const manifest = JSON.parse(readFileSync(`${dir}models.json`, 'utf8')) as {
  models: Record<string, ModelEntry>;
};

const TARGETS: TargetId[] = ['ascend310', 'ascend310p', 'nvidia-t4', 'snapdragon', 'cpu-wasm'];
const CALIBRATION = 8;
const EVALUATION = 4;

/** Seeded standard-normal inputs of the model's input shapes, one sample per index. */
function randomSource(entry: ModelEntry, seed: number): BatchSource {
  const samples: Record<string, TensorData>[] = [];
  const rand = seededRandom(seed);
  const normal = () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  for (let s = 0; s < CALIBRATION + EVALUATION; s++) {
    const feeds: Record<string, TensorData> = {};
    for (const i of entry.inputs) {
      const n = i.shape.reduce((a, b) => a * b, 1);
      feeds[i.name] = tensor('float32', i.shape, Float32Array.from({ length: n }, normal));
    }
    samples.push(feeds);
  }
  return {
    size: samples.length,
    batch(start, end) {
      const part = samples.slice(start, end);
      return Object.fromEntries(
        entry.inputs.map((i) => [i.name, concatBatch(part.map((p) => p[i.name]!))]),
      );
    },
  };
}

/** Conv/Gemm/MatMul nodes of a graph and of all its subgraphs. */
function weightedNodes(graph: GraphProto): number {
  let n = 0;
  for (const node of graph.node) {
    if (['Conv', 'Gemm', 'MatMul'].includes(node.opType)) n++;
    for (const g of subgraphs(node)) n += weightedNodes(g);
  }
  return n;
}

async function runAll(model: ModelProto, source: BatchSource, indices: number[]) {
  const session = await createSession(encodeModel(model));
  try {
    const out: Record<string, TensorData>[] = [];
    for (const i of indices) out.push(await session.run(source.batch(i, i + 1)));
    return out;
  } finally {
    await session.release();
  }
}

/** Relative L2 error ||q - f|| / ||f|| over all outputs and samples; NaN if any is not finite. */
function relativeError(q: Record<string, TensorData>[], f: Record<string, TensorData>[]): number {
  let num = 0;
  let den = 0;
  for (const [s, o] of q.entries()) {
    for (const [name, t] of Object.entries(f[s]!)) {
      const a = o[name]!.data as Float32Array;
      const b = t.data as Float32Array;
      for (let i = 0; i < b.length; i++) {
        if (!Number.isFinite(a[i]!)) return Number.NaN;
        num += (a[i]! - b[i]!) ** 2;
        den += b[i]! ** 2;
      }
    }
  }
  return Math.sqrt(num / den);
}

const measured: string[] = [];

beforeAll(() => {
  useNodeRuntime();
});

describe.each(Object.entries(manifest.models))('%s', (name, entry) => {
  const model = decodeModel(new Uint8Array(readFileSync(dir + entry.file)));
  const source = randomSource(entry, 1000 + entry.file.length);
  const calib = Array.from({ length: CALIBRATION }, (_, i) => i);
  const evalIdx = Array.from({ length: EVALUATION }, (_, i) => CALIBRATION + i);
  let fp32: Record<string, TensorData>[];
  beforeAll(async () => {
    fp32 = await runAll(model, source, evalIdx);
  });
  it.each(TARGETS)('%s', async (targetId) => {
    const target = getTarget(targetId);
    const r = await quantizeModel(model, source, {
      target,
      samples: { indices: calib, batchSize: 1 },
      biasCorrection: false,
    });
    const total = weightedNodes(r.prepared.model.graph!);
    expect(r.layers.length + r.skipped.length).toBe(total);
    for (const s of r.skipped) expect(s.reason).not.toBe('');
    const emu = relativeError(await runAll(r.emulation, source, evalIdx), fp32);
    const qdq = relativeError(await runAll(r.qdq, source, evalIdx), fp32);
    measured.push(
      `${name} ${targetId} layers=${r.layers.length} skipped=${r.skipped.length} emu=${emu.toFixed(4)} qdq=${qdq.toFixed(4)} ${r.skipped.map((s) => `[${s.name}: ${s.reason}]`).join(' ')}`,
    );
    expect(Number.isFinite(emu)).toBe(true);
    expect(Number.isFinite(qdq)).toBe(true);
  });
});

describe('summary', () => {
  it('prints', () => {
    console.log(measured.join('\n'));
  });
});
