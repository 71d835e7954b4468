/**
 * The QDQ export runs in onnxruntime-web and agrees with the cpu-wasm execution: the same QDQ
 * model executed node by node (QuantizeLinear/DequantizeLinear in float, optimisation
 * 'disabled') and with ORT's QDQ fusions into integer kernels ('all', what `cpu-wasm` runs)
 * give the same predictions on the smoke task's evaluation split but for a handful of
 * near-ties, and metrics within 0.3 points.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import { predictModel } from '../../core/evaluate/evaluate.ts';
import { getTarget } from '../../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import { quantizeModel } from '../../core/quantize/quantize.ts';
import { getTask } from '../../zoo/registry.ts';

beforeAll(() => useNodeRuntime());

describe('QDQ export', () => {
  it.each(['cpu-wasm', 'ascend310'])(
    '%s: node-by-node and fused integer execution agree',
    async (targetId) => {
      const task = getTask('smoke-fmnist');
      const source = nodeDataSource();
      const calib = await task.load(source, 'calibration');
      const evaluation = await task.load(source, 'evaluation');
      const q = await quantizeModel(decodeModel(await readTaskModel(task.manifest)), calib, {
        target: getTarget(targetId),
        samples: { indices: spreadIndices(calib.size, 50) },
      });
      const qdq = encodeModel(q.qdq);
      const plain = await predictModel(task, qdq, evaluation, {
        graphOptimizationLevel: 'disabled',
      });
      const fused = await predictModel(task, qdq, evaluation, { graphOptimizationLevel: 'all' });
      const differ = plain.filter((p, i) => p !== fused[i]).length;
      // Measured on the 1,000 images: 0 predictions differ for both targets (2026-11-25); the bound
      // leaves room for near-ties between integer requantisation and float Q/DQ.
      expect(differ).toBeLessThanOrEqual(5);
      const a = task.score(plain, evaluation.labels).top1!;
      const b = task.score(fused, evaluation.labels).top1!;
      expect(Math.abs(a - b) * 100).toBeLessThanOrEqual(0.3);
      // And the deployable model keeps the accuracy of the FP32 reference within 1 point.
      expect((task.manifest.reference.fp32.top1! - b) * 100).toBeLessThanOrEqual(1);
    },
    120_000,
  );
});
