/**
 * Admin routes (admin token): loading task data. The seed step (scripts/seed.ts, run by
 * `npm start`) packs each zoo task's splits in Node and uploads them here; the task's manifest
 * and code come from the Worker's own zoo registry, never from the request.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { blobKey, type SplitManifest } from '../../core/data/split-store.ts';
import { openDb } from '../../db/queries.ts';
import * as schema from '../../db/schema.ts';
import { TASKS } from '../../zoo/registry.ts';
import type { Env } from '../env.ts';
import type { ShardMessage } from '../service/messages.ts';
import { consumerState } from '../service/queue.ts';
import { type Caller, requireToken } from './auth.ts';
import { headOnly } from './methods.ts';
import { ProblemError } from './problem.ts';

/** Largest blob accepted in one upload (task data is chunked far below this). */
export const MAX_BLOB_BYTES = 32 * 1024 * 1024;

type AppEnv = { Bindings: Env; Variables: { caller: Caller } };

const KEY = /^blobs\/[0-9a-f]{64}$/;

export function adminApi(): Hono<AppEnv> {
  const admin = new Hono<AppEnv>();
  admin.use('*', requireToken({ role: 'admin' }));

  admin.put(
    '/blobs',
    bodyLimit({
      maxSize: MAX_BLOB_BYTES,
      onError: () => {
        throw new ProblemError(413, `a blob is at most ${MAX_BLOB_BYTES} bytes`);
      },
    }),
    async (c) => {
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      if (bytes.length === 0) throw new ProblemError(400, 'empty blob');
      const key = await blobKey(bytes);
      const existed = (await c.env.BLOBS.head(key)) !== null;
      if (!existed) await c.env.BLOBS.put(key, bytes);
      return c.json({ key, bytes: bytes.length, existed }, existed ? 200 : 201);
    },
  );

  // Whether a blob is stored (the seed skips those). hono routes HEAD to the GET route (a
  // route registered for 'HEAD' is never reached); a blob is never read back, so GET is refused.
  admin.get(
    '/blobs/:sha',
    headOnly(async (c) => {
      if (c.req.method !== 'HEAD')
        throw new ProblemError(405, 'blobs are never read back: HEAD says whether one is stored', {
          headers: { allow: 'HEAD' },
        });
      const head = await c.env.BLOBS.head(`blobs/${c.req.param('sha')}`);
      return c.body(null, head ? 200 : 404);
    }),
  );

  admin.put('/tasks/:id', bodyLimit({ maxSize: 16 * 1024 }), async (c) => {
    const id = c.req.param('id');
    const task = Object.hasOwn(TASKS, id) ? TASKS[id] : undefined;
    if (!task)
      throw new ProblemError(
        404,
        `no zoo task '${id}' in this Worker (${Object.keys(TASKS).join(', ')})`,
      );
    const body = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
    const keys = ['modelKey', 'calibrationKey', 'evaluationKey', 'labelsKey'] as const;
    const errors = keys
      .filter((k) => typeof body?.[k] !== 'string' || !KEY.test(body[k] as string))
      .map((k) => ({ path: k, expected: 'blobs/<sha256 hex>', got: String(body?.[k]) }));
    if (errors.length) throw new ProblemError(400, 'invalid task registration', { errors });
    const k = body as Record<(typeof keys)[number], string>;
    for (const key of keys) {
      if (!(await c.env.BLOBS.head(k[key])))
        throw new ProblemError(400, `${key} ${k[key]} has not been uploaded`, {
          errors: [{ path: key, expected: 'an uploaded blob', got: k[key] }],
        });
    }
    const m = task.manifest;
    if (k.modelKey !== `blobs/${m.model.sha256}`)
      throw new ProblemError(400, `the model is not the task's (sha256 ${m.model.sha256})`, {
        errors: [{ path: 'modelKey', expected: `blobs/${m.model.sha256}`, got: k.modelKey }],
      });
    for (const [key, split] of [
      ['calibrationKey', 'calibration'],
      ['evaluationKey', 'evaluation'],
    ] as const) {
      const obj = await c.env.BLOBS.get(k[key]);
      const manifest = (await obj?.json().catch(() => null)) as SplitManifest | null;
      if (manifest?.version !== 1 || manifest.size !== m.splits[split].size)
        throw new ProblemError(
          400,
          `${key} is not a stored ${split} split of ${m.splits[split].size} samples`,
          {
            errors: [
              {
                path: key,
                expected: `split manifest, size ${m.splits[split].size}`,
                got: String(manifest?.size),
              },
            ],
          },
        );
    }
    const row = {
      id,
      title: m.title,
      kind: m.kind,
      metric: m.metric.primary,
      manifest: m,
      modelKey: k.modelKey,
      calibrationKey: k.calibrationKey,
      evaluationKey: k.evaluationKey,
      labelsKey: k.labelsKey,
    };
    await openDb(c.env.DB)
      .insert(schema.tasks)
      .values(row)
      .onConflictDoUpdate({ target: schema.tasks.id, set: row })
      .run();
    return c.json({ id, loaded: true });
  });

  // Re-drives unfinished work after a restart (a local queue does not survive one): every
  // running run gets an advance (which re-sends its pending shards), every submission whose
  // runs are complete but which is not scored gets a finalize. All of it is idempotent.
  admin.post('/resume', async (c) => {
    const running = await c.env.DB.prepare(
      "SELECT r.id FROM runs r JOIN submissions s ON s.id = r.submission_id WHERE r.status = 'running' AND s.status IN ('queued', 'running')",
    ).all<{ id: string }>();
    const finalize = await c.env.DB.prepare(
      "SELECT s.id FROM submissions s WHERE s.status IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.submission_id = s.id AND r.status != 'complete')",
    ).all<{ id: string }>();
    const messages: { body: ShardMessage }[] = [
      ...running.results.map((r) => ({ body: { kind: 'advance', runId: r.id } as ShardMessage })),
      ...finalize.results.map((s) => ({
        body: { kind: 'finalize', submissionId: s.id } as ShardMessage,
      })),
    ];
    for (let i = 0; i < messages.length; i += 100)
      await c.env.SHARDS.sendBatch(messages.slice(i, i + 100));
    return c.json({ advanced: running.results.length, finalized: finalize.results.length });
  });

  // What the queue still owes and when it last moved: `npm start`'s watchdog (scripts/watchdog.ts)
  // restarts a local queue that has open work but shows no activity for many minutes. Activity
  // is any write of the pipeline: a shard started or finished, a run or a submission finished.
  // consumer_*: this isolate's queue consumer (functions/service/queue.ts, consumerState).
  admin.get('/progress', async (c) => {
    const row = await c.env.DB.prepare(
      `SELECT
         (SELECT count(*) FROM submissions WHERE status IN ('queued', 'running')) AS open_submissions,
         (SELECT count(*) FROM shards WHERE status = 'pending') AS pending_shards,
         max(
           coalesce((SELECT max(updated_at) FROM shards), 0),
           coalesce((SELECT max(updated_at) FROM submissions), 0),
           coalesce((SELECT max(coalesce(finished_at, created_at)) FROM runs), 0)
         ) AS last_activity`,
    ).first<{ open_submissions: number; pending_shards: number; last_activity: number }>();
    return c.json({
      open_submissions: row?.open_submissions ?? 0,
      pending_shards: row?.pending_shards ?? 0,
      last_activity: row?.last_activity || null,
      consumer_in_flight: consumerState.inFlight,
      consumer_last_end: consumerState.lastEnd,
    });
  });

  return admin;
}
