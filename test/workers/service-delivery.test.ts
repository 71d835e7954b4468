/**
 * At-least-once delivery: shards delivered twice, a shard failing once and retried, messages
 * handled out of order, and a poison shard reaching the dead-letter queue. The queue is driven
 * by hand (messages recorded, then delivered through the Worker's own queue handler).
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import type { StoredReport } from '../../db/queries.ts';
import worker from '../../functions/index.ts';
import type { ShardMessage } from '../../functions/service/messages.ts';
import { createSubmission, handleMessage } from '../../functions/service/runs.ts';
import {
  api,
  calibrationChunks,
  hideBlobs,
  localScore,
  makeToken,
  recordingEnv,
  seedTask,
  waitForSubmission,
} from './service-support.ts';

const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');

/** Delivers one message through the Worker's queue handler; returns 'ack' or 'retry'. */
async function deliver(e: typeof env, queue: string, body: ShardMessage, attempts = 1) {
  const batch = createMessageBatch<ShardMessage>(queue, [
    { id: crypto.randomUUID(), timestamp: new Date(), attempts, body },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, e);
  void ctx;
  const r = await getQueueResult(batch, ctx);
  return r.retryMessages.length > 0 ? 'retry' : r.explicitAcks.length > 0 ? 'ack' : 'none';
}

beforeAll(async () => {
  const admin = (await makeToken('seeder-delivery', 'admin')).token;
  await seedTask('smoke-fmnist', admin);
}, 300_000);

describe('at-least-once delivery', () => {
  it('duplicates, a failed-then-retried shard and any order change nothing', async () => {
    const { env: e, sent } = recordingEnv();
    const { id } = await createSubmission(e, { submitter: 'bob', tokenId: 'bob' }, recipe);
    const chunks = await calibrationChunks('smoke-fmnist');
    let failedOnce = false;
    let duplicates = 0;
    let delivered = 0;
    while (sent.length > 0) {
      const m = sent.pop()!; // last in, first out: shards of a phase run in reverse order
      if (m.kind === 'shard' && m.phase === 'histograms' && !failedOnce) {
        // A transient fault: the calibration data is unreachable for one delivery.
        const restore = await hideBlobs(chunks);
        expect(await deliver(e, 'cann-quant-shards', m)).toBe('retry');
        await restore();
        failedOnce = true;
        const row = await env.DB.prepare(
          'SELECT status, attempts, error FROM shards WHERE run_id = ? AND phase = ? AND idx = ?',
        )
          .bind(m.runId, m.phase, m.idx)
          .first<{ status: string; attempts: number; error: string }>();
        expect(row).toMatchObject({ status: 'pending', attempts: 1 });
        expect(row!.error).toMatch(/missing/);
        sent.unshift(m); // redelivered later
        continue;
      }
      expect(await deliver(e, 'cann-quant-shards', m)).toBe('ack');
      delivered++;
      if (m.kind === 'shard' && duplicates < 5) {
        // The same shard delivered again: acknowledged, nothing recomputed.
        const before = await env.DB.prepare(
          'SELECT output_key, attempts FROM shards WHERE run_id = ? AND phase = ? AND idx = ?',
        )
          .bind(m.runId, m.phase, m.idx)
          .first();
        expect(await deliver(e, 'cann-quant-shards', m, 2)).toBe('ack');
        const after = await env.DB.prepare(
          'SELECT output_key, attempts FROM shards WHERE run_id = ? AND phase = ? AND idx = ?',
        )
          .bind(m.runId, m.phase, m.idx)
          .first();
        expect(after).toEqual(before);
        duplicates++;
      }
      if (m.kind === 'finalize') {
        // A second finalize (and a late advance) leave the one result alone.
        await handleMessage(e, m);
        await handleMessage(e, { kind: 'advance', runId: `${id}.primary` });
      }
    }
    expect(failedOnce).toBe(true);
    expect(duplicates).toBe(5);
    expect(delivered).toBeGreaterThan(40);
    const results = await env.DB.prepare(
      'SELECT count(*) AS n FROM results WHERE submission_id = ?',
    )
      .bind(id)
      .first<{ n: number }>();
    expect(results?.n).toBe(1);

    // Same numbers as a live local `cann-quant score`.
    const local = await localScore(recipe);
    const stored = (await (await api(`/api/v1/submissions/${id}/report`)).json()) as StoredReport;
    expect(stored.report.paramsDigest).toBe(local.paramsDigest);
    expect(stored.report.metric.all.int8).toEqual(local.int8);
    expect(stored.report.qqi.value).toBe(local.qqi);
  }, 900_000);

  it('a shard that keeps failing is dead-lettered and fails the submission with the reason', async () => {
    // shared cache off: the reference pass of this task may be in R2 from earlier runs, and the
    // poison must hit the first phase's shard 0
    const { env: e, sent } = recordingEnv({ SHARED_CACHE: 'off' });
    const poisoned = { ...recipe, name: 'poisoned' };
    const { id } = await createSubmission(e, { submitter: 'carol', tokenId: 'carol' }, poisoned);
    // Fan out the first phase of the primary run.
    const advance = sent.find((m) => m.kind === 'advance' && m.runId.endsWith('.primary'))!;
    expect(await deliver(e, 'cann-quant-shards', advance)).toBe('ack');
    const shard = sent.find((m) => m.kind === 'shard')!;
    const restore = await hideBlobs(await calibrationChunks('smoke-fmnist'));
    try {
      for (let attempt = 1; attempt <= 4; attempt++)
        expect(await deliver(e, 'cann-quant-shards', shard, attempt)).toBe('retry');
      // After max_retries (wrangler.toml) the platform moves the message to the DLQ.
      expect(await deliver(e, 'cann-quant-shards-dlq', shard, 5)).toBe('ack');
    } finally {
      await restore();
    }
    const view = (await (await api(`/api/v1/submissions/${id}`)).json()) as {
      status: string;
      error: string;
    };
    expect(view.status).toBe('failed');
    expect(view.error).toMatch(
      /shard 0 of phase 'reference'.*failed 4 time\(s\) and was dead-lettered: .*missing/,
    );
    const report = await api(`/api/v1/submissions/${id}/report`);
    expect(report.status).toBe(409);
    expect(((await report.json()) as { detail: string }).detail).toMatch(/failed: shard 0/);
  }, 300_000);

  it('work lost with a restarted local queue shows in /admin/progress and is resumed (POST /api/v1/admin/resume)', async () => {
    const { env: e, sent } = recordingEnv();
    const lost = { ...recipe, name: 'lost-messages' };
    const { id } = await createSubmission(e, { submitter: 'erin', tokenId: 'erin' }, lost);
    // Deliver the primary run's first advance, then drop every message (a restart).
    await deliver(e, 'cann-quant-shards', sent.find((m) => m.kind === 'advance')!);
    sent.length = 0;
    const admin = (await makeToken('resumer', 'admin')).token;
    // What npm start's watchdog reads: the stranded submission is open work, and its shard rows
    // (pending, or done from the shared reference cache) are the latest activity at least.
    // Other tests' work may share the database, hence the inequalities.
    const mine = await env.DB.prepare(
      "SELECT count(*) AS n, sum(status = 'pending') AS pending, max(updated_at) AS t FROM shards WHERE run_id LIKE ?",
    )
      .bind(`${id}.%`)
      .first<{ n: number; pending: number; t: number }>();
    expect(mine!.n).toBeGreaterThan(0);
    const progress = await api('/api/v1/admin/progress', { token: admin });
    expect(progress.status).toBe(200);
    const p = (await progress.json()) as Record<string, number>;
    expect(p.open_submissions).toBeGreaterThanOrEqual(1);
    expect(p.pending_shards).toBeGreaterThanOrEqual(mine!.pending);
    expect(p.last_activity).toBeGreaterThanOrEqual(mine!.t);
    // and the queue consumer's own state, for the watchdog's hand-off check
    expect(p.consumer_in_flight).toBeGreaterThanOrEqual(0);
    expect(p.consumer_last_end === null || (p.consumer_last_end ?? 0) > 0).toBe(true);
    const submitter = (await makeToken('not-admin')).token;
    expect((await api('/api/v1/admin/progress', { token: submitter })).status).toBe(403);
    const res = await api('/api/v1/admin/resume', { method: 'POST', token: admin });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { advanced: number };
    expect(body.advanced).toBeGreaterThanOrEqual(2);
    // Alone this test takes about 30 s. In the full suite it took 390-425 s on the 2-core CI
    // host (other test files share the machine and the live local queue), and more than 600 s
    // on a host running at half speed (2026-11-27); the budget leaves room for that.
    expect(await waitForSubmission(id, 1_100_000)).toMatchObject({ status: 'scored' });
  }, 1_200_000);
});
