// Module types for files that wrangler's rules (wrangler.toml `[[rules]]`) turn into modules.
// The same rules apply in the vitest `workers` project (the pool reads wrangler.toml).

/** `CompiledWasm` rule: a WebAssembly.Module compiled when the Worker is loaded. */
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}

/** `Data` rule: the file's bytes. */
declare module '*.onnx' {
  const bytes: ArrayBuffer;
  export default bytes;
}

/** `Data` rule: the file's bytes. */
declare module '*.bin' {
  const bytes: ArrayBuffer;
  export default bytes;
}
