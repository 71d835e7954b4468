/** Every error status of the API, as application/problem+json, and token handling. */
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import type { Problem } from '../../functions/api/problem.ts';
import { createSubmission } from '../../functions/service/runs.ts';
import { api, makeToken, recordingEnv, seedTask } from './service-support.ts';

const recipe = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');

async function problem(res: Response, status: number): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = (await res.json()) as Problem;
  expect(body.status).toBe(status);
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

let user: { token: string; id: string };
let admin: string;

beforeAll(async () => {
  admin = (await makeToken('seeder-errors', 'admin')).token;
  await seedTask('smoke-fmnist', admin);
  user = await makeToken('errors-user');
}, 300_000);

const post = (body: string, token = user.token, headers: Record<string, string> = {}) =>
  api('/api/v1/submissions', { method: 'POST', token, body, headers });

describe('API errors', () => {
  it('400: invalid JSON, and an invalid recipe with each field path, expectation and value', async () => {
    const bad = await problem(await post('{"version": 1,'), 400);
    expect(bad.detail).toMatch(/not valid JSON/);
    const invalid = await problem(
      await post(
        JSON.stringify({
          ...recipe,
          calibration: { ...recipe.calibration, samples: 0 },
          target: 'tpu',
        }),
      ),
      400,
    );
    expect(invalid.type).toMatch(/invalid-recipe$/);
    expect(invalid.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'calibration.samples', got: 'number 0' }),
        expect.objectContaining({ path: 'target', got: '"tpu"' }),
      ]),
    );
    const task = await problem(await post(JSON.stringify({ ...recipe, task: 'imagenet' })), 400);
    expect(task.errors).toEqual([
      expect.objectContaining({
        path: 'task',
        got: '"imagenet"',
        expected: expect.stringContaining('smoke-fmnist'),
      }),
    ]);
    const filter = await problem(await api('/api/v1/leaderboard?sort=random&level=9'), 400);
    expect(filter.errors?.[0]?.path).toBe('level');
  });

  it('401: no token, a malformed token, an unknown token, a revoked token', async () => {
    const none = await api('/api/v1/submissions', { method: 'POST', body: JSON.stringify(recipe) });
    expect((await problem(none, 401)).detail).toMatch(/Authorization: Bearer/);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await problem(await post(JSON.stringify(recipe), 'not-a-token'), 401);
    await problem(await post(JSON.stringify(recipe), `cq_abcdefghijkl_${'A'.repeat(43)}`), 401);
    const t = await makeToken('soon-revoked');
    const del = await api(`/api/v1/tokens/${t.id}`, { method: 'DELETE', token: t.token });
    expect(del.status).toBe(204);
    await problem(await post(JSON.stringify(recipe), t.token), 401);
  });

  it('tokens are stored only as SHA-256 and shown once', async () => {
    const res = await api('/api/v1/tokens', {
      method: 'POST',
      token: admin,
      body: JSON.stringify({ submitter: 'new-user' }),
    });
    expect(res.status).toBe(201);
    const { id, token } = (await res.json()) as { id: string; token: string };
    expect(token).toMatch(/^cq_[a-z0-9]{12}_[\w-]{43}$/);
    const secret = token.split('_').slice(2).join('_');
    const rows = await env.DB.prepare('SELECT * FROM tokens').all<Record<string, unknown>>();
    const dump = JSON.stringify(rows.results);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(token);
    const row = rows.results.find((r) => r.id === id)!;
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret));
    expect(row.hash).toBe(
      [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
    );
  });

  it('403: a submitter on admin routes or revoking another submitter’s token', async () => {
    await problem(
      await api('/api/v1/admin/tasks/smoke-fmnist', {
        method: 'PUT',
        token: user.token,
        body: '{}',
      }),
      403,
    );
    const other = await makeToken('someone-else');
    await problem(
      await api(`/api/v1/tokens/${other.id}`, { method: 'DELETE', token: user.token }),
      403,
    );
  });

  it('404: unknown submission, report, task and route', async () => {
    await problem(await api('/api/v1/submissions/sub_nope'), 404);
    await problem(await api('/api/v1/submissions/sub_nope/report'), 404);
    await problem(await api('/api/v1/tasks/imagenet'), 404);
    await problem(await api('/api/v1/no-such-thing'), 404);
  });

  it('405 with Allow: a route that exists under other methods', async () => {
    const put = await api('/api/v1/submissions', { method: 'PUT', token: user.token, body: '{}' });
    expect((await problem(put, 405)).detail).toBe('/api/v1/submissions accepts POST, not PUT');
    expect(put.headers.get('allow')).toBe('POST');
    const del = await api('/api/v1/leaderboard', { method: 'DELETE', token: user.token });
    await problem(del, 405);
    expect(del.headers.get('allow')).toBe('GET, HEAD');
    const get = await api('/api/v1/tokens/some-id');
    await problem(get, 405);
    expect(get.headers.get('allow')).toBe('DELETE');
    // HEAD of an admin blob says whether it is stored (hono routes HEAD to GET routes; the seed
    // relies on it to skip blobs already uploaded); GET never reads one back
    const stored = `/api/v1/admin/blobs/${(await env.BLOBS.list({ prefix: 'blobs/', limit: 1 })).objects[0]!.key.slice('blobs/'.length)}`;
    expect((await api(stored, { method: 'HEAD', token: admin })).status).toBe(200);
    expect(
      (await api(`/api/v1/admin/blobs/${'0'.repeat(64)}`, { method: 'HEAD', token: admin })).status,
    ).toBe(404);
    const read = await api(stored, { token: admin });
    await problem(read, 405);
    expect(read.headers.get('allow')).toBe('HEAD');
    const write = await api(stored, { method: 'PUT', token: admin, body: 'x' });
    await problem(write, 405);
    expect(write.headers.get('allow')).toBe('HEAD');
    // the right method on a missing resource stays a 404
    const head = await api('/api/v1/submissions/sub_nope', { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(head.headers.get('allow')).toBeNull();
  });

  it('409: another recipe under a taken name; a report before scoring', async () => {
    const { env: e } = recordingEnv();
    const dave = await makeToken('dave');
    const { id } = await createSubmission(
      e,
      { submitter: 'dave', tokenId: dave.id },
      {
        ...recipe,
        name: 'daves-recipe',
      },
    );
    const clash = await problem(
      await post(
        JSON.stringify({
          ...recipe,
          name: 'daves-recipe',
          calibration: { ...recipe.calibration, seed: 7 },
        }),
        dave.token,
      ),
      409,
    );
    expect(clash.detail).toContain(id);
    const early = await problem(await api(`/api/v1/submissions/${id}/report`), 409);
    expect(early.detail).toMatch(/queued/);
  });

  it('413: a body over 64 KiB; 415: not JSON', async () => {
    const big = JSON.stringify({ ...recipe, description: 'x'.repeat(70_000) });
    await problem(await post(big), 413);
    await problem(
      await post(JSON.stringify(recipe), user.token, { 'content-type': 'text/plain' }),
      415,
    );
  });

  it('429 with Retry-After past 10 submissions a minute', async () => {
    const t = await makeToken('hasty');
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 11; i++) {
      last = await post(JSON.stringify({ ...recipe, task: 'not-loaded' }), t.token);
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(400));
    const p = await problem(last!, 429);
    expect(p.detail).toMatch(/at most 10 submissions per minute/);
    const retry = Number(last!.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
  });

  it('serves the OpenAPI document with the recipe schema and a reference page', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: { Recipe: { properties: Record<string, unknown> } } };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/submissions',
        '/submissions/{id}',
        '/submissions/{id}/report',
        '/leaderboard',
      ]),
    );
    expect(Object.keys(doc.components.schemas.Recipe.properties)).toEqual(
      expect.arrayContaining(['version', 'task', 'target', 'calibration', 'sensitivity', 'format']),
    );
    const page = await api('/api/v1/docs');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/api/v1/openapi.json');
  });
});
