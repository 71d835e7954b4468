/** The Worker's routes, through the Worker's own fetch handler, and the migrated D1 schema. */
import { env, exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

describe('cann-quant Worker', () => {
  it('GET /health creates an ORT session in the isolate', async () => {
    const res = await exports.default.fetch('http://local.test/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      status: string;
      version: string;
      ort: { ok: boolean; loader: string };
    };
    expect(body).toMatchObject({
      status: 'ok',
      version: '0.1.0',
      ort: { ok: true, loader: 'workerd' },
    });
  });

  it('GET / serves the leaderboard (leaderboard/routes.tsx)', async () => {
    const res = await exports.default.fetch('http://local.test/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain('<h1>Leaderboard</h1>');
  });

  it('D1 has the migrated meta table', async () => {
    const row = await env.DB.prepare('SELECT value FROM meta WHERE key = ?')
      .bind('schema')
      .first<{ value: string }>();
    expect(row?.value).toBe('1');
  });
});
