/**
 * The `cann-quant` Worker (wrangler.toml `main`). For now: a landing page and a health probe
 * that proves ORT runs in this isolate.
 */

import { Hono } from 'hono';
import { pages } from '../leaderboard/routes.tsx';
import pkg from '../package.json';
import type { Env } from './env.ts';
import { checkOrt } from './health.ts';
import { useWorkerdRuntime } from './runtime-workerd.ts';

useWorkerdRuntime();

export const app = new Hono<{ Bindings: Env }>();

app.get('/health', async (c) => {
  const ort = await checkOrt();
  return c.json(
    { status: ort.ok ? 'ok' : 'degraded', version: pkg.version, ort },
    ort.ok ? 200 : 503,
  );
});

app.route('/', pages);

export default app;
