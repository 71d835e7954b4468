/**
 * ORT's WebAssembly memory, measured: the threaded onnxruntime-web build imports a
 * WebAssembly.Memory created in JS, so wrapping the constructor sees every Memory this thread
 * creates. Call {@link recordWasmMemory} before ORT loads (before the first session).
 */

/** Records every WebAssembly.Memory created from now on; returns their total size in bytes. */
export function recordWasmMemory(): () => number {
  const memories: WebAssembly.Memory[] = [];
  WebAssembly.Memory = new Proxy(WebAssembly.Memory, {
    construct(target, args) {
      const m = Reflect.construct(target, args) as WebAssembly.Memory;
      memories.push(m);
      return m;
    },
  }) as typeof WebAssembly.Memory;
  return () => memories.reduce((s, m) => s + m.buffer.byteLength, 0);
}
