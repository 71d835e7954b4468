import { type BlobStore, blobKey } from '../../core/data/split-store.ts';

/** A content-addressed {@link BlobStore} over an R2 bucket (`blobs/<sha256>`). */
export function r2BlobStore(bucket: R2Bucket): BlobStore {
  return {
    async put(bytes) {
      const key = await blobKey(bytes);
      if (!(await bucket.head(key))) await bucket.put(key, bytes);
      return key;
    },
    async get(key) {
      const obj = await bucket.get(key);
      if (!obj) throw new Error(`R2 object ${key} is missing`);
      return new Uint8Array(await obj.arrayBuffer());
    },
  };
}

/** Reads a JSON blob. */
export async function getJson<T>(store: BlobStore, key: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await store.get(key))) as T;
}

/** Writes a JSON blob and returns its key. */
export function putJson(store: BlobStore, value: unknown): Promise<string> {
  return store.put(new TextEncoder().encode(JSON.stringify(value)));
}
