/**
 * fetch for the commands that talk to a cann-quant server (submit, admin, the seed of
 * `npm start`): a request that fails at the network level is sent again when its method is
 * idempotent, and the final error says why the server could not be reached.
 */
import { CliError } from './errors.ts';

/** Attempts of an idempotent request the network drops (waits 0.5, 1, 2 s between them). */
export const NETWORK_ATTEMPTS = 4;

/**
 * How long one attempt of an idempotent request may wait for its answer before it counts as
 * dropped. When the local queue stalls (README, "Known issue"), requests in flight at that moment
 * never get an answer while new ones do; without a limit `npm start` sat 5 minutes (undici's
 * headers timeout) on each of them while loading the zoo.
 */
export const ATTEMPT_TIMEOUT_MS = 120_000;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** A 503's Retry-After in milliseconds when it is a number of seconds up to 30, else undefined. */
function retryAfterMs(res: Response): number | undefined {
  const s = Number(res.headers.get('retry-after') ?? Number.NaN);
  return Number.isFinite(s) && s >= 0 && s <= 30 ? s * 1000 : undefined;
}

/**
 * `fetch(url, init)`, sent again up to {@link NETWORK_ATTEMPTS} times in all when the network
 * fails, an attempt gets no answer in `attemptTimeoutMs`, or the answer is 503 Service
 * Unavailable (after its Retry-After when that is given in seconds, up to 30), and the method
 * is idempotent (RFC 9110 §9.2.2; a POST is sent once, and waits as long as it takes). A local
 * wrangler dev busy with queue shards can drop a kept-alive connection ("other side closed");
 * that once ended `npm start` half-way through loading the zoo, and so did a 503 "Your worker
 * restarted mid-request" from wrangler dev (2026-11-29). A 503 after the last attempt is
 * returned as it is. A caller's own `init.signal` replaces the per-attempt limit. Throws a
 * CliError naming the cause.
 */
export async function fetchRetrying(
  url: string,
  init: RequestInit = {},
  { attemptTimeoutMs = ATTEMPT_TIMEOUT_MS }: { attemptTimeoutMs?: number } = {},
): Promise<Response> {
  const idempotent = IDEMPOTENT.has((init.method ?? 'GET').toUpperCase());
  const attempts = idempotent ? NETWORK_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt++) {
    const signal = init.signal ?? (idempotent ? AbortSignal.timeout(attemptTimeoutMs) : undefined);
    try {
      const res = await fetch(url, { ...init, ...(signal ? { signal } : {}) });
      if (res.status === 503 && attempt < attempts) {
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, retryAfterMs(res) ?? 250 * 2 ** attempt));
        continue;
      }
      return res;
    } catch (err) {
      if (attempt < attempts) {
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        continue;
      }
      const tries = attempts > 1 ? `, ${attempts} attempts` : '';
      if ((err as Error).name === 'TimeoutError')
        throw new CliError(
          `cannot reach ${url}: no answer in ${attemptTimeoutMs / 1000} s${tries}`,
        );
      // undici says only "fetch failed"; its cause says why (ECONNREFUSED, other side closed)
      const cause = (err as Error).cause as { code?: string; message?: string } | undefined;
      const why = cause ? ` (${cause.code ?? cause.message})` : '';
      throw new CliError(`cannot reach ${url}: ${(err as Error).message}${why}${tries}`);
    }
  }
}
