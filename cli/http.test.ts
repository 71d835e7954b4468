/** fetchRetrying: idempotent requests survive dropped connections; the last error says why. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from './errors.ts';
import { fetchRetrying } from './http.ts';

let server: Server;
let url: string;
/** Requests the server drops (destroys the socket without answering) before it answers. */
let drops = 0;
/** Requests the server leaves unanswered (a stalled service) before it answers. */
let silent = 0;
/** Requests the server answers 503 (wrangler dev: "Your worker restarted mid-request"). */
let unavailable = 0;
let seen = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    seen++;
    if (drops > 0) {
      drops--;
      req.socket.destroy();
      return;
    }
    if (silent > 0) {
      silent--;
      return; // never answered
    }
    if (unavailable > 0) {
      unavailable--;
      res.writeHead(503, { 'retry-after': '0' }).end('Your worker restarted mid-request.');
      return;
    }
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
});
afterAll(
  () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
);

describe('fetchRetrying', () => {
  it('sends a GET or PUT again after the server drops the connection', async () => {
    drops = 2;
    seen = 0;
    const res = await fetchRetrying(url);
    expect(await res.text()).toBe('ok');
    expect(seen).toBe(3);
    drops = 1;
    seen = 0;
    expect((await fetchRetrying(url, { method: 'PUT', body: 'b' })).status).toBe(200);
    expect(seen).toBe(2);
  });

  it('sends a POST once, and says why it failed in one line', async () => {
    drops = 1;
    seen = 0;
    const err = await fetchRetrying(url, { method: 'POST', body: '{}' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toMatch(
      new RegExp(`^cannot reach ${url}: fetch failed \\(.+\\)$`),
    );
    expect(seen).toBe(1);
    drops = 0;
  });

  it('sends an idempotent request again when an attempt gets no answer in time', async () => {
    silent = 2;
    seen = 0;
    const res = await fetchRetrying(url, { method: 'HEAD' }, { attemptTimeoutMs: 200 });
    expect(res.status).toBe(200);
    expect(seen).toBe(3);
    silent = 4;
    seen = 0;
    await expect(fetchRetrying(url, {}, { attemptTimeoutMs: 100 })).rejects.toThrow(
      `cannot reach ${url}: no answer in 0.1 s, 4 attempts`,
    );
    expect(seen).toBe(4);
    silent = 0;
  });

  it('sends an idempotent request again after a 503, and returns the last 503 as it is', async () => {
    unavailable = 2;
    seen = 0;
    const res = await fetchRetrying(url, { method: 'PUT', body: new Blob(['bytes']) });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(seen).toBe(3);
    unavailable = 5;
    seen = 0;
    const last = await fetchRetrying(url, { method: 'HEAD' });
    expect(last.status).toBe(503);
    expect(seen).toBe(4);
    unavailable = 1;
    seen = 0;
    expect((await fetchRetrying(url, { method: 'POST', body: '{}' })).status).toBe(503);
    expect(seen).toBe(1);
    unavailable = 0;
  });

  it('gives up on a server that is not there after 4 attempts, naming the cause', async () => {
    // a port that was just free: nothing listens there
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gone = `http://127.0.0.1:${port}/`;
    await expect(fetchRetrying(gone)).rejects.toThrow(
      `cannot reach ${gone}: fetch failed (ECONNREFUSED), 4 attempts`,
    );
  });
});
