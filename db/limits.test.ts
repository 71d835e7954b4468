/**
 * D1's bound-parameter limit, in workerd's D1 (as hosted): why multi-row inserts go through
 * d1RowChunks (the service's shard rows: fmnist-resnet's reference pass has 30 shards).
 */
import { env } from 'cloudflare:workers';
import { eq, getTableColumns } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { D1_MAX_BOUND_PARAMETERS, d1RowChunks } from './limits.ts';
import { openDb } from './queries.ts';
import * as schema from './schema.ts';

/** Shard rows as the service writes them: some served from the shared cache (done), the rest pending. */
const shardRows = (runId: string, n: number) =>
  Array.from({ length: n }, (_, idx) =>
    idx % 3 === 0
      ? {
          runId,
          phase: 'reference',
          idx,
          status: 'done' as const,
          outputKey: `k${idx}`,
          updatedAt: 1,
        }
      : { runId, phase: 'reference', idx },
  );

describe('d1RowChunks', () => {
  it('cuts rows so that no chunk binds more than 100 parameters', () => {
    expect(d1RowChunks([1, 2, 3, 4, 5], 40).map((c) => c.length)).toEqual([2, 2, 1]);
    expect(d1RowChunks([], 10)).toEqual([]);
    expect(() => d1RowChunks([1], 0)).toThrow(RangeError);
    expect(() => d1RowChunks([1], D1_MAX_BOUND_PARAMETERS + 1)).toThrow(RangeError);
  });

  it('lets 41 shard rows in where one statement cannot take them', async () => {
    const db = openDb(env.DB);
    const columns = Object.keys(getTableColumns(schema.shards)).length;
    // one statement: 41 rows bind 5-7 parameters each
    const err = await db
      .insert(schema.shards)
      .values(shardRows('limits-one', 41))
      .run()
      .catch((e: unknown) => e);
    // drizzle's "Failed query" wraps D1's error, which wraps SQLite's
    const messages: string[] = [];
    for (let e = err as Error | undefined; e; e = e.cause as Error | undefined)
      messages.push(e.message);
    expect(messages.join(' / ')).toMatch(/too many SQL variables/);
    const chunks = d1RowChunks(shardRows('limits-chunked', 41), columns);
    expect(chunks.length).toBeGreaterThan(1);
    await db.batch([
      db.insert(schema.shards).values(chunks[0]!),
      ...chunks.slice(1).map((c) => db.insert(schema.shards).values(c)),
    ]);
    const stored = await db
      .select()
      .from(schema.shards)
      .where(eq(schema.shards.runId, 'limits-chunked'))
      .all();
    expect(stored.map((r) => r.idx).sort((a, b) => a - b)).toEqual([...Array(41).keys()]);
    expect(stored.filter((r) => r.status === 'done')).toHaveLength(14);
  });
});
