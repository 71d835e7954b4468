/**
 * fetch for the commands that talk to a cann-quant server (submit, admin, the seed of
 * `npm start`): a request that fails at the network level is sent again when its method is
 * idempotent, and the final error says why the server could not be reached.
 */
import { CliError } from './errors.ts';

/** Attempts of an idempotent request the network drops (waits 0.5, 1, 2 s between them). */
export const NETWORK_ATTEMPTS = 4;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * `fetch(url, init)`, sent again up to {@link NETWORK_ATTEMPTS} times in all when the network
 * fails and the method is idempotent (RFC 9110 §9.2.2; a POST is sent once). A local wrangler
 * dev busy with queue shards can drop a kept-alive connection ("other side closed"); that once
 * ended `npm start` half-way through loading the zoo. Throws a CliError naming the cause.
 */
export async function fetchRetrying(url: string, init: RequestInit = {}): Promise<Response> {
  const attempts = IDEMPOTENT.has((init.method ?? 'GET').toUpperCase()) ? NETWORK_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (attempt < attempts) {
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        continue;
      }
      // undici says only "fetch failed"; its cause says why (ECONNREFUSED, other side closed)
      const cause = (err as Error).cause as { code?: string; message?: string } | undefined;
      const why = cause ? ` (${cause.code ?? cause.message})` : '';
      const tries = attempts > 1 ? `, ${attempts} attempts` : '';
      throw new CliError(`cannot reach ${url}: ${(err as Error).message}${why}${tries}`);
    }
  }
}
