/**
 * Plain tensors that cross every boundary of the pipeline (ONNX Runtime feeds and fetches,
 * shard inputs and outputs). No runtime types leak out of core/runtime: everything else
 * speaks `TensorData`.
 */

/** Element types the pipeline moves around. `float16` data is raw IEEE half bits. */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** Typed array backing each element type. */
export interface TensorArrays {
  float32: Float32Array;
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** A dense tensor: element type, dimensions (row-major) and data. */
export interface TensorData<T extends TensorType = TensorType> {
  type: T;
  dims: readonly number[];
  data: TensorArrays[T];
}

/** Number of elements implied by `dims`. */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * Builds a tensor, checking that the data length matches the dimensions.
 * @example tensor('float32', [1, 2], new Float32Array([1, 2]))
 */
export function tensor<T extends TensorType>(
  type: T,
  dims: readonly number[],
  data: TensorArrays[T],
): TensorData<T> {
  const n = elementCount(dims);
  if (data.length !== n) {
    throw new RangeError(
      `tensor: ${type}[${dims.join(',')}] needs ${n} elements, got ${data.length}`,
    );
  }
  return { type, dims: [...dims], data };
}

/** Allocates a typed array of the given element type and length. */
export function allocate<T extends TensorType>(type: T, length: number): TensorArrays[T] {
  switch (type) {
    case 'float32':
      return new Float32Array(length) as TensorArrays[T];
    case 'float16':
      return new Uint16Array(length) as TensorArrays[T];
    case 'int64':
      return new BigInt64Array(length) as TensorArrays[T];
    case 'int32':
      return new Int32Array(length) as TensorArrays[T];
    case 'int8':
      return new Int8Array(length) as TensorArrays[T];
    default:
      return new Uint8Array(length) as TensorArrays[T];
  }
}

/** Concatenates float32 arrays end to end. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Concatenates tensors along dimension 0 (the batch). All parts must share the element type
 * and the trailing dimensions.
 */
export function concatBatch(parts: readonly TensorData[]): TensorData {
  const first = parts[0];
  if (!first) throw new RangeError('concatBatch: no tensors');
  const tail = first.dims.slice(1).join(',');
  let rows = 0;
  for (const p of parts) {
    if (p.type !== first.type || p.dims.slice(1).join(',') !== tail) {
      throw new RangeError(
        `concatBatch: ${p.type}[${p.dims}] does not stack with ${first.type}[${first.dims}]`,
      );
    }
    rows += p.dims[0]!;
  }
  const data = allocate(first.type, elementCount([rows, ...first.dims.slice(1)]));
  let offset = 0;
  for (const p of parts) {
    (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(
      p.data as ArrayLike<unknown>,
      offset,
    );
    offset += p.data.length;
  }
  return { type: first.type, dims: [rows, ...first.dims.slice(1)], data };
}
