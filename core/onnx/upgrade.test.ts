import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { createSession } from '../runtime/index.ts';
import { type TensorData, tensor } from '../tensor/index.ts';
import {
  makeAttrFloat,
  makeAttrGraph,
  makeAttrInt,
  makeAttrInts,
  makeAttrString,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from './builder.ts';
import { decodeModel, encodeModel } from './codec.ts';
import type { ModelProto, NodeProto } from './gen/onnx_pb.ts';
import { defaultOpset } from './opset.ts';
import { tensorToProto } from './tensor.ts';
import { seededRandom } from './testing.ts';
import { isOpsetUpgradeError, OpsetUpgradeError, upgradeOpset } from './upgrade.ts';
import { validateModel } from './validate.ts';

const fixtures = fileURLToPath(new URL('../../test/fixtures/models/', import.meta.url));

function randomInput(dims: number[], seed: number): TensorData {
  const rand = seededRandom(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return tensor(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => rand() * 4 - 2),
  );
}

async function run(model: ModelProto, feeds: Record<string, TensorData>) {
  const s = await createSession(encodeModel(model));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

beforeAll(() => {
  useNodeRuntime();
});

describe('upgradeOpset on exported models', () => {
  it.each([
    ['cnn_op9.onnx', [1, 3, 32, 32]],
    ['cnn_op10.onnx', [1, 3, 32, 32]],
    ['unet_op11.onnx', [1, 3, 32, 32]],
    ['transformer_op12.onnx', [1, 16, 12]],
  ])('%s: opset 13, same outputs as the original in onnxruntime', async (file, dims) => {
    const model = decodeModel(new Uint8Array(readFileSync(fixtures + file)));
    const up = upgradeOpset(model);
    expect(defaultOpset(up)).toBe(13);
    expect(up.irVersion).toBeGreaterThanOrEqual(7n);
    expect(defaultOpset(model)).toBeLessThan(13); // the input is not modified
    validateModel(up);
    const feeds = { input: randomInput(dims, 7) };
    const [a, b] = [await run(model, feeds), await run(up, feeds)];
    expect([...(b.output!.data as Float32Array)]).toEqual([...(a.output!.data as Float32Array)]);
    const ops = new Set(up.graph!.node.map((n) => n.opType));
    expect(ops.has('Upsample')).toBe(false);
  });

  it('returns opset >= 13 models unchanged', () => {
    const model = decodeModel(new Uint8Array(readFileSync(`${fixtures}matmul_left.onnx`)));
    expect(upgradeOpset(model)).toBe(model);
  });
});

function oneNode(opset: number, node: NodeProto, dims: number[], outDims?: number[]): ModelProto {
  return makeModel(
    makeGraph({
      nodes: [node],
      inputs: [makeTensorValueInfo('x', 'float32', dims)],
      outputs: [makeTensorValueInfo('y', 'float32', outDims)],
    }),
    { opset },
  );
}

describe('upgradeOpset rewrites', () => {
  const x = randomInput([2, 3, 4, 5], 3);
  it.each([
    ['Softmax axis=1 of a 4-D tensor (old 2-D coercion)', 11, makeNode('Softmax', ['x'], ['y'])],
    ['LogSoftmax axis=2', 12, makeNode('LogSoftmax', ['x'], ['y'], [makeAttrInt('axis', 2)])],
    [
      'Clip min/max attributes',
      9,
      makeNode('Clip', ['x'], ['y'], [makeAttrFloat('min', -0.5), makeAttrFloat('max', 0.75)]),
    ],
    [
      'Pad reflect',
      10,
      makeNode(
        'Pad',
        ['x'],
        ['y'],
        [makeAttrString('mode', 'reflect'), makeAttrInts('pads', [0, 0, 1, 2, 0, 0, 2, 1])],
      ),
    ],
    [
      'Resize-10 downsampling nearest (ceil)',
      10,
      makeNode('Resize', ['x', 's'], ['y'], [makeAttrString('mode', 'nearest')]),
    ],
    [
      'Resize-10 upsampling linear 1.5x / 2.5x',
      10,
      makeNode('Resize', ['x', 'u'], ['y'], [makeAttrString('mode', 'linear')]),
    ],
    [
      'Upsample nearest 1.5x / 2.5x (floor)',
      9,
      makeNode('Upsample', ['x', 'u'], ['y'], [makeAttrString('mode', 'nearest')]),
    ],
    [
      'Slice with negative steps-free attributes',
      9,
      makeNode(
        'Slice',
        ['x'],
        ['y'],
        [
          makeAttrInts('starts', [1, -4]),
          makeAttrInts('ends', [3, 1000]),
          makeAttrInts('axes', [2, 3]),
        ],
      ),
    ],
    ['ReduceSum axes', 12, makeNode('ReduceSum', ['x'], ['y'], [makeAttrInts('axes', [1, 3])])],
    ['Dropout ratio', 10, makeNode('Dropout', ['x'], ['y'], [makeAttrFloat('ratio', 0.3)])],
  ] as [string, number, NodeProto][])('%s', async (_, opset, node) => {
    const model = oneNode(opset, node, [...x.dims]);
    if (node.input[1] === 'u') {
      model.graph!.initializer.push(
        tensorToProto('u', {
          type: 'float32',
          dims: [4],
          data: new Float32Array([1, 1, 1.5, 2.5]),
        }),
      );
    }
    if (node.input[1] === 's') {
      model.graph!.initializer.push(
        tensorToProto('s', {
          type: 'float32',
          dims: [4],
          data: new Float32Array([1, 1, 0.5, 0.6]),
        }),
      );
    }
    const up = upgradeOpset(model);
    expect(defaultOpset(up)).toBe(13);
    const [a, b] = [await run(model, { x }), await run(up, { x })];
    expect(b.y!.dims).toEqual(a.y!.dims);
    expect([...(b.y!.data as Float32Array)]).toEqual([...(a.y!.data as Float32Array)]);
  });

  it('throws a typed error naming an operator it does not know', () => {
    const model = oneNode(11, makeNode('MysteryOp', ['x'], ['y'], [], { name: 'm1' }), [2, 3]);
    let err: unknown;
    try {
      upgradeOpset(model);
    } catch (e) {
      err = e;
    }
    expect(isOpsetUpgradeError(err)).toBe(true);
    expect((err as OpsetUpgradeError).op).toBe('MysteryOp');
    expect((err as OpsetUpgradeError).from).toBe(11);
    expect((err as Error).message).toContain("MysteryOp 'm1'");
    expect(() => upgradeOpset(oneNode(8, makeNode('Relu', ['x'], ['y']), [2]))).toThrow(
      OpsetUpgradeError,
    );
  });

  it('upgrades nodes inside subgraphs', () => {
    const branch = (out: string) =>
      makeGraph({
        nodes: [makeNode('Clip', ['x'], [out], [makeAttrFloat('min', 0)])],
        inputs: [],
        outputs: [makeTensorValueInfo(out, 'float32')],
      });
    const model = makeModel(
      makeGraph({
        nodes: [
          makeNode('ReduceMean', ['x'], ['m'], [makeAttrInt('keepdims', 0)]),
          makeNode('Cast', ['m'], ['c'], [makeAttrInt('to', 9)]),
          makeNode(
            'If',
            ['c'],
            ['y'],
            [makeAttrGraph('then_branch', branch('t')), makeAttrGraph('else_branch', branch('e'))],
          ),
        ],
        inputs: [makeTensorValueInfo('x', 'float32', [2])],
        outputs: [makeTensorValueInfo('y', 'float32')],
      }),
      { opset: 9 },
    );
    const up = upgradeOpset(model);
    const clip = up.graph!.node[2]!.attribute[0]!.g!.node[0]!;
    expect(clip.attribute).toHaveLength(0);
    expect(clip.input).toHaveLength(2);
    validateModel(up);
  });
});
