/**
 * Fixed-window rate limiting in D1 (works the same under wrangler dev, the tests and on
 * Cloudflare): one counter row per key and minute, incremented atomically by an upsert.
 */
import { sql } from 'drizzle-orm';
import * as schema from '../../db/schema.ts';
import type { Env } from '../env.ts';
import { database } from '../service/runs.ts';
import { ProblemError } from './problem.ts';

/** Counts one request for `key`; throws a 429 problem with Retry-After beyond `limit`/minute. */
export async function rateLimit(env: Env, key: string, limit: number, now = Date.now()) {
  const window = Math.floor(now / 60_000);
  const db = database(env);
  const row = await db
    .insert(schema.rateLimits)
    .values({ key, window, count: 1 })
    .onConflictDoUpdate({
      target: [schema.rateLimits.key, schema.rateLimits.window],
      set: { count: sql`${schema.rateLimits.count} + 1` },
    })
    .returning({ count: schema.rateLimits.count })
    .get();
  if ((row?.count ?? 0) > limit) {
    const retry = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
    throw new ProblemError(
      429,
      `at most ${limit} submissions per minute per token; retry in ${retry} s`,
      { headers: { 'retry-after': String(retry) } },
    );
  }
}
