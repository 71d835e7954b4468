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
