/**
 * Trained weights go back into the reference graph (same nodes, initializer names and shapes)
 * and the quantizer's BN folding of the exported model gives the trained values back.
 */
import { describe, expect, it } from 'vitest';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { getTarget } from '../formats/targets.ts';
import { decodeModel } from '../onnx/index.ts';
import { prepareModel } from '../quantize/prepare.ts';
import { sameGraph, writeTrainedWeights } from './export.ts';
import { maxRelDiff } from './testing.ts';

describe('writeTrainedWeights on fmnist-resnet (7 Conv+BN folded, 1 Gemm)', () => {
  it('keeps the graph and round-trips perturbed weights through BN folding (rel. 1e-5)', async () => {
    const model = decodeModel(await readTaskModel(getTask('fmnist-resnet').manifest));
    const target = getTarget('ascend310');
    const prepared = prepareModel(model, target);
    expect(prepared.foldedBatchNorms).toBe(7);
    // "trained" weights: the folded ones, perturbed deterministically
    const trained = new Map(
      prepared.layers.map((c, k) => [
        c.name,
        {
          weight: Float32Array.from(c.weight.data, (v, i) => v * (1 + 0.01 * Math.sin(i + k))),
          bias: Float32Array.from(c.bias, (v, i) => v + 0.01 * Math.cos(i + k)),
        },
      ]),
    );
    const out = writeTrainedWeights(model, prepared, trained);
    expect(sameGraph(model, out)).toEqual({ same: true });
    const again = prepareModel(out, target);
    expect(again.layers.map((c) => c.name)).toEqual(prepared.layers.map((c) => c.name));
    for (const c of again.layers) {
      const t = trained.get(c.name)!;
      expect(maxRelDiff(c.weight.data, t.weight)).toBeLessThan(1e-5);
      expect(maxRelDiff(c.bias, t.bias)).toBeLessThan(1e-5);
    }
  });

  it('sameGraph reports a changed graph', async () => {
    const model = decodeModel(await readTaskModel(getTask('fmnist-resnet').manifest));
    const other = decodeModel(await readTaskModel(getTask('fmnist-resnet').manifest));
    other.graph!.node.pop();
    expect(sameGraph(model, other).same).toBe(false);
  });
});
