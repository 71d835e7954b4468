/**
 * Values shared by the requests (queue batches, fetches) of one Worker isolate: immutable,
 * content-addressed blobs decoded once and reused.
 *
 * Only settled values are shared, never a load in flight. On workerd a promise belongs to the
 * request that created it: if that request ends while the promise is pending (one of its other
 * loads failed, it was cancelled), the promise never settles, and a later request that awaited
 * it would hang for the isolate's lifetime. Locally that stops the whole queue: miniflare's
 * broker delivers one batch at a time and waits for each. (The workerd warning: "A promise was
 * resolved or rejected from a different request context than the one it was created in";
 * cloudflare/cloudflare-docs#29797.) So two requests that miss the same key at once each load
 * it; the second to finish overwrites an equal value.
 */
export class IsolateCache {
  readonly #values = new Map<string, unknown>();

  /** @param maxEntries entries kept (least recently used go first). */
  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError(
        `IsolateCache: maxEntries must be a positive integer, got ${maxEntries}`,
      );
  }

  /** The value under `key`, loaded by this caller when absent. A failed load is not kept. */
  async get<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (this.#values.has(key)) {
      const value = this.#values.get(key) as T;
      this.#values.delete(key); // most recently used last
      this.#values.set(key, value);
      return value;
    }
    const value = await load();
    this.#values.set(key, value);
    while (this.#values.size > this.maxEntries)
      this.#values.delete(this.#values.keys().next().value as string);
    return value;
  }

  /** Number of values held. */
  get size(): number {
    return this.#values.size;
  }
}
