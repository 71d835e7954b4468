#!/usr/bin/env node
/**
 * Applies the upstream fix of cloudflare/workers-sdk#15092 (merged as PR #15106) to the pinned
 * @cloudflare/vitest-pool-workers 0.23.0, which has no release with it (the package was renamed
 * to @cloudflare/vitest-plugin; 0.23.0 is its last version).
 *
 * The bug: `createProxyPrototypeClass` wraps the entrypoint class's prototype in a new Proxy on
 * every construction, and every `exports.default.fetch()` and queue delivery constructs one. In
 * the shared isolate our workers tests run in (isolate: false), the chain of nested `get` traps
 * grows with every request until a property read overflows the stack: "RangeError: Maximum call
 * stack size exceeded" at test-internal.mjs, failing every later request of the run. The fix
 * installs the Proxy once per class.
 *
 * Idempotent; run by `npm ci` (postinstall). Exits non-zero if the file holds neither the buggy
 * nor the patched code, so a changed package cannot pass unnoticed.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(
  new URL(
    '../node_modules/@cloudflare/vitest-pool-workers/dist/worker/lib/cloudflare/test-internal.mjs',
    import.meta.url,
  ),
);
if (!existsSync(file)) {
  // A production install without dev dependencies: nothing to patch.
  process.exit(0);
}
const buggy = `	function Class(...args) {
		Class.prototype = new Proxy(Class.prototype, { get(target, key, receiver) {`;
const fixed = `	let proxyInstalled = false; // cann-quant: workers-sdk#15092 fix (PR #15106)
	function Class(...args) {
		if (!proxyInstalled) proxyInstalled = true, Class.prototype = new Proxy(Class.prototype, { get(target, key, receiver) {`;
const text = readFileSync(file, 'utf8');
if (text.includes(fixed)) process.exit(0);
if (!text.includes(buggy)) {
  console.error(`patch-vitest-pool-workers: ${file} has changed; re-check workers-sdk#15092`);
  process.exit(1);
}
writeFileSync(file, text.replace(buggy, fixed));
console.log('patch-vitest-pool-workers: applied the workers-sdk#15092 fix');
