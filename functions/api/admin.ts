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
import { type Caller, requireToken } from './auth.ts';
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

  admin.on('HEAD', '/blobs/:sha', async (c) => {
    const head = await c.env.BLOBS.head(`blobs/${c.req.param('sha')}`);
    return c.body(null, head ? 200 : 404);
  });

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

  return admin;
}
