import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { getTarget } from '../formats/targets.ts';
import {
  decodeModel,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  tensorToProto,
} from '../onnx/index.ts';
import { withOutputs } from '../onnx/outputs.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import { tensor } from '../tensor/index.ts';
import { PrefixRunner, runBatches, segmentOf, suffixAgainst } from './prefix.ts';
import { spreadIndices } from './sampler.ts';
import { measureOneLayerModels } from './sensitivity.ts';

/**
 *   x -> Mul w1 -> a -> Relu -> b -> (b `op` x) -> c -> Mul w2 -> y
 *                   \-> Neg -> z
 * `op` and w2 vary between the reference and the models split against it.
 */
function chain(op: 'Add' | 'Sub', w2: number[]) {
  const w = (name: string, v: number[]) =>
    tensorToProto(name, tensor('float32', [4], new Float32Array(v)));
  return makeModel(
    makeGraph({
      nodes: [
        makeNode('Mul', ['x', 'w1'], ['a'], [], { name: 'n1' }),
        makeNode('Relu', ['a'], ['b'], [], { name: 'n2' }),
        makeNode(op, ['b', 'x'], ['c'], [], { name: 'n3' }),
        makeNode('Mul', ['c', 'w2'], ['y'], [], { name: 'n4' }),
        makeNode('Neg', ['a'], ['z'], [], { name: 'n5' }),
      ],
      inputs: [makeTensorValueInfo('x', 'float32', ['n', 4])],
      outputs: [
        makeTensorValueInfo('y', 'float32', ['n', 4]),
        makeTensorValueInfo('z', 'float32', ['n', 4]),
      ],
      initializers: [w('w1', [0.5, -1, 2, 3]), w('w2', w2)],
    }),
    { opset: 13 },
  );
}

const batches = [
  { x: tensor('float32', [2, 4], new Float32Array([1, 2, 3, 4, -1, -2, -3, -4])) },
  { x: tensor('float32', [1, 4], new Float32Array([0.25, -7, 9, 1e-3])) },
];

describe('suffixAgainst', () => {
  const reference = chain('Add', [1, 2, 3, 4]);

  it('keeps the nodes the reference computes identically and cuts at what the rest reads', () => {
    const s = suffixAgainst(reference, chain('Sub', [1, 2, 3, 4]));
    expect(s.model.graph!.node.map((n) => n.name)).toEqual(['n3', 'n4']);
    expect(s.cut).toEqual(['b', 'x']);
    expect(s.shared).toEqual(['z']);
    expect(s.model.graph!.output.map((o) => o.name)).toEqual(['y']);
    expect(s.model.graph!.initializer.map((t) => t.name)).toEqual(['w2']);
    expect(s.nodes).toEqual({ suffix: 2, total: 5 });
  });

  it('treats a node whose weight bytes differ as changed, whatever its name', () => {
    const s = suffixAgainst(reference, chain('Add', [1, 2, 3, 4.0001]));
    expect(s.model.graph!.node.map((n) => n.name)).toEqual(['n4']);
    expect(s.cut).toEqual(['c']);
  });

  it('leaves nothing to run for the reference itself', () => {
    const s = suffixAgainst(reference, chain('Add', [1, 2, 3, 4]));
    expect(s.nodes.suffix).toBe(0);
    expect(s.shared).toEqual(['y', 'z']);
  });

  it('extracts the segment between held tensors and wanted ones', () => {
    const seg = segmentOf(reference, ['c'], new Set(['b']));
    expect(seg.model.graph!.node.map((n) => n.name)).toEqual(['n3']);
    expect(seg.inputs).toEqual(['b', 'x']);
    const back = segmentOf(reference, ['z'], new Set(['b']));
    expect(back.model.graph!.node.map((n) => n.name)).toEqual(['n1', 'n5']);
    expect(() => segmentOf(reference, ['nope'], new Set())).toThrow(/'nope'/);
  });
});

describe('PrefixRunner on onnxruntime-web', () => {
  beforeAll(() => useNodeRuntime());
  const reference = chain('Add', [1, 2, 3, 4]);

  it('gives every tensor bit for bit as the whole model does, in one pass when asked in order', async () => {
    const whole = await runBatches(withOutputs(reference, ['a', 'b', 'c']), batches);
    const walk = new PrefixRunner(reference, batches);
    const b = await walk.values(['b', 'x']);
    const c = await walk.values(['c']);
    const out = await walk.values(['y', 'z']);
    expect(walk.nodesRun).toBe(5);
    for (const [k, w] of whole.entries()) {
      expect(b[k]!.b).toEqual(w.b);
      expect(b[k]!.x).toBe(batches[k]!.x);
      expect(c[k]!.c).toEqual(w.c);
      expect(out[k]!.y).toEqual(w.y);
      expect(out[k]!.z).toEqual(w.z);
    }
    // Out of order: 'a' is upstream of the held 'y', 'z'; the segment reaches back to x.
    const a = await walk.values(['a']);
    expect(a.map((r) => r.a)).toEqual(whole.map((w) => w.a));
  });

  it('runs a suffix from the cut to the same outputs as the whole changed model', async () => {
    const changed = chain('Sub', [1, 2, 3, 4]);
    const s = suffixAgainst(reference, changed);
    const walk = new PrefixRunner(reference, batches);
    const part = await runBatches(s.model, await walk.values(s.cut));
    const whole = await runBatches(changed, batches);
    expect(part.map((p) => p.y)).toEqual(whole.map((w) => w.y));
  });
});

describe('one-layer models with and without the shared prefix (real zoo models, ascend310)', () => {
  beforeAll(() => useNodeRuntime());

  // fmnist-resnet: residual blocks (two-tensor cuts); spam-transformer: 13 MatMuls whose cuts
  // hold the attention mask and shape tensors (up to 30 tensors, int64 among them).
  it.each(['fmnist-resnet', 'spam-transformer'])(
    '%s: the same deviations, in any layer order, with repeated layers',
    async (id) => {
      const task = getTask(id);
      const target = getTarget('ascend310');
      const calib = await task.load(nodeDataSource(), 'calibration');
      const indices = spreadIndices(calib.size, 50);
      const q = await quantizeModel(decodeModel(await readTaskModel(task.manifest)), calib, {
        target,
        samples: { indices },
      });
      // Last layer first, the first layer twice: the walk sorts and still answers in order.
      const layers = [...q.layers].reverse();
      layers.push(q.layers[0]!);
      const run = (sharedPrefix: boolean, partSize?: number) =>
        measureOneLayerModels(
          q.prepared,
          layers,
          target,
          calib,
          { indices, batchSize: 25, ...(partSize ? { partSize } : {}) },
          { floatPath: false, sharedPrefix, predict: (o, k) => task.predict(o, k) },
        );
      const shared = await run(true);
      const whole = await run(false);
      expect(shared).toEqual(whole);
      // Batches of 25 executed in parts of 7, 7, 7 and 4 samples: the same numbers, bit for bit
      // (the per-batch sums continue over the parts).
      expect(await run(true, 7)).toEqual(whole);
      expect(shared.deviations[layers.length - 1]).toEqual(shared.deviations[layers.length - 2]);
      // Real deviations, not identical models: every layer moves the output a little.
      for (const d of shared.deviations) {
        expect(d.sqnrDb).toBeGreaterThan(15);
        expect(d.sqnrDb).toBeLessThan(80);
      }
    },
    60_000,
  );
});
