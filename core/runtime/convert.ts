/**
 * Conversions between the project's `TensorData` and onnxruntime-web tensors, and the checks
 * that guard a session's feeds. Pure: no ORT value is imported here, the `Tensor` constructor
 * comes from whichever ORT module the configured loader supplied.
 */

import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-web';
import { elementCount, type TensorData, type TensorType } from '../tensor/index.ts';

/** The `Tensor` constructor of the loaded ORT module. */
export type OrtTensorConstructor = new (
  type: TensorType,
  data: TensorData['data'],
  dims: readonly number[],
) => OrtTensor;

/** Typed-array class expected for each `TensorType` (float16 travels as raw Uint16 bits). */
const ARRAY_CLASS: Record<TensorType, { name: string; isInstance: (d: unknown) => boolean }> = {
  float32: { name: 'Float32Array', isInstance: (d) => d instanceof Float32Array },
  float16: { name: 'Uint16Array', isInstance: (d) => d instanceof Uint16Array },
  int64: { name: 'BigInt64Array', isInstance: (d) => d instanceof BigInt64Array },
  int32: { name: 'Int32Array', isInstance: (d) => d instanceof Int32Array },
  int8: { name: 'Int8Array', isInstance: (d) => d instanceof Int8Array },
  uint8: { name: 'Uint8Array', isInstance: (d) => d instanceof Uint8Array },
  bool: { name: 'Uint8Array', isInstance: (d) => d instanceof Uint8Array },
};

/** True if `t` is one of the project's tensor element types. */
export function isTensorType(t: unknown): t is TensorType {
  return typeof t === 'string' && Object.hasOwn(ARRAY_CLASS, t);
}

/**
 * Checks one feed against the model's declared input (type, rank, fixed dimensions) and its own
 * consistency (data class and length). Throws TypeError for a wrong type, RangeError for a wrong
 * shape or length.
 */
export function checkFeed(
  name: string,
  feed: TensorData,
  meta: InferenceSession.ValueMetadata | undefined,
): void {
  const where = `createSession.run: input '${name}'`;
  if (feed === null || typeof feed !== 'object') {
    throw new TypeError(
      `${where} must be a TensorData object, got ${feed === null ? 'null' : typeof feed}`,
    );
  }
  if (!isTensorType(feed.type)) {
    throw new TypeError(
      `${where} has unsupported type '${String(feed.type)}' (expected one of ${Object.keys(ARRAY_CLASS).join(', ')})`,
    );
  }
  const cls = ARRAY_CLASS[feed.type];
  if (!cls.isInstance(feed.data)) {
    const got = (feed.data as { constructor?: { name?: string } } | undefined)?.constructor?.name;
    throw new TypeError(
      `${where}: type ${feed.type} needs a ${cls.name}, got ${got ?? typeof feed.data}`,
    );
  }
  if (!Array.isArray(feed.dims) || !feed.dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(
      `${where}: dims must be non-negative integers, got [${String(feed.dims)}]`,
    );
  }
  const n = elementCount(feed.dims);
  if (feed.data.length !== n) {
    throw new RangeError(
      `${where}: ${feed.type}[${feed.dims.join(',')}] needs ${n} elements, got ${feed.data.length}`,
    );
  }
  if (meta === undefined || !meta.isTensor) return;
  if (meta.type !== feed.type) {
    throw new TypeError(`${where} expects ${meta.type}, got ${feed.type}`);
  }
  // ORT reports an empty shape when the model declares none; a scalar declares [] too, so an
  // empty declared shape is only trusted when the feed is itself a scalar.
  const declared = meta.shape;
  if (declared.length === 0 && feed.dims.length !== 0) return;
  if (declared.length !== feed.dims.length) {
    throw new RangeError(
      `${where} expects rank ${declared.length} [${declared.join(',')}], got [${feed.dims.join(',')}]`,
    );
  }
  for (let i = 0; i < declared.length; i++) {
    const d = declared[i];
    // Unknown dims come back as a symbol name (string), or as -1 read as uint32 (4294967295).
    const known = typeof d === 'number' && d >= 0 && d <= 0x7fffffff;
    if (known && d !== feed.dims[i]) {
      throw new RangeError(
        `${where} expects dims [${declared.join(',')}], got [${feed.dims.join(',')}] (axis ${i})`,
      );
    }
  }
}

/** Wraps a checked `TensorData` as an ORT tensor (no copy). */
export function toOrtTensor(Tensor: OrtTensorConstructor, feed: TensorData): OrtTensor {
  return new Tensor(feed.type, feed.data, feed.dims);
}

/**
 * Converts an ORT output to `TensorData`. float16 comes back either as raw Uint16 bits or, where
 * the platform has `Float16Array`, as a Float16Array: both are returned as the raw Uint16 bits.
 * Data that still lives in a shared (WASM) buffer is copied out.
 */
export function fromOrtTensor(name: string, value: OrtTensor): TensorData {
  const type = value.type;
  if (!isTensorType(type)) {
    throw new TypeError(`createSession.run: output '${name}' has unsupported type '${type}'`);
  }
  if (value.location !== 'cpu' && value.location !== 'cpu-pinned') {
    throw new TypeError(
      `createSession.run: output '${name}' is on '${value.location}', not the CPU`,
    );
  }
  const dims = [...value.dims];
  let data = value.data as unknown as ArrayBufferView & { length: number };
  if (type === 'float16' && !(data instanceof Uint16Array)) {
    data = new Uint16Array(data.buffer, data.byteOffset, data.length);
  }
  if (!ARRAY_CLASS[type].isInstance(data)) {
    throw new TypeError(
      `createSession.run: output '${name}' (${type}) came back as ${data.constructor.name}`,
    );
  }
  const out = data as unknown as TensorData['data'];
  const copied =
    out.buffer instanceof ArrayBuffer ? out : (out.slice() as unknown as TensorData['data']);
  return { type, dims, data: copied } as TensorData;
}
