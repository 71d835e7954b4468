// Bindings that vitest.config.ts adds for tests of the `workers` project, on top of the Worker's
// own (functions/env.ts).
import type { D1Migration } from 'cloudflare:test';

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** test/support/seed-server.ts: packed zoo tasks and local reference scores. */
      SEED_URL: string;
    }
  }
}
