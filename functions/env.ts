import type { ShardMessage } from './service/messages.ts';

/** Bindings of the `cann-quant` Worker (see wrangler.toml). */
export interface Env extends WorkerBindings {}

interface WorkerBindings {
  /** D1 database `cann-quant` (schema in db/schema.ts, migrations in db/migrations). */
  DB: D1Database;
  /** R2 bucket: models, task data chunks, shard outputs and reports, content-addressed. */
  BLOBS: R2Bucket;
  /** Queue of shard work (keys only, never data); its consumer is this Worker. */
  SHARDS: Queue<ShardMessage>;
  /** Shards per phase of a submission's primary run (default 4); the reproduction uses one less. */
  SHARDS_PER_PHASE?: string;
  /** 'off' skips the cross-hardware runs (one run per other target; default 'on'). */
  CROSS_HARDWARE?: string;
  /** "off": every run computes its FP32 reference pass (no shared/<key> lookups). */
  SHARED_CACHE?: string;
  /** Seconds a queue message may run before it is retried (default 900, Cloudflare's limit). */
  MESSAGE_DEADLINE_SECONDS?: string;
  /** '1': log each queue message's start and end (the evidence for diagnosing a stalled queue). */
  QUEUE_TRACE?: string;
  /** Submissions allowed per token per minute (default 10). */
  SUBMISSIONS_PER_MINUTE?: string;
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
