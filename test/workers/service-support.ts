/** Helpers of the service tests: tokens, seeding tasks from the seed server, waiting. */

import { env, exports } from 'cloudflare:workers';
import { afterAll, expect } from 'vitest';
import { openDb, type StoredReport } from '../../db/queries.ts';
import * as schema from '../../db/schema.ts';
import { newToken } from '../../functions/api/auth.ts';

/** Creates a token row and returns the token string. */
export async function makeToken(submitter: string, role: 'submitter' | 'admin' = 'submitter') {
  const { token, row } = await newToken(submitter, role);
  await openDb(env.DB).insert(schema.tokens).values(row).run();
  return { token, id: row.id };
}

/** A request through the Worker's own fetch handler. */
export function api(path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
  return exports.default.fetch(new Request(`http://local.test${path}`, { ...init, headers }));
}

const seeded = new Map<string, Promise<{ labelsKey: string }>>();

/**
 * Loads a zoo task into R2 and D1 the way `cann-quant admin seed` does: blobs through
 * PUT /api/v1/admin/blobs (the model) or straight into R2 (the many data chunks), then
 * PUT /api/v1/admin/tasks/:id. Once per isolate.
 */
export function seedTask(id: string, adminToken: string) {
  let p = seeded.get(id);
  if (!p) {
    p = (async () => {
      const res = await fetch(`${env.SEED_URL}/tasks/${id}`);
      if (!res.ok) throw new Error(`seed server: ${res.status} ${await res.text()}`);
      const { registration, keys } = (await res.json()) as {
        registration: Record<string, string>;
        keys: string[];
      };
      for (const key of keys) {
        const blob = await fetch(`${env.SEED_URL}/${key}`);
        const bytes = new Uint8Array(await blob.arrayBuffer());
        if (key === registration.modelKey) {
          const up = await api('/api/v1/admin/blobs', {
            method: 'PUT',
            token: adminToken,
            headers: { 'content-type': 'application/octet-stream' },
            body: bytes,
          });
          if (up.status !== 201 && up.status !== 200) throw new Error(`upload: ${up.status}`);
        } else await env.BLOBS.put(key, bytes);
      }
      const reg = await api(`/api/v1/admin/tasks/${id}`, {
        method: 'PUT',
        token: adminToken,
        body: JSON.stringify(registration),
      });
      if (reg.status !== 200) throw new Error(`register ${id}: ${reg.status} ${await reg.text()}`);
      return { labelsKey: registration.labelsKey! };
    })();
    seeded.set(id, p);
  }
  return p;
}

/** Polls a submission until it leaves queued/running (or the timeout passes). */
export async function waitForSubmission(id: string, timeoutMs = 600_000) {
  const t0 = Date.now();
  for (;;) {
    const res = await api(`/api/v1/submissions/${id}`);
    const body = (await res.json()) as { status: string; error: string | null };
    if (body.status === 'scored' || body.status === 'failed') return body;
    if (Date.now() - t0 > timeoutMs) throw new Error(`submission ${id} still ${body.status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Submits a recipe as `token` and checks that it is queued (202) and scored; its id goes to
 * `offLeaderboard` (from {@link offLeaderboardAfterAll}). Returns the id and the stored report.
 */
export async function submitScored(
  recipe: unknown,
  token: string,
  offLeaderboard: (submissionId: string) => void,
): Promise<{ id: string; stored: StoredReport }> {
  const res = await api('/api/v1/submissions', {
    method: 'POST',
    token,
    body: JSON.stringify(recipe),
  });
  const body = (await res.json()) as { id: string };
  expect(res.status, JSON.stringify(body)).toBe(202);
  const { id } = body;
  offLeaderboard(id);
  expect(await waitForSubmission(id)).toMatchObject({ status: 'scored', error: null });
  const stored = (await (await api(`/api/v1/submissions/${id}/report`)).json()) as StoredReport;
  return { id, stored };
}

/** The Worker's env with a queue that records messages instead of delivering them. */
export function recordingEnv(vars: Partial<Pick<typeof env, 'SHARED_CACHE'>> = {}) {
  const sent: import('../../functions/service/messages.ts').ShardMessage[] = [];
  const queue = {
    async send(body: (typeof sent)[number]) {
      sent.push(body);
    },
    async sendBatch(messages: Iterable<{ body: (typeof sent)[number] }>) {
      for (const m of messages) sent.push(m.body);
    },
  };
  return { env: { ...env, ...vars, SHARDS: queue as unknown as typeof env.SHARDS }, sent };
}

/** Keys of a loaded task's calibration chunks (to make shards fail by hiding them). */
export async function calibrationChunks(task: string): Promise<string[]> {
  const row = await env.DB.prepare('SELECT calibration_key FROM tasks WHERE id = ?')
    .bind(task)
    .first<{ calibration_key: string }>();
  const manifest = (await (await env.BLOBS.get(row!.calibration_key))!.json()) as {
    chunks: string[];
  };
  return manifest.chunks;
}

/** Removes blobs from R2 and returns a function that puts them back. */
export async function hideBlobs(keys: readonly string[]): Promise<() => Promise<void>> {
  const saved = new Map<string, ArrayBuffer>();
  for (const k of keys) {
    const obj = await env.BLOBS.get(k);
    if (obj) saved.set(k, await obj.arrayBuffer());
    await env.BLOBS.delete(k);
  }
  return async () => {
    for (const [k, v] of saved) await env.BLOBS.put(k, v);
  };
}

/** A live local `cann-quant score` of the recipe, computed in Node by the seed server (cached). */
export async function localScore(recipe: unknown) {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${env.SEED_URL}/score?shards=1`, {
        method: 'POST',
        body: JSON.stringify(recipe),
      });
      if (!res.ok) throw new Error(`seed server /score: ${res.status} ${await res.text()}`);
      return (await res.json()) as {
        paramsDigest: string;
        int8: Record<string, number>;
        qqi: number;
        level: number;
      };
    } catch (err) {
      // workerd drops a local connection now and then on long requests; the result is cached.
      if (attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/**
 * D1 is shared by the test files (isolate: false): a file that scores a submission takes its
 * result off the leaderboard that leaderboard/pages.test.ts reads once the file's tests are done.
 * Call at the top of the file; the returned function names a submission to take off.
 */
export function offLeaderboardAfterAll(): (submissionId: string) => void {
  const ids: string[] = [];
  afterAll(async () => {
    for (const id of ids)
      await env.DB.prepare('DELETE FROM results WHERE submission_id = ?').bind(id).run();
  });
  return (id) => {
    ids.push(id);
  };
}
