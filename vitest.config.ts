import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { startSeedServer } from './test/support/seed-server.ts';

// Tests never read or fill the user's shared-phase cache (cli/shared-store.ts): every run
// computes its FP32 reference; test/node/shared-cache.test.ts exercises the cache in a temp dir.
process.env.CANN_QUANT_CACHE = 'off';

// Task data and local reference scores for the workers-pool service tests (workerd cannot read
// the Debian dataset files): a Node server on a random local port, unref'd.
const seed = await startSeedServer();

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: [
            'core/**/*.test.ts',
            'cli/**/*.test.ts',
            'zoo/**/*.test.ts',
            'test/node/**/*.test.ts',
          ],
          environment: 'node',
          env: { CANN_QUANT_CACHE: 'off' },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Tests that run inside workerd (the Workers runtime), with the bindings and module rules
        // of wrangler.toml: `.wasm` imports are precompiled modules, `.onnx`/`.bin` imports are
        // ArrayBuffers (Data rule). D1 migrations from db/migrations are applied in the setup file.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations('./db/migrations'),
                SEED_URL: seed.url,
              },
            },
          }),
        ],
        test: {
          name: 'workers',
          include: [
            'functions/**/*.test.ts',
            'db/**/*.test.ts',
            'leaderboard/**/*.test.ts',
            'test/workers/**/*.test.ts',
          ],
          setupFiles: ['./test/workers/setup.ts'],
          // One shared isolate for all files. The pool serves every .wasm/.onnx/.bin module as a
          // JSON array of numbers, per isolate: the 14 MB ORT wasm costs ~9-20 s per fresh isolate
          // (73 s for 3 files isolated vs 18 s shared). Consequence: module state (the configured
          // ORT runtime) and D1/R2 storage are shared across test files, so tests must not depend
          // on an empty database (use own keys, or clean up).
          isolate: false,
          maxWorkers: 1,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
