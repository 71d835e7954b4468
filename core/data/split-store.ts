/**
 * Task data as stored blobs: a split's model inputs cut into chunks of consecutive samples,
 * each chunk one content-addressed blob, plus a small manifest. The service keeps them in R2; a
 * shard reads only the chunks its samples fall in, through a bounded cache, so memory does not
 * grow with the split (a 10,000-image evaluation split is 31 MB of float32; a shard holds a few
 * chunks of about 256 KiB).
 *
 * The bytes a stored split serves are exactly those of the loader that packed it: a stored
 * batch equals `split.batch(start, end)` of the original, element for element.
 */
import type { BatchSource } from '../evaluate/predict.ts';
import { decodeShardOutput, encodeShardOutput } from '../pipeline/replay.ts';
import { allocate, elementCount, type TensorData, type TensorType } from '../tensor/index.ts';

/** Manifest of a stored split. */
export interface SplitManifest {
  version: 1;
  size: number;
  /** Samples per chunk (the last chunk may hold fewer). */
  chunkSamples: number;
  /** Each model input: element type and the dimensions of one sample (batch dimension left out). */
  inputs: { name: string; type: TensorType; dims: number[] }[];
  /** Blob key of each chunk, in sample order. */
  chunks: string[];
}

/** A content-addressed blob store (R2 in the service, a Map in tests). */
export interface BlobStore {
  /** Stores bytes under `blobs/<sha256>` (a no-op when present) and returns the key. */
  put(bytes: Uint8Array): Promise<string>;
  /** The bytes under `key`; throws when there are none. */
  get(key: string): Promise<Uint8Array>;
}

/** Default chunk size target in bytes. */
export const CHUNK_BYTES = 256 * 1024;

/** SHA-256 (hex) of bytes, with `crypto.subtle` (Node 20, workerd, browsers). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The content-addressed key of bytes. */
export async function blobKey(bytes: Uint8Array): Promise<string> {
  return `blobs/${await sha256Hex(bytes)}`;
}

/** An in-memory {@link BlobStore} (tests, and the Node side before upload). */
export function memoryBlobStore(): BlobStore & { blobs: Map<string, Uint8Array> } {
  const blobs = new Map<string, Uint8Array>();
  return {
    blobs,
    async put(bytes) {
      const key = await blobKey(bytes);
      if (!blobs.has(key)) blobs.set(key, bytes);
      return key;
    },
    async get(key) {
      const b = blobs.get(key);
      if (!b) throw new Error(`blob ${key} not found`);
      return b;
    },
  };
}

/**
 * Cuts a split into chunk blobs of about `chunkBytes` and writes them to `store`.
 * @returns the manifest (write it to the store as well to get one key for the split)
 */
export async function packSplit(
  split: BatchSource,
  store: BlobStore,
  chunkBytes = CHUNK_BYTES,
): Promise<SplitManifest> {
  if (split.size < 1) throw new RangeError('packSplit: empty split');
  const first = await split.batch(0, 1);
  const inputs = Object.entries(first).map(([name, t]) => {
    if (t.dims[0] !== 1) throw new RangeError(`packSplit: input ${name} is not batched on dim 0`);
    return { name, type: t.type, dims: [...t.dims.slice(1)] };
  });
  const sampleBytes = inputs.reduce(
    (s, i) => s + elementCount(i.dims) * allocate(i.type, 1).BYTES_PER_ELEMENT,
    0,
  );
  const chunkSamples = Math.max(1, Math.floor(chunkBytes / Math.max(1, sampleBytes)));
  const chunks: string[] = [];
  for (let s = 0; s < split.size; s += chunkSamples) {
    const batch = await split.batch(s, Math.min(split.size, s + chunkSamples));
    chunks.push(await store.put(encodeShardOutput(batch)));
  }
  return { version: 1, size: split.size, chunkSamples, inputs, chunks };
}

/** Options of {@link storedSplit}. */
export interface StoredSplitOptions {
  /** Most chunk bytes kept decoded at once (least recently used chunks go first). */
  cacheBytes?: number;
}

/** A {@link BatchSource} over a stored split: reads the chunks a batch needs, on demand. */
export function storedSplit(
  manifest: SplitManifest,
  store: Pick<BlobStore, 'get'>,
  options: StoredSplitOptions = {},
): BatchSource {
  const limit = options.cacheBytes ?? 16 * 1024 * 1024;
  const cache = new Map<number, Promise<Record<string, TensorData>>>();
  const sizes = new Map<number, number>();
  let cached = 0;
  const chunk = (k: number): Promise<Record<string, TensorData>> => {
    const hit = cache.get(k);
    if (hit) {
      cache.delete(k);
      cache.set(k, hit); // most recently used last
      return hit;
    }
    const key = manifest.chunks[k];
    if (key === undefined) throw new RangeError(`stored split: no chunk ${k}`);
    const p = store.get(key).then((bytes) => {
      sizes.set(k, bytes.length);
      cached += bytes.length;
      while (cached > limit && cache.size > 1) {
        const oldest = cache.keys().next().value as number;
        if (oldest === k) break;
        cache.delete(oldest);
        cached -= sizes.get(oldest) ?? 0;
        sizes.delete(oldest);
      }
      return decodeShardOutput(bytes) as Record<string, TensorData>;
    });
    cache.set(k, p);
    return p;
  };
  return {
    size: manifest.size,
    async batch(start, end) {
      if (
        !Number.isInteger(start) ||
        !Number.isInteger(end) ||
        start < 0 ||
        end > manifest.size ||
        start >= end
      )
        throw new RangeError(`stored split: batch [${start}, ${end}) outside 0..${manifest.size}`);
      const rows = end - start;
      const out: Record<string, TensorData> = {};
      const data = manifest.inputs.map((i) => allocate(i.type, rows * elementCount(i.dims)));
      const per = manifest.inputs.map((i) => elementCount(i.dims));
      const c = manifest.chunkSamples;
      for (let k = Math.floor(start / c); k * c < end; k++) {
        const part = await chunk(k);
        const s = Math.max(start, k * c);
        const e = Math.min(end, (k + 1) * c);
        manifest.inputs.forEach((input, j) => {
          const t = part[input.name];
          if (!t) throw new Error(`stored split: chunk ${k} lacks input ${input.name}`);
          const n = per[j]!;
          (data[j] as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(
            (t.data as unknown as { subarray(a: number, b: number): ArrayLike<unknown> }).subarray(
              (s - k * c) * n,
              (e - k * c) * n,
            ),
            (s - start) * n,
          );
        });
      }
      manifest.inputs.forEach((input, j) => {
        out[input.name] = { type: input.type, dims: [rows, ...input.dims], data: data[j]! };
      });
      return out;
    },
  };
}
