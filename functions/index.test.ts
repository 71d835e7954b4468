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

  it('D1 has the tables of db/schema.ts (drizzle migrations applied)', async () => {
    const rows = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
    ).all<{ name: string }>();
    const names = rows.results.map((r) => r.name);
    for (const t of [
      'tasks',
      'targets',
      'tokens',
      'submissions',
      'runs',
      'phases',
      'shards',
      'results',
      'layer_results',
      'checks',
      'feedback',
      'rate_limits',
    ])
      expect(names).toContain(t);
  });
});
