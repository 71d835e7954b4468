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

/** Who made a request. */
export interface Caller {
  tokenId: string;
  submitter: string;
  role: 'submitter' | 'admin';
}

const hex = (b: ArrayBuffer) =>
  [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/** SHA-256 (hex) of a token's secret part. */
export async function hashSecret(secret: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret)));
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

const TOKEN = /^cq_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** Makes a new token: the string to show once and the row to store. */
export async function newToken(submitter: string, role: Caller['role'] = 'submitter') {
  const bytes = crypto.getRandomValues(new Uint8Array(32 + 8));
  const id = [...bytes.subarray(32)]
    .map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36])
    .join('')
    .slice(0, 12)
    .padEnd(12, '0');
  const secret = btoa(String.fromCharCode(...bytes.subarray(0, 32)))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
  return {
    token: `cq_${id}_${secret}`,
    row: { id, submitter, role, hash: await hashSecret(secret) },
  };
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
