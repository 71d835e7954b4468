/** Bindings of the `cann-quant` Worker (see wrangler.toml). */
export interface Env extends WorkerBindings {}

interface WorkerBindings {
  /** D1 database `cann-quant` (migrations in db/migrations). */
  DB: D1Database;
  /** R2 bucket for model weights and other blobs (kept out of the Worker bundle). */
  BLOBS: R2Bucket;
}

declare global {
  namespace Cloudflare {
    // `env` from 'cloudflare:workers' carries the Worker's bindings.
    interface Env extends WorkerBindings {}
    // Types `exports` from 'cloudflare:workers' (e.g. `exports.default.fetch()` in tests).
    interface GlobalProps {
      mainModule: typeof import('./index.ts');
    }
  }
}
