import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { makeAttrGraph, makeGraph, makeModel, makeNode, makeTensorValueInfo } from './builder.ts';
import { decodeModel, encodeModel } from './codec.ts';
import { type OnnxErrorCode, OnnxFormatError } from './errors.ts';
import {
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
} from './gen/onnx_pb.ts';
import { tensorToProto } from './tensor.ts';
import {
  modelFiles,
  ONNX_TESTDATA,
  randomBytes,
  seededRandom,
  tinyConvModel,
  ZOO_DIR,
} from './testing.ts';

/** The OnnxFormatError `fn` throws (fails the test if it throws anything else or nothing). */
function formatError(fn: () => unknown): OnnxFormatError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OnnxFormatError) return e;
    throw new Error(`expected OnnxFormatError, got ${String(e)}`);
  }
  throw new Error('expected OnnxFormatError, nothing was thrown');
}

function expectCode(bytes: Uint8Array, code: OnnxErrorCode): OnnxFormatError {
  const e = formatError(() => decodeModel(bytes));
  expect(e.code, e.message).toBe(code);
  expect(e.message.length).toBeGreaterThan(10);
  return e;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.length),
      Buffer.from(b.buffer, b.byteOffset, b.length),
    ) === 0
  );
}

/** Round-trips every file, returning the ones whose bytes changed. */
function roundTripFailures(files: string[], validate: boolean): string[] {
  const bad: string[] = [];
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(f));
    const out = encodeModel(decodeModel(bytes, { validate }));
    if (!sameBytes(out, bytes)) bad.push(`${f} (${bytes.length} -> ${out.length} bytes)`);
  }
  return bad;
}

describe('byte-identical round trip', () => {
  const SMALL = 1 << 20;

  it.each([
    ['node', 900],
    ['pytorch-converted', 50],
    ['pytorch-operator', 30],
    ['simple', 15],
  ])('libonnx-testdata %s/*/model.onnx', (dir, atLeast) => {
    const files = modelFiles(`${ONNX_TESTDATA}/${dir}`, SMALL);
    expect(files.length).toBeGreaterThanOrEqual(atLeast);
    // Validation off: many of these use opsets below 9 (they still must round-trip).
    expect(roundTripFailures(files, false)).toEqual([]);
  });

  it('zoo/*/model.onnx (whatever exists now), validated', () => {
    const files = modelFiles(ZOO_DIR);
    expect(roundTripFailures(files, true)).toEqual([]);
  });

  it('validates every libonnx node model in the supported opset range', () => {
    let accepted = 0;
    for (const f of modelFiles(`${ONNX_TESTDATA}/node`, SMALL)) {
      const bytes = new Uint8Array(readFileSync(f));
      const raw = decodeModel(bytes, { validate: false });
      const opset = raw.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
      if (opset === undefined || opset.version < 9n || opset.version > 21n) {
        expect(formatError(() => decodeModel(bytes)).code, f).toBe('unsupported-opset');
      } else {
        decodeModel(bytes);
        accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(700);
  });

  it('keeps unknown fields (top level and nested) and explicit proto2 defaults', () => {
    const model = tinyConvModel();
    const graph = model.graph!;
    graph.node[0]!.docString = ''; // explicitly present, default value
    // graph bytes + an unknown field 99 (varint 7) at its end
    const graphBytes = new BinaryWriter()
      .raw(toBinary(GraphProtoSchema, graph))
      .tag(99, WireType.Varint)
      .int32(7)
      .finish();
    const bytes = new BinaryWriter()
      .tag(1, WireType.Varint)
      .int64(8n)
      .tag(7, WireType.LengthDelimited)
      .bytes(graphBytes)
      .tag(8, WireType.LengthDelimited)
      .bytes(toBinary(OperatorSetIdProtoSchema, model.opsetImport[0]!))
      .tag(500, WireType.LengthDelimited)
      .string('from a newer onnx.proto')
      .finish();
    const decoded = decodeModel(bytes);
    expect(decoded.graph!.$unknown?.map((u) => u.no)).toEqual([99]);
    expect(decoded.$unknown?.map((u) => u.no)).toEqual([500]);
    expect(sameBytes(encodeModel(decoded), bytes)).toBe(true);
  });

  it('moves an unknown field that sat between known ones to the end (content preserved)', () => {
    const model = tinyConvModel();
    const bytes = new BinaryWriter()
      .tag(1, WireType.Varint)
      .int64(8n)
      .tag(30, WireType.Varint)
      .int32(1)
      .tag(7, WireType.LengthDelimited)
      .bytes(toBinary(GraphProtoSchema, model.graph!))
      .tag(8, WireType.LengthDelimited)
      .bytes(toBinary(OperatorSetIdProtoSchema, model.opsetImport[0]!))
      .finish();
    const out = encodeModel(decodeModel(bytes));
    expect(out.length).toBe(bytes.length);
    expect(sameBytes(out, bytes)).toBe(false);
    expect(equals(ModelProtoSchema, fromBinary(ModelProtoSchema, out), decodeModel(bytes))).toBe(
      true,
    );
  });
});

describe('malformed input gives OnnxFormatError', () => {
  const good = encodeModel(tinyConvModel());

  it('accepts the well-formed fixture', () => {
    const m = decodeModel(good);
    expect(m.graph!.node.map((n) => n.opType)).toEqual(['Conv', 'Relu']);
    expect(m.irVersion).toBe(8n);
  });

  it('empty file -> empty', () => {
    expectCode(new Uint8Array(0), 'empty');
  });

  it('truncated model -> truncated', () => {
    for (const cut of [good.length - 1, good.length - 3, Math.floor(good.length / 2), 4]) {
      expectCode(good.subarray(0, cut), 'truncated');
    }
  });

  it('every truncation of a real model is an OnnxFormatError, never a crash', () => {
    const files = modelFiles(`${ONNX_TESTDATA}/pytorch-operator`);
    const real = new Uint8Array(readFileSync(files.find((f) => f.includes('test_operator_conv'))!));
    const codes = new Set<string>();
    for (let cut = 1; cut < real.length; cut++) {
      codes.add(formatError(() => decodeModel(real.subarray(0, cut))).code);
    }
    expect(codes.has('truncated')).toBe(true);
    expect(
      [...codes].every((c) =>
        ['truncated', 'unsupported-opset', 'unsupported-ir', 'not-onnx', 'invalid-graph'].includes(
          c,
        ),
      ),
    ).toBe(true);
  });

  it.each([1, 2, 3, 42, 1234, 99991])('random bytes (seed %i) -> not-onnx or truncated', (seed) => {
    for (const n of [1, 7, 64, 1000, 65536]) {
      const e = formatError(() => decodeModel(randomBytes(seed * 7919 + n, n)));
      expect(['not-onnx', 'truncated'], `${n} bytes: ${e.message}`).toContain(e.code);
    }
  });

  it('random bytes are mostly recognised as not ONNX', () => {
    let notOnnx = 0;
    for (let seed = 0; seed < 200; seed++) {
      if (formatError(() => decodeModel(randomBytes(seed, 512))).code === 'not-onnx') notOnnx++;
    }
    expect(notOnnx).toBeGreaterThan(150);
  });

  it('bit flips in a valid model never crash (seeded)', () => {
    for (let seed = 0; seed < 300; seed++) {
      const rand = seededRandom(seed);
      const bytes = good.slice();
      for (let k = 0; k < 3; k++) {
        const at = Math.floor(rand() * bytes.length);
        bytes[at] = bytes[at]! ^ (1 << Math.floor(rand() * 8));
      }
      try {
        decodeModel(bytes);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(OnnxFormatError);
      }
    }
  });

  it('a JSON file renamed .onnx -> not-onnx', () => {
    const json = new TextEncoder().encode(
      JSON.stringify({ irVersion: 8, graph: { node: [{ opType: 'Relu' }] } }, null, 2),
    );
    expectCode(json, 'not-onnx');
    expectCode(new TextEncoder().encode('[1, 2, 3]'), 'not-onnx');
  });

  it('a PNG header -> not-onnx', () => {
    expectCode(
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]),
      'not-onnx',
    );
  });

  it('wrong or missing IR version -> unsupported-ir', () => {
    expect(
      expectCode(encodeModel(tinyConvModel({ irVersion: 99 })), 'unsupported-ir').message,
    ).toMatch(/99/);
    expectCode(encodeModel(tinyConvModel({ irVersion: 2 })), 'unsupported-ir');
    const noIr = tinyConvModel();
    noIr.irVersion = 0n;
    expectCode(encodeModel(noIr), 'unsupported-ir');
  });

  it('opset outside 9..21 or no default domain -> unsupported-opset', () => {
    expect(
      expectCode(encodeModel(tinyConvModel({ opset: 8 })), 'unsupported-opset').message,
    ).toMatch(/opset 8/);
    expectCode(encodeModel(tinyConvModel({ opset: 22 })), 'unsupported-opset');
    const custom = tinyConvModel();
    custom.opsetImport = [create(OperatorSetIdProtoSchema, { domain: 'com.example', version: 1n })];
    expectCode(encodeModel(custom), 'unsupported-opset');
    const aiOnnx = tinyConvModel();
    aiOnnx.opsetImport[0]!.domain = 'ai.onnx';
    expect(decodeModel(encodeModel(aiOnnx)).graph).toBeDefined();
  });

  it('no graph -> invalid-graph', () => {
    const m = tinyConvModel();
    m.graph = undefined;
    expectCode(encodeModel(m), 'invalid-graph');
  });

  it('node reading a missing initializer -> invalid-graph', () => {
    const m = tinyConvModel();
    m.graph!.initializer = m.graph!.initializer.filter((t) => t.name !== 'w');
    expect(expectCode(encodeModel(m), 'invalid-graph').message).toMatch(/'w'/);
  });

  it('graph output nobody produces -> invalid-graph', () => {
    const m = tinyConvModel();
    m.graph!.output.push(makeTensorValueInfo('ghost', 'float32'));
    expect(expectCode(encodeModel(m), 'invalid-graph').message).toMatch(/ghost/);
  });

  it('tensor produced twice -> invalid-graph', () => {
    const m = tinyConvModel();
    m.graph!.node.push(makeNode('Relu', ['x'], ['c']));
    expectCode(encodeModel(m), 'invalid-graph');
  });

  it('cycle -> invalid-graph', () => {
    const m = tinyConvModel();
    m.graph!.node[0]!.input[0] = 'y'; // Conv reads Relu's output, Relu reads Conv's
    m.graph!.input = [];
    expect(expectCode(encodeModel(m), 'invalid-graph').message).toMatch(/cycle/);
  });

  it('optional inputs given as empty names are accepted', () => {
    const m = tinyConvModel();
    m.graph!.node[0]!.input[2] = '';
    expect(decodeModel(encodeModel(m)).graph!.node[0]!.input).toEqual(['x', 'w', '']);
  });

  it('subgraphs may read outer-scope names but not unknown ones', () => {
    const branch = (name: string, reads: string) =>
      makeGraph({
        name,
        nodes: [makeNode('Identity', [reads], [`${name}_out`])],
        inputs: [],
        outputs: [makeTensorValueInfo(`${name}_out`, 'float32')],
      });
    const model = (reads: string): ModelProto =>
      makeModel(
        makeGraph({
          nodes: [
            makeNode('Relu', ['x'], ['r']),
            makeNode(
              'If',
              ['cond'],
              ['y'],
              [
                makeAttrGraph('then_branch', branch('then', 'r')),
                makeAttrGraph('else_branch', branch('else', reads)),
              ],
            ),
          ],
          inputs: [
            makeTensorValueInfo('x', 'float32', [2]),
            makeTensorValueInfo('cond', 'bool', []),
          ],
          outputs: [makeTensorValueInfo('y', 'float32', [2])],
        }),
      );
    expect(decodeModel(encodeModel(model('x'))).graph!.node).toHaveLength(2);
    expect(expectCode(encodeModel(model('nowhere')), 'invalid-graph').message).toMatch(/nowhere/);
  });

  it('initializer with external data -> external-data', () => {
    const m = tinyConvModel();
    const w = m.graph!.initializer[0]!;
    w.rawData = new Uint8Array(0);
    w.dataLocation = TensorProto_DataLocation.EXTERNAL;
    w.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: 'weights.bin' }),
    ];
    expect(expectCode(encodeModel(m), 'external-data').message).toMatch(/external/);
  });

  it('validate: false skips the structural checks', () => {
    const bytes = encodeModel(tinyConvModel({ opset: 7 }));
    expect(decodeModel(bytes, { validate: false }).opsetImport[0]!.version).toBe(7n);
  });

  it('a tensor initializer built from TensorData survives the round trip', () => {
    const m = tinyConvModel();
    m.graph!.initializer.push(
      tensorToProto('extra', { type: 'int8', dims: [3], data: new Int8Array([-128, 0, 127]) }),
    );
    const bytes = encodeModel(m);
    expect(sameBytes(encodeModel(decodeModel(bytes)), bytes)).toBe(true);
  });
});

describe('workerd safety', () => {
  it('neither the generated code nor the protobuf-es runtime generates code at runtime', () => {
    const roots = [
      fileURLToPath(new URL('./gen', import.meta.url)),
      fileURLToPath(new URL('../../node_modules/@bufbuild/protobuf/dist/esm', import.meta.url)),
    ];
    const offenders: string[] = [];
    let scanned = 0;
    for (const root of roots) {
      for (const rel of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
        if (!/\.(ts|js|mjs)$/.test(rel) || rel.endsWith('.d.ts')) continue;
        const text = readFileSync(`${root}/${rel}`, 'utf8');
        scanned++;
        if (/new Function\s*\(|\beval\s*\(/.test(text)) offenders.push(`${root}/${rel}`);
      }
    }
    expect(scanned).toBeGreaterThan(20);
    expect(offenders).toEqual([]);
  });
});
