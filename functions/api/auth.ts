/**
 * Bearer tokens. A token is `cq_<id>_<secret>`: the id finds the row, the secret is checked
 * against the stored SHA-256 in constant time. Tokens are shown once, at creation; D1 holds only
 * the hash; a revoked token stops working at once.
 */
import { and, eq, isNull } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import * as schema from '../../db/schema.ts';
import type { Env } from '../env.ts';
import { database } from '../service/runs.ts';
import { ProblemError } from './problem.ts';
import { constantTimeEqual, hashSecret, TOKEN } from './tokens.ts';

export { constantTimeEqual, hashSecret, newToken } from './tokens.ts';

/** Who made a request. */
export interface Caller {
  tokenId: string;
  submitter: string;
  role: 'submitter' | 'admin';
}

/** Resolves a bearer token to its caller, or null. */
export async function authenticate(env: Env, header: string | undefined): Promise<Caller | null> {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  const parts = m ? TOKEN.exec(m[1]!.trim()) : null;
  if (!parts) return null;
  const [, id, secret] = parts;
  const db = database(env);
  const row = await db
    .select()
    .from(schema.tokens)
    .where(and(eq(schema.tokens.id, id!), isNull(schema.tokens.revokedAt)))
    .get();
  // Hash and compare even when the id is unknown, so that timing says nothing about ids.
  const hash = await hashSecret(secret!);
  if (!constantTimeEqual(hash, row?.hash ?? '0'.repeat(64)) || !row) return null;
  await db
    .update(schema.tokens)
    .set({ lastUsedAt: Date.now() })
    .where(eq(schema.tokens.id, row.id))
    .run();
  return { tokenId: row.id, submitter: row.submitter, role: row.role };
}

/** Requires a valid token (401 otherwise) and, with `role: 'admin'`, an admin token (403). */
export function requireToken(
  options: { role?: 'admin' } = {},
): MiddlewareHandler<{ Bindings: Env; Variables: { caller: Caller } }> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const caller = await authenticate(c.env, header);
    if (!caller) {
      throw new ProblemError(
        401,
        header
          ? 'the bearer token is unknown, malformed or revoked'
          : 'this endpoint needs an Authorization: Bearer <token> header',
        { headers: { 'www-authenticate': 'Bearer realm="cann-quant"' } },
      );
    }
    if (options.role === 'admin' && caller.role !== 'admin')
      throw new ProblemError(403, 'this endpoint needs an admin token');
    c.set('caller', caller);
    await next();
  };
}
