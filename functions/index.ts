/**
 * The `cann-quant` Worker (wrangler.toml `main`): the /api/v1 API, the queue consumers that run
 * submissions shard by shard, the health probe and (leaderboard/) the public pages.
 */

import { Hono } from 'hono';
import { pages } from '../leaderboard/routes.tsx';
import pkg from '../package.json';
import { adminApi } from './api/admin.ts';
import { allowedMethods } from './api/methods.ts';
import { onError, problemResponse } from './api/problem.ts';
import { apiV1 } from './api/v1.ts';
import type { Env } from './env.ts';
import { checkOrt } from './health.ts';
import { useWorkerdRuntime } from './runtime-workerd.ts';
import type { ShardMessage } from './service/messages.ts';
import { handleQueueBatch } from './service/queue.ts';

useWorkerdRuntime();

export const app = new Hono<{ Bindings: Env }>();
app.onError(onError);
app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  if (!path.startsWith('/api/'))
    return c.html('<!doctype html><title>Not found</title><h1>Not found</h1>', 404);
  // a route for the path under other methods only: 405 with Allow (a handler's own
  // c.notFound() for its method stays a 404)
  const allow = allowedMethods(app.routes, path);
  return allow.length > 0 && !allow.includes(c.req.method)
    ? problemResponse(405, `${path} accepts ${allow.join(', ')}, not ${c.req.method}`, path, {
        headers: { allow: allow.join(', ') },
      })
    : problemResponse(404, `no route ${c.req.method} ${path}`, path);
});

app.get('/health', async (c) => {
  const ort = await checkOrt();
  return c.json(
    { status: ort.ok ? 'ok' : 'degraded', version: pkg.version, ort },
    ort.ok ? 200 : 503,
  );
});

app.route('/api/v1/admin', adminApi());
app.route('/api/v1', apiV1());

app.route('/', pages);

export default {
  fetch: app.fetch,
  queue: handleQueueBatch,
} satisfies ExportedHandler<Env, ShardMessage>;
