import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { TensorData, TensorType } from '../tensor/index.ts';
import { OnnxFormatError } from './errors.ts';
import {
  TensorProto_DataType as DT,
  type StringStringEntryProto,
  StringStringEntryProtoSchema,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProtoSchema,
} from './gen/onnx_pb.ts';
import { onnxDataType, tensorFromProto, tensorToProto, tensorTypeOf } from './tensor.ts';
import { ONNX_TESTDATA } from './testing.ts';

const NODE = `${ONNX_TESTDATA}/node`;

/** Reads `<test>/test_data_set_0/<file>` (a serialized TensorProto). */
function pb(test: string, file: string): TensorProto {
  return fromBinary(
    TensorProtoSchema,
    new Uint8Array(readFileSync(`${NODE}/${test}/test_data_set_0/${file}`)),
  );
}

function load(test: string, file: string): TensorData {
  return tensorFromProto(pb(test, file));
}

/** IEEE half bits -> number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function formatError(fn: () => unknown): OnnxFormatError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OnnxFormatError) return e;
    throw e;
  }
  throw new Error('nothing thrown');
}

describe('tensorFromProto on official ONNX test vectors', () => {
  it('test_qlinearconv inputs and output (uint8 + float32 scalars)', () => {
    const x = load('test_qlinearconv', 'input_0.pb');
    expect(x.type).toBe('uint8');
    expect(x.dims).toEqual([1, 1, 7, 7]);
    expect(Array.from(x.data as Uint8Array)).toEqual([
      255, 174, 162, 25, 203, 168, 58, 15, 59, 237, 95, 129, 0, 64, 56, 242, 153, 221, 168, 12, 166,
      232, 178, 186, 195, 237, 162, 237, 188, 39, 124, 77, 80, 102, 43, 127, 230, 21, 83, 41, 40,
      134, 255, 154, 92, 141, 42, 148, 247,
    ]);
    const xScale = load('test_qlinearconv', 'input_1.pb');
    expect(xScale).toMatchObject({ type: 'float32', dims: [] });
    expect(xScale.data[0]).toBe(Math.fround(0.00369204697));
    expect(load('test_qlinearconv', 'input_2.pb')).toEqual({
      type: 'uint8',
      dims: [],
      data: new Uint8Array([132]),
    });
    expect(load('test_qlinearconv', 'input_3.pb')).toEqual({
      type: 'uint8',
      dims: [1, 1, 1, 1],
      data: new Uint8Array([0]),
    });
    expect(load('test_qlinearconv', 'input_4.pb').data).toEqual(new Float32Array([0.00172794575]));
    expect(load('test_qlinearconv', 'input_5.pb').data).toEqual(new Uint8Array([255]));
    expect(load('test_qlinearconv', 'input_6.pb').data[0]).toBe(Math.fround(0.00162681262));
    expect(load('test_qlinearconv', 'input_7.pb').data).toEqual(new Uint8Array([123]));
    const y = load('test_qlinearconv', 'output_0.pb');
    expect(y.dims).toEqual([1, 1, 7, 7]);
    expect(Array.from(y.data as Uint8Array).slice(0, 14)).toEqual([
      0, 81, 93, 230, 52, 87, 197, 240, 196, 18, 160, 126, 255, 191,
    ]);
    expect(pb('test_qlinearconv', 'input_0.pb').name).toBe('x');
  });

  it('test_matmulinteger: uint8 A and int32 Y', () => {
    expect(load('test_matmulinteger', 'input_0.pb')).toEqual({
      type: 'uint8',
      dims: [4, 3],
      data: new Uint8Array([11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0]),
    });
    expect(load('test_matmulinteger', 'output_0.pb')).toEqual({
      type: 'int32',
      dims: [4, 2],
      data: new Int32Array([-38, -83, -44, -98, -50, -113, -56, -128]),
    });
  });

  it('test_reduce_sum_keepdims_example: float32 data and int64 axes', () => {
    expect(load('test_reduce_sum_keepdims_example', 'input_0.pb')).toEqual({
      type: 'float32',
      dims: [3, 2, 2],
      data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    });
    expect(load('test_reduce_sum_keepdims_example', 'input_1.pb')).toEqual({
      type: 'int64',
      dims: [1],
      data: new BigInt64Array([1n]),
    });
  });

  it('test_clip_default_int8_inbounds: int8', () => {
    expect(load('test_clip_default_int8_inbounds', 'input_0.pb')).toEqual({
      type: 'int8',
      dims: [3],
      data: new Int8Array([-1, 0, 1]),
    });
  });

  it('test_and2d: bool inputs and output agree with logical and', () => {
    const a = load('test_and2d', 'input_0.pb');
    const b = load('test_and2d', 'input_1.pb');
    const y = load('test_and2d', 'output_0.pb');
    expect(a.type).toBe('bool');
    expect(y.dims).toEqual([3, 4]);
    const expected = (a.data as Uint8Array).map((v, i) => v & (b.data as Uint8Array)[i]!);
    expect(y.data).toEqual(expected);
    expect(Array.from(a.data as Uint8Array).slice(0, 8)).toEqual([1, 1, 1, 1, 1, 0, 1, 0]);
  });

  it('test_cast_FLOAT_to_FLOAT16: float16 is raw half bits', () => {
    const x = load('test_cast_FLOAT_to_FLOAT16', 'input_0.pb');
    const y = load('test_cast_FLOAT_to_FLOAT16', 'output_0.pb');
    expect(y.type).toBe('float16');
    expect(Array.from(y.data as Uint16Array).slice(0, 4)).toEqual([14436, 14777, 14546, 14428]);
    (y.data as Uint16Array).forEach((h, i) => {
      expect(Math.abs(halfToFloat(h) - (x.data[i] as number))).toBeLessThan(1e-3);
    });
  });

  it('test_cast_FLOAT16_to_DOUBLE: double narrows to float32 exactly here', () => {
    const x = load('test_cast_FLOAT16_to_DOUBLE', 'input_0.pb');
    const yProto = pb('test_cast_FLOAT16_to_DOUBLE', 'output_0.pb');
    expect(yProto.dataType).toBe(DT.DOUBLE);
    const y = tensorFromProto(yProto);
    expect(y.type).toBe('float32');
    expect(y.dims).toEqual(x.dims);
    expect(Array.from(y.data as Float32Array)).toEqual(
      Array.from(x.data as Uint16Array, halfToFloat),
    );
  });

  it('typed int32_data for an empty tensor (test_constantofshape_int_shape_zero)', () => {
    const p = pb('test_constantofshape_int_shape_zero', 'output_0.pb');
    expect(p.rawData.length).toBe(0);
    expect(tensorFromProto(p)).toEqual({ type: 'int32', dims: [0], data: new Int32Array(0) });
  });

  it('re-encoding every supported raw tensor of the test vectors gives the same raw_data', () => {
    let checked = 0;
    for (const test of readdirSync(NODE)) {
      const dir = `${NODE}/${test}/test_data_set_0`;
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const p = pb(test, f);
        if (p.rawData.length === 0 || tensorTypeOf(p.dataType) === undefined) continue;
        if (p.dataType === DT.BOOL && p.rawData.some((b) => b > 1)) continue;
        const back = tensorToProto(p.name, tensorFromProto(p));
        expect(back.dims).toEqual(p.dims);
        expect(back.dataType).toBe(p.dataType);
        expect(Buffer.from(back.rawData).equals(Buffer.from(p.rawData)), `${test}/${f}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1500);
  });
});

describe('tensorFromProto on raw_data inside a larger buffer', () => {
  it('reads a float32 tensor whose raw_data is a Node Buffer view at an odd offset', () => {
    // decodeModel(readFileSync(...)) leaves raw_data as views into the file's pooled Buffer;
    // Buffer.slice() is a view, so a copy must not rely on it (found importing a PyTorch file).
    const pool = Buffer.alloc(64);
    new Uint8Array(new Float32Array([1.5, -2.25]).buffer).forEach((b, i) => {
      pool[7 + i] = b;
    });
    const raw = pool.subarray(7, 15);
    const t = create(TensorProtoSchema, { dataType: 1, dims: [2n], rawData: raw });
    expect(tensorFromProto(t)).toEqual({
      type: 'float32',
      dims: [2],
      data: new Float32Array([1.5, -2.25]),
    });
  });
});

describe('tensorFromProto on typed *_data fields', () => {
  /** TensorProto with dims given as numbers. */
  const make = ({
    dims,
    ...rest
  }: {
    dims: number[];
    dataType: number;
    name?: string;
    floatData?: number[];
    doubleData?: number[];
    int32Data?: number[];
    int64Data?: bigint[];
    rawData?: Uint8Array;
    dataLocation?: TensorProto_DataLocation;
    externalData?: StringStringEntryProto[];
  }) => create(TensorProtoSchema, { ...rest, dims: dims.map((d) => BigInt(d)) });

  it('float_data, double_data, int64_data', () => {
    expect(tensorFromProto(make({ dataType: DT.FLOAT, dims: [2], floatData: [1.5, -2] }))).toEqual({
      type: 'float32',
      dims: [2],
      data: new Float32Array([1.5, -2]),
    });
    expect(
      tensorFromProto(make({ dataType: DT.DOUBLE, dims: [1, 2], doubleData: [0.1, 1e40] })),
    ).toEqual({
      type: 'float32',
      dims: [1, 2],
      data: new Float32Array([0.1, Number.POSITIVE_INFINITY]),
    });
    expect(
      tensorFromProto(make({ dataType: DT.INT64, dims: [2], int64Data: [-(2n ** 63n), 5n] })),
    ).toEqual({ type: 'int64', dims: [2], data: new BigInt64Array([-(2n ** 63n), 5n]) });
  });

  it('int32_data for int32, int8, uint8, bool and float16', () => {
    const of = (dataType: number, values: number[]) =>
      tensorFromProto(make({ dataType, dims: [values.length], int32Data: values }));
    expect(of(DT.INT32, [-7, 2147483647]).data).toEqual(new Int32Array([-7, 2147483647]));
    expect(of(DT.INT8, [-128, 127]).data).toEqual(new Int8Array([-128, 127]));
    expect(of(DT.UINT8, [0, 255]).data).toEqual(new Uint8Array([0, 255]));
    expect(of(DT.BOOL, [0, 1, 2]).data).toEqual(new Uint8Array([0, 1, 1]));
    expect(of(DT.FLOAT16, [0x3c00, 0xfc00]).data).toEqual(new Uint16Array([0x3c00, 0xfc00]));
  });

  it('raw_data is little-endian', () => {
    const t = tensorFromProto(
      make({ dataType: DT.FLOAT, dims: [1], rawData: new Uint8Array([0, 0, 0x80, 0x3f]) }),
    );
    expect(t.data).toEqual(new Float32Array([1]));
    const i = tensorFromProto(
      make({ dataType: DT.INT32, dims: [1], rawData: new Uint8Array([0xfe, 0xff, 0xff, 0xff]) }),
    );
    expect(i.data).toEqual(new Int32Array([-2]));
  });

  it('reads raw_data from an unaligned view', () => {
    const backing = new Uint8Array(9);
    backing.set([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40], 1);
    const t = tensorFromProto(
      make({ dataType: DT.FLOAT, dims: [2], rawData: backing.subarray(1) }),
    );
    expect(t.data).toEqual(new Float32Array([1, 2]));
  });

  it('rejects external data, wrong sizes and unsupported types', () => {
    const ext = make({
      name: 'w',
      dataType: DT.FLOAT,
      dims: [4],
      dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: [create(StringStringEntryProtoSchema, { key: 'location', value: 'w.bin' })],
    });
    const e = formatError(() => tensorFromProto(ext));
    expect(e.code).toBe('external-data');
    expect(e.message).toMatch(/'w'/);
    expect(
      formatError(() => tensorFromProto(make({ dataType: DT.FLOAT, dims: [3], floatData: [1] })))
        .code,
    ).toBe('invalid-tensor');
    expect(
      formatError(() =>
        tensorFromProto(make({ dataType: DT.FLOAT, dims: [2], rawData: new Uint8Array(7) })),
      ).code,
    ).toBe('invalid-tensor');
    expect(formatError(() => tensorFromProto(make({ dataType: DT.FLOAT, dims: [2] }))).code).toBe(
      'invalid-tensor',
    );
    expect(
      formatError(() => tensorFromProto(make({ dataType: DT.FLOAT, dims: [-1], floatData: [] })))
        .code,
    ).toBe('invalid-tensor');
    expect(
      formatError(() => tensorFromProto(pb('test_bitshift_left_uint16', 'input_0.pb'))).code,
    ).toBe('unsupported-dtype');
    expect(
      formatError(() => tensorFromProto(pb('test_cast_FLOAT_to_STRING', 'output_0.pb'))).code,
    ).toBe('unsupported-dtype');
  });
});

describe('tensorToProto', () => {
  const samples: TensorData[] = [
    { type: 'float32', dims: [2, 2], data: new Float32Array([1, -0.5, 3.25, Number.NaN]) },
    { type: 'float16', dims: [2], data: new Uint16Array([0x3c00, 0x8001]) },
    { type: 'int64', dims: [2], data: new BigInt64Array([-1n, 2n ** 62n]) },
    { type: 'int32', dims: [1], data: new Int32Array([-2147483648]) },
    { type: 'int8', dims: [3], data: new Int8Array([-128, 0, 127]) },
    { type: 'uint8', dims: [], data: new Uint8Array([200]) },
    { type: 'bool', dims: [3], data: new Uint8Array([0, 1, 1]) },
    { type: 'float32', dims: [0, 3], data: new Float32Array(0) },
  ];

  it.each(samples.map((s) => [s.type, s.dims.join('x') || 'scalar', s] as const))(
    '%s [%s] survives proto -> bytes -> proto -> TensorData',
    (_type, _dims, t) => {
      const p = tensorToProto('t', t);
      expect(p.dataType).toBe(onnxDataType(t.type as TensorType));
      const back = tensorFromProto(fromBinary(TensorProtoSchema, toBinary(TensorProtoSchema, p)));
      expect(back).toEqual(t);
    },
  );

  it('writes little-endian raw_data with name, dims and data_type', () => {
    const p = tensorToProto('one', { type: 'float32', dims: [1], data: new Float32Array([1]) });
    expect(p.name).toBe('one');
    expect(p.dims).toEqual([1n]);
    expect(p.dataType).toBe(DT.FLOAT);
    expect(Array.from(p.rawData)).toEqual([0, 0, 0x80, 0x3f]);
    const b = tensorToProto('b', { type: 'bool', dims: [2], data: new Uint8Array([0, 7]) });
    expect(Array.from(b.rawData)).toEqual([0, 1]);
  });

  it('rejects data that does not match dims', () => {
    expect(
      formatError(() => tensorToProto('x', { type: 'int8', dims: [4], data: new Int8Array(3) }))
        .code,
    ).toBe('invalid-tensor');
  });
});
