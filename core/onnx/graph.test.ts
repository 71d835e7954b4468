import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  attrFloat,
  attrFloats,
  attrGraph,
  attrInt,
  attrInts,
  attrString,
  attrTensor,
} from './attributes.ts';
import {
  irVersionForOpset,
  makeAttrFloat,
  makeAttrFloats,
  makeAttrGraph,
  makeAttrInt,
  makeAttrInts,
  makeAttrString,
  makeAttrTensor,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from './builder.ts';
import { decodeModel, encodeModel } from './codec.ts';
import { constantLookup, constantTensors } from './constants.ts';
import { OnnxFormatError } from './errors.ts';
import { TensorProto_DataType as DT, type GraphProto, type NodeProto } from './gen/onnx_pb.ts';
import {
  consumers,
  implicitInputs,
  nodeInputs,
  producers,
  subgraphs,
  topologicalOrder,
} from './graph.ts';
import { defaultOpset, opsetVersion } from './opset.ts';
import { withOutputs } from './outputs.ts';
import { tensorInfos } from './shapes.ts';
import { tensorToProto } from './tensor.ts';
import { modelFiles, ONNX_TESTDATA, tinyConvModel } from './testing.ts';

const names = (nodes: NodeProto[]) => nodes.map((n) => n.name);

function formatError(fn: () => unknown): OnnxFormatError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OnnxFormatError) return e;
    throw e;
  }
  throw new Error('nothing thrown');
}

/** Diamond x -> a -> (b, c) -> d, with nodes listed in scrambled order. */
function scrambledDiamond(): GraphProto {
  return makeGraph({
    nodes: [
      makeNode('Add', ['b', 'c'], ['d'], [], { name: 'D' }),
      makeNode('Neg', ['a'], ['c'], [], { name: 'C' }),
      makeNode('Relu', ['x'], ['a'], [], { name: 'A' }),
      makeNode('Abs', ['a'], ['b'], [], { name: 'B' }),
      makeNode('Mul', ['x', 'w'], ['e'], [], { name: 'E' }),
    ],
    inputs: [makeTensorValueInfo('x', 'float32', [4])],
    outputs: [makeTensorValueInfo('d', 'float32', [4]), makeTensorValueInfo('e', 'float32', [4])],
    initializers: [
      tensorToProto('w', { type: 'float32', dims: [4], data: new Float32Array([1, 2, 3, 4]) }),
    ],
  });
}

describe('topologicalOrder', () => {
  it('sorts a scrambled hand-built graph, ties in original order', () => {
    expect(names(topologicalOrder(scrambledDiamond()))).toEqual(['A', 'C', 'B', 'D', 'E']);
  });

  it('keeps an already sorted graph as is', () => {
    const g = scrambledDiamond();
    const sorted = topologicalOrder(g);
    g.node = sorted;
    expect(names(topologicalOrder(g))).toEqual(names(sorted));
  });

  it('detects a cycle and names nodes on it', () => {
    const g = makeGraph({
      nodes: [
        makeNode('Relu', ['x'], ['a'], [], { name: 'ok' }),
        makeNode('Add', ['a', 'c'], ['b'], [], { name: 'loop1' }),
        makeNode('Neg', ['b'], ['c'], [], { name: 'loop2' }),
      ],
      inputs: [makeTensorValueInfo('x', 'float32')],
      outputs: [makeTensorValueInfo('c', 'float32')],
    });
    const e = formatError(() => topologicalOrder(g));
    expect(e.code).toBe('invalid-graph');
    expect(e.message).toMatch(/cycle/);
    expect(e.message).toMatch(/loop1/);
    expect(e.message).not.toMatch(/'ok'/);
  });

  it('detects a node reading its own output', () => {
    const g = makeGraph({
      nodes: [makeNode('Add', ['x', 'y'], ['y'], [], { name: 'self' })],
      inputs: [makeTensorValueInfo('x', 'float32')],
      outputs: [makeTensorValueInfo('y', 'float32')],
    });
    expect(formatError(() => topologicalOrder(g)).message).toMatch(/cycle/);
  });

  it('orders a node after the producers of outer names its subgraph uses', () => {
    const thenBranch = makeGraph({
      name: 'then',
      nodes: [makeNode('Add', ['late', 'inner_in'], ['t_out'], [], { name: 'inner' })],
      inputs: [],
      outputs: [makeTensorValueInfo('t_out', 'float32')],
      initializers: [
        tensorToProto('inner_in', { type: 'float32', dims: [], data: new Float32Array([1]) }),
      ],
    });
    const elseBranch = makeGraph({
      name: 'else',
      nodes: [makeNode('Identity', ['x'], ['e_out'])],
      inputs: [],
      outputs: [makeTensorValueInfo('e_out', 'float32')],
    });
    const ifNode = makeNode(
      'If',
      ['cond'],
      ['y'],
      [makeAttrGraph('then_branch', thenBranch), makeAttrGraph('else_branch', elseBranch)],
      { name: 'if' },
    );
    const g = makeGraph({
      nodes: [ifNode, makeNode('Relu', ['x'], ['late'], [], { name: 'producer' })],
      inputs: [makeTensorValueInfo('x', 'float32'), makeTensorValueInfo('cond', 'bool', [])],
      outputs: [makeTensorValueInfo('y', 'float32')],
    });
    expect(subgraphs(ifNode)).toHaveLength(2);
    expect(implicitInputs(ifNode).sort()).toEqual(['late', 'x']);
    expect(nodeInputs(ifNode)).toEqual(['cond', 'late', 'x']);
    expect(names(topologicalOrder(g))).toEqual(['producer', 'if']);
    expect(consumers(g).get('late')).toEqual([ifNode]);
    // and the model built around it validates
    const model = makeModel(g);
    expect(decodeModel(encodeModel(model)).graph!.node).toHaveLength(2);
  });

  it('gives a valid order for every libonnx node model (If, Loop, Scan included)', () => {
    let withSubgraphs = 0;
    for (const f of modelFiles(`${ONNX_TESTDATA}/node`)) {
      const g = decodeModel(new Uint8Array(readFileSync(f)), { validate: false }).graph!;
      const order = topologicalOrder(g);
      expect(order).toHaveLength(g.node.length);
      const prod = producers(g);
      const done = new Set<NodeProto>();
      for (const n of order) {
        for (const i of nodeInputs(n)) {
          const p = prod.get(i);
          if (p !== undefined)
            expect(done.has(p), `${f}: ${n.opType} before producer of ${i}`).toBe(true);
        }
        done.add(n);
      }
      if (g.node.some((n) => subgraphs(n).length > 0)) withSubgraphs++;
    }
    expect(withSubgraphs).toBeGreaterThan(5);
  });
});

describe('producers / consumers', () => {
  it('maps tensors to their producing and consuming nodes', () => {
    const g = scrambledDiamond();
    const prod = producers(g);
    expect(prod.get('a')?.name).toBe('A');
    expect(prod.get('d')?.name).toBe('D');
    expect(prod.has('x')).toBe(false);
    expect(prod.has('w')).toBe(false);
    const cons = consumers(g);
    expect(names(cons.get('a')!)).toEqual(['C', 'B']);
    expect(names(cons.get('x')!)).toEqual(['A', 'E']);
    expect(names(cons.get('w')!)).toEqual(['E']);
    expect(cons.has('d')).toBe(false);
  });

  it('rejects a tensor produced twice', () => {
    const g = scrambledDiamond();
    g.node.push(makeNode('Relu', ['x'], ['a'], [], { name: 'again' }));
    expect(formatError(() => producers(g)).message).toMatch(/'a' is produced twice/);
  });
});

describe('constants', () => {
  const graph = makeGraph({
    nodes: [
      makeNode(
        'Constant',
        [],
        ['k_tensor'],
        [
          makeAttrTensor(
            'value',
            tensorToProto('', { type: 'int8', dims: [2], data: new Int8Array([-3, 4]) }),
          ),
        ],
      ),
      makeNode('Constant', [], ['k_float'], [makeAttrFloat('value_float', 0.25)]),
      makeNode('Constant', [], ['k_floats'], [makeAttrFloats('value_floats', [1, 2])]),
      makeNode('Constant', [], ['k_int'], [makeAttrInt('value_int', -9)]),
      makeNode('Constant', [], ['k_ints'], [makeAttrInts('value_ints', [3, 1, 2])]),
      makeNode('Mul', ['x', 'w'], ['y']),
    ],
    inputs: [makeTensorValueInfo('x', 'float32', [2]), makeTensorValueInfo('b', 'float32', [2])],
    outputs: [makeTensorValueInfo('y', 'float32', [2])],
    initializers: [
      tensorToProto('w', { type: 'float32', dims: [2], data: new Float32Array([0.5, 2]) }),
      tensorToProto('b', { type: 'float32', dims: [2], data: new Float32Array([0, 0]) }),
    ],
  });

  it('treats initializers and Constant nodes alike', () => {
    const c = constantLookup(graph);
    expect(c.names().sort()).toEqual([
      'b',
      'k_float',
      'k_floats',
      'k_int',
      'k_ints',
      'k_tensor',
      'w',
    ]);
    expect(c.value('w')).toEqual({ type: 'float32', dims: [2], data: new Float32Array([0.5, 2]) });
    expect(c.value('k_tensor')).toEqual({ type: 'int8', dims: [2], data: new Int8Array([-3, 4]) });
    expect(c.value('k_float')).toEqual({
      type: 'float32',
      dims: [],
      data: new Float32Array([0.25]),
    });
    expect(c.value('k_floats')).toEqual({
      type: 'float32',
      dims: [2],
      data: new Float32Array([1, 2]),
    });
    expect(c.value('k_int')).toEqual({ type: 'int64', dims: [], data: new BigInt64Array([-9n]) });
    expect(c.value('k_ints')).toEqual({
      type: 'int64',
      dims: [3],
      data: new BigInt64Array([3n, 1n, 2n]),
    });
    expect(c.proto('k_tensor')?.name).toBe('k_tensor');
    expect(c.has('x')).toBe(false);
    expect(c.value('y')).toBeUndefined();
    expect(c.value('w')).toBe(c.value('w')); // cached
  });

  it('can leave out initializers that are also graph inputs', () => {
    expect(constantTensors(graph, { includeOverridable: false }).has('b')).toBe(false);
    expect(constantTensors(graph).has('b')).toBe(true);
  });
});

describe('tensorInfos', () => {
  it('collects element types and shapes from inputs, value_info, outputs, initializers', () => {
    const g = tinyConvModel().graph!;
    g.valueInfo.push(makeTensorValueInfo('idx', DT.INT64));
    const info = tensorInfos(g);
    expect(info.get('x')).toEqual({
      name: 'x',
      elemType: DT.FLOAT,
      type: 'float32',
      dims: ['batch', 1, 4, 4],
    });
    expect(info.get('w')).toEqual({
      name: 'w',
      elemType: DT.FLOAT,
      type: 'float32',
      dims: [2, 1, 3, 3],
    });
    expect(info.get('c')?.dims).toEqual(['batch', 2, 4, 4]);
    expect(info.get('y')?.dims).toEqual(['batch', 2, 4, 4]);
    expect(info.get('idx')).toEqual({
      name: 'idx',
      elemType: DT.INT64,
      type: 'int64',
      dims: undefined,
    });
    expect(info.has('nothing')).toBe(false);
  });

  it('keeps unknown dimensions as null', () => {
    const g = makeGraph({
      nodes: [],
      inputs: [makeTensorValueInfo('x', 'uint8', [null, 3])],
      outputs: [],
    });
    expect(tensorInfos(g).get('x')?.dims).toEqual([null, 3]);
  });
});

describe('opset', () => {
  it('reads the default-domain opset', () => {
    const m = tinyConvModel({ opset: 13, extraOpsets: [{ domain: 'com.microsoft', version: 1 }] });
    expect(defaultOpset(m)).toBe(13);
    expect(opsetVersion(m, 'ai.onnx')).toBe(13);
    expect(opsetVersion(m, 'com.microsoft')).toBe(1);
    expect(opsetVersion(m, 'ai.onnx.ml')).toBeUndefined();
    m.opsetImport = m.opsetImport.slice(1);
    expect(formatError(() => defaultOpset(m)).code).toBe('unsupported-opset');
  });

  it('picks IR versions like onnx.helper.make_model', () => {
    expect([9, 11, 13, 17, 19, 21].map(irVersionForOpset)).toEqual([4, 6, 7, 8, 9, 10]);
    expect(tinyConvModel({ opset: 21 }).irVersion).toBe(10n);
  });
});

describe('attributes', () => {
  const node = makeNode(
    'Conv',
    ['x', 'w'],
    ['y'],
    [
      makeAttrInts('pads', [1, 1, 1, 1]),
      makeAttrInt('group', 2),
      makeAttrInt('end', 9223372036854775807n),
      makeAttrFloat('alpha', 0.5),
      makeAttrFloats('scales', [1, 2]),
      makeAttrString('auto_pad', 'NOTSET'),
      makeAttrTensor(
        'value',
        tensorToProto('v', { type: 'uint8', dims: [], data: new Uint8Array([7]) }),
      ),
      makeAttrGraph('body', makeGraph({ name: 'body', nodes: [], inputs: [], outputs: [] })),
    ],
  );

  it('reads each type, with defaults for absent attributes', () => {
    expect(attrInts(node, 'pads')).toEqual([1, 1, 1, 1]);
    expect(attrInts(node, 'strides', [1, 1])).toEqual([1, 1]);
    expect(attrInts(node, 'strides')).toBeUndefined();
    expect(attrInt(node, 'group')).toBe(2);
    expect(attrInt(node, 'axis', -1)).toBe(-1);
    expect(attrInt(node, 'end')).toBe(Number.POSITIVE_INFINITY);
    expect(attrFloat(node, 'alpha')).toBe(0.5);
    expect(attrFloat(node, 'beta', 1)).toBe(1);
    expect(attrFloats(node, 'scales')).toEqual([1, 2]);
    expect(attrString(node, 'auto_pad')).toBe('NOTSET');
    expect(attrString(node, 'mode', 'constant')).toBe('constant');
    expect(attrTensor(node, 'value')?.name).toBe('v');
    expect(attrTensor(node, 'missing')).toBeUndefined();
    expect(attrGraph(node, 'body')?.name).toBe('body');
  });

  it('rejects a type mismatch', () => {
    const e = formatError(() => attrInt(node, 'alpha'));
    expect(e.code).toBe('invalid-attribute');
    expect(e.message).toMatch(/'alpha' is FLOAT, expected INT/);
    expect(formatError(() => attrString(node, 'pads')).code).toBe('invalid-attribute');
  });
});

describe('withOutputs', () => {
  it('adds outputs with known types, float otherwise, without touching the input model', () => {
    const model = tinyConvModel();
    model.graph!.node.push(makeNode('Shape', ['c'], ['shape'], [], { name: 'shape' }));
    model.graph!.valueInfo.push(makeTensorValueInfo('shape', DT.INT64, [4]));
    model.graph!.node.push(makeNode('Sigmoid', ['c'], ['sig'], [], { name: 'sig' }));
    const before = encodeModel(model);

    const wide = withOutputs(model, ['c', 'shape', 'sig', 'y', 'c']);
    expect(wide.graph!.output.map((o) => o.name)).toEqual(['y', 'c', 'shape', 'sig']);
    const info = tensorInfos(wide.graph!);
    expect(info.get('c')).toMatchObject({ elemType: DT.FLOAT, dims: ['batch', 2, 4, 4] });
    expect(info.get('shape')).toMatchObject({ elemType: DT.INT64, dims: [4] });
    expect(info.get('sig')).toMatchObject({ elemType: DT.FLOAT, dims: undefined });

    expect(Buffer.from(encodeModel(model)).equals(Buffer.from(before))).toBe(true);
    expect(model.graph!.output).toHaveLength(1);
    const reread = decodeModel(encodeModel(wide));
    expect(reread.graph!.output.map((o) => o.name)).toEqual(['y', 'c', 'shape', 'sig']);
    expect(reread.graph!.name).toBe('tiny');
    expect(reread.producerName).toBe('cann-quant');
  });

  it('can expose graph inputs and initializers, rejects unknown names', () => {
    const model = tinyConvModel();
    expect(withOutputs(model, ['x', 'w']).graph!.output.map((o) => o.name)).toEqual([
      'y',
      'x',
      'w',
    ]);
    const e = formatError(() => withOutputs(model, ['nope']));
    expect(e.code).toBe('invalid-graph');
    expect(e.message).toMatch(/nope/);
  });
});

describe('builders', () => {
  it('produce a model that encodes, decodes and validates', () => {
    const bytes = encodeModel(tinyConvModel({ opset: 13 }));
    const m = decodeModel(bytes);
    expect(m.irVersion).toBe(7n);
    expect(m.opsetImport.map((o) => [o.domain, o.version])).toEqual([['', 13n]]);
    const conv = m.graph!.node[0]!;
    expect([conv.opType, conv.name, conv.domain]).toEqual(['Conv', 'conv', '']);
    expect(attrInts(conv, 'pads')).toEqual([1, 1, 1, 1]);
    expect(constantLookup(m.graph!).value('b')?.data).toEqual(new Float32Array([0.5, -0.5]));
    expect(Buffer.from(encodeModel(m)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('sets the domain of custom nodes', () => {
    const n = makeNode('QuantizeLinear', ['x'], ['q'], [], { domain: 'com.microsoft' });
    expect(n.domain).toBe('com.microsoft');
  });
});
