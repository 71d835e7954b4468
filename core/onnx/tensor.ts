/**
 * Conversion between ONNX `TensorProto` and the pipeline's plain `TensorData`.
 * Data is read from `raw_data` (little-endian, as the spec requires) or from the typed
 * `*_data` fields; tensors are written with `raw_data`, the way PyTorch writes initializers.
 */
import { create } from '@bufbuild/protobuf';
import type { TensorArrays, TensorData, TensorType } from '../tensor/index.ts';
import { OnnxFormatError } from './errors.ts';
import {
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
} from './gen/onnx_pb.ts';

const DATA_TYPE_OF: Record<TensorType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  int64: TensorProto_DataType.INT64,
  int32: TensorProto_DataType.INT32,
  int8: TensorProto_DataType.INT8,
  uint8: TensorProto_DataType.UINT8,
  bool: TensorProto_DataType.BOOL,
};

const TENSOR_TYPE_OF = new Map<number, TensorType>(
  Object.entries(DATA_TYPE_OF).map(([k, v]) => [v, k as TensorType]),
);

const BYTES_PER_ELEMENT: Record<TensorType, number> = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ONNX `TensorProto.DataType` number for a pipeline element type (`'float32'` -> 1). */
export function onnxDataType(type: TensorType): TensorProto_DataType {
  return DATA_TYPE_OF[type];
}

/**
 * Pipeline element type for an ONNX `TensorProto.DataType` number, or `undefined` when
 * `TensorData` has no such type (DOUBLE is `undefined` here even though
 * {@link tensorFromProto} reads it, narrowing to float32).
 */
export function tensorTypeOf(dataType: number): TensorType | undefined {
  return TENSOR_TYPE_OF.get(dataType);
}

/** Human name of an ONNX data type number, e.g. 1 -> `FLOAT`, for error messages. */
export function dataTypeName(dataType: number): string {
  return TensorProto_DataType[dataType] ?? `data_type ${dataType}`;
}

/** True when the tensor's bytes live in an external file (`data_location = EXTERNAL`). */
export function hasExternalData(t: TensorProto): boolean {
  return t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0;
}

/** Dimensions of a TensorProto as plain numbers, rejecting negative or unsafe sizes. */
export function protoDims(t: TensorProto): number[] {
  return t.dims.map((d) => {
    if (d < 0n || d > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new OnnxFormatError('invalid-tensor', `tensor '${t.name}' has invalid dimension ${d}`);
    }
    return Number(d);
  });
}

/** Copies `bytes` into a fresh, aligned buffer in host byte order (input is little-endian). */
function hostOrder(bytes: Uint8Array, size: number): ArrayBuffer {
  // A copy with its own buffer: `bytes.slice()` would not do for a Node Buffer (a model read
  // with readFileSync), whose slice() is a view into a shared pool.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (!LITTLE_ENDIAN && size > 1) {
    for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  }
  return copy.buffer;
}

/** Little-endian bytes of a typed array (a copy). */
function littleEndianBytes(data: ArrayBufferView, size: number): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (!LITTLE_ENDIAN && size > 1) {
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  }
  return bytes;
}

function fromRaw(type: TensorType | 'float64', raw: Uint8Array): TensorArrays[TensorType] {
  switch (type) {
    case 'float32':
      return new Float32Array(hostOrder(raw, 4));
    case 'float64':
      return Float32Array.from(new Float64Array(hostOrder(raw, 8)));
    case 'float16':
      return new Uint16Array(hostOrder(raw, 2));
    case 'int64':
      return new BigInt64Array(hostOrder(raw, 8));
    case 'int32':
      return new Int32Array(hostOrder(raw, 4));
    case 'int8':
      return new Int8Array(hostOrder(raw, 1));
    case 'uint8':
      return raw.slice();
    case 'bool':
      return raw.map((b) => (b === 0 ? 0 : 1));
  }
}

function fromTypedFields(type: TensorType | 'float64', t: TensorProto): TensorArrays[TensorType] {
  switch (type) {
    case 'float32':
      return Float32Array.from(t.floatData);
    case 'float64':
      return Float32Array.from(t.doubleData);
    case 'float16':
      return Uint16Array.from(t.int32Data, (v) => v & 0xffff);
    case 'int64':
      return BigInt64Array.from(t.int64Data);
    case 'int32':
      return Int32Array.from(t.int32Data);
    case 'int8':
      return Int8Array.from(t.int32Data);
    case 'uint8':
      return Uint8Array.from(t.int32Data);
    case 'bool':
      return Uint8Array.from(t.int32Data, (v) => (v === 0 ? 0 : 1));
  }
}

function typedFieldLength(type: TensorType | 'float64', t: TensorProto): number {
  if (type === 'float32') return t.floatData.length;
  if (type === 'float64') return t.doubleData.length;
  if (type === 'int64') return t.int64Data.length;
  return t.int32Data.length;
}

/**
 * Reads a `TensorProto` into a `TensorData`: float, float16 (raw half bits), int8, uint8,
 * int32, int64, bool, and double (narrowed to float32). Reads `raw_data` when present,
 * else the typed field (`float_data`, `int32_data`, `int64_data`, `double_data`).
 * @throws OnnxFormatError `external-data` for tensors stored outside the model,
 *   `unsupported-dtype` for other element types, `invalid-tensor` when the element count
 *   does not match `dims` or the tensor is segmented.
 * @example tensorFromProto(model.graph!.initializer[0]!) // { type: 'float32', dims: [8, 1, 3, 3], data }
 */
export function tensorFromProto(t: TensorProto): TensorData {
  const label = t.name ? `tensor '${t.name}'` : 'tensor';
  if (hasExternalData(t)) {
    throw new OnnxFormatError(
      'external-data',
      `${label} keeps its data in an external file; re-export the model with the weights embedded (onnx.save(..., save_as_external_data=False))`,
    );
  }
  if (t.segment !== undefined) {
    throw new OnnxFormatError('invalid-tensor', `${label} is segmented, which is not supported`);
  }
  const type: TensorType | 'float64' | undefined =
    t.dataType === TensorProto_DataType.DOUBLE ? 'float64' : tensorTypeOf(t.dataType);
  if (type === undefined) {
    throw new OnnxFormatError(
      'unsupported-dtype',
      `${label} has element type ${dataTypeName(t.dataType)}, which is not supported`,
    );
  }
  const dims = protoDims(t);
  let count = 1;
  for (const d of dims) count *= d;
  let data: TensorArrays[TensorType];
  if (t.rawData.length > 0) {
    const size = type === 'float64' ? 8 : BYTES_PER_ELEMENT[type];
    if (t.rawData.length !== count * size) {
      throw new OnnxFormatError(
        'invalid-tensor',
        `${label} [${dims.join(',')}] needs ${count * size} bytes of raw_data, has ${t.rawData.length}`,
      );
    }
    data = fromRaw(type, t.rawData);
  } else {
    const n = typedFieldLength(type, t);
    if (n !== count) {
      throw new OnnxFormatError(
        'invalid-tensor',
        `${label} [${dims.join(',')}] needs ${count} elements, has ${n}`,
      );
    }
    data = fromTypedFields(type, t);
  }
  return { type: type === 'float64' ? 'float32' : type, dims, data } as TensorData;
}

/**
 * Writes a `TensorData` as a named `TensorProto` with little-endian `raw_data`
 * (bool as one byte 0/1 per element).
 * @example tensorToProto('w', tensor('int8', [2], new Int8Array([-1, 3])))
 */
export function tensorToProto(name: string, t: TensorData): TensorProto {
  let count = 1;
  for (const d of t.dims) count *= d;
  if (t.data.length !== count) {
    throw new OnnxFormatError(
      'invalid-tensor',
      `tensor '${name}' [${t.dims.join(',')}] needs ${count} elements, has ${t.data.length}`,
    );
  }
  const rawData =
    t.type === 'bool'
      ? (t.data as Uint8Array).map((b) => (b === 0 ? 0 : 1))
      : littleEndianBytes(t.data, BYTES_PER_ELEMENT[t.type]);
  return create(TensorProtoSchema, {
    name,
    dims: t.dims.map((d) => BigInt(d)),
    dataType: DATA_TYPE_OF[t.type],
    rawData,
  });
}
