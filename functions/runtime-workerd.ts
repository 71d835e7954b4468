/**
 * workerd adapter for core/runtime: onnxruntime-web's WASM backend inside a Worker.
 *
 * Why this is not just `import * as ort from 'onnxruntime-web'`:
 * 1. workerd forbids compiling WebAssembly from bytes at run time ("Wasm code generation
 *    disallowed by embedder"): `WebAssembly.instantiate(bytes)` / `compile(bytes)` throw. Only
 *    modules compiled at deploy/load time are allowed. So the ORT binary
 *    (node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm) is imported as a module,
 *    which the wrangler rule `{ type = "CompiledWasm", globs = ["**\/*.wasm"] }` turns into a
 *    ready `WebAssembly.Module` (uploaded next to the bundle: 14 MB raw, 3.7 MB gzipped).
 * 2. workerd has no `import.meta.url`, so ORT cannot locate its .wasm next to its .mjs. We import
 *    `onnxruntime-web/wasm` (WASM backend only, Emscripten glue bundled in, no WebGPU) and set
 *    `env.wasm.wasmBinary` to a small dummy marker: with a binary present ORT neither
 *    computes a URL nor fetches, it hands the bytes to Emscripten.
 * 3. ORT offers no option that accepts a precompiled module. Emscripten finally calls
 *    `WebAssembly.instantiate(new Uint8Array(wasmBinary), imports)` and expects
 *    `{ instance, module }` back. We wrap `WebAssembly.instantiate`: when it is given our marker
 *    bytes, it instantiates the precompiled module with Emscripten's imports instead and returns
 *    `{ instance, module }` (the module-overload returns a bare Instance, hence the wrapping).
 *    Any other call goes to the original function untouched, and the wrapper removes itself
 *    after it has served ORT.
 */

import * as ort from 'onnxruntime-web/wasm';
import { configureRuntime, type OrtModule, type RuntimeLoader } from '../core/runtime/index.ts';
// wrangler's module collector resolves rule-matched imports as paths relative to the importer
// (a bare 'onnxruntime-web/...' specifier fails with ENOENT), hence the node_modules path.
import ortWasm from '../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm';

/** Marker handed to ORT as `wasmBinary`; recognised by content (Emscripten copies it). */
const MARKER = new TextEncoder().encode('cann-quant:precompiled-ort-wasm');

function isMarker(source: unknown): boolean {
  let bytes: Uint8Array;
  if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else if (ArrayBuffer.isView(source)) {
    bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  } else return false;
  if (bytes.byteLength !== MARKER.byteLength) return false;
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== MARKER[i]) return false;
  return true;
}

type Instantiate = typeof WebAssembly.instantiate;

function routeInstantiateToPrecompiled(module: WebAssembly.Module): void {
  const original: Instantiate = WebAssembly.instantiate;
  const routed = (async (source: unknown, imports?: WebAssembly.Imports) => {
    if (!isMarker(source)) {
      return (original as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(
        source,
        imports,
      );
    }
    if (WebAssembly.instantiate === routed) WebAssembly.instantiate = original;
    const instance = await original(module, imports);
    return { instance, module };
  }) as Instantiate;
  WebAssembly.instantiate = routed;
}

export const workerdRuntimeLoader: RuntimeLoader = {
  name: 'workerd',
  async load(): Promise<OrtModule> {
    routeInstantiateToPrecompiled(ortWasm);
    ort.env.wasm.wasmBinary = MARKER.slice().buffer;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    return ort;
  },
};

/** Registers the workerd loader with core/runtime (idempotent). */
export function useWorkerdRuntime(): void {
  configureRuntime(workerdRuntimeLoader);
}
