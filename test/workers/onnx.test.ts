/**
 * core/onnx inside workerd (Cloudflare Workers runtime), where deployed Workers may not
 * generate code at runtime (`eval`, `new Function`): decoding and encoding must work with the
 * pre-generated protobuf code alone. The model is built here, so no file import is needed.
 */
import { describe, expect, it } from 'vitest';
import {
  attrInts,
  constantLookup,
  decodeModel,
  encodeModel,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  OnnxFormatError,
  tensorToProto,
  topologicalOrder,
  withOutputs,
} from '../../core/onnx/index.ts';

function model(): Uint8Array {
  const w = new Float32Array(18).map((_, i) => (i - 9) / 10);
  return encodeModel(
    makeModel(
      makeGraph({
        name: 'workerd',
        nodes: [
          makeNode('Relu', ['c'], ['y'], [], { name: 'relu' }),
          makeNode('Conv', ['x', 'w', 'b'], ['c'], [makeAttrInts('pads', [1, 1, 1, 1])], {
            name: 'conv',
          }),
        ],
        inputs: [makeTensorValueInfo('x', 'float32', ['batch', 1, 4, 4])],
        outputs: [makeTensorValueInfo('y', 'float32', ['batch', 2, 4, 4])],
        initializers: [
          tensorToProto('w', { type: 'float32', dims: [2, 1, 3, 3], data: w }),
          tensorToProto('b', { type: 'float32', dims: [2], data: new Float32Array([0.5, -0.5]) }),
        ],
      }),
      { opset: 17 },
    ),
  );
}

describe('core/onnx in workerd', () => {
  it('runs in workerd', () => {
    // The pool lets the test harness itself use eval, so this cannot check that code
    // generation is off; core/onnx/codec.test.ts scans the protobuf code for it instead.
    expect(navigator.userAgent).toBe('Cloudflare-Workers');
  });

  it('decodes and re-encodes byte-identically', () => {
    const bytes = model();
    const decoded = decodeModel(bytes);
    expect(decoded.irVersion).toBe(8n);
    expect(decoded.graph!.node.map((n) => n.opType)).toEqual(['Relu', 'Conv']);
    expect(attrInts(decoded.graph!.node[1]!, 'pads')).toEqual([1, 1, 1, 1]);
    expect(constantLookup(decoded.graph!).value('b')?.data).toEqual(new Float32Array([0.5, -0.5]));
    expect(topologicalOrder(decoded.graph!).map((n) => n.name)).toEqual(['conv', 'relu']);
    const again = encodeModel(decoded);
    expect(again.length).toBe(bytes.length);
    expect(again.every((b, i) => b === bytes[i])).toBe(true);
    const wide = decodeModel(encodeModel(withOutputs(decoded, ['c'])));
    expect(wide.graph!.output.map((o) => o.name)).toEqual(['y', 'c']);
  });

  it('rejects malformed bytes with OnnxFormatError', () => {
    const bytes = model();
    for (const [bad, code] of [
      [new Uint8Array(0), 'empty'],
      [bytes.subarray(0, bytes.length >> 1), 'truncated'],
      [new TextEncoder().encode('{"irVersion": 8}'), 'not-onnx'],
    ] as const) {
      let caught: unknown;
      try {
        decodeModel(bad);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(OnnxFormatError);
      expect((caught as OnnxFormatError).code).toBe(code);
    }
  });
});
