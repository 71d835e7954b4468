/**
 * Token format and hashing, free of Worker bindings so that the CLI (`cann-quant admin token
 * create`) makes tokens exactly as the service does.
 */

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

/** The token format: `cq_<12-char id>_<43-char base64url secret>`. */
export const TOKEN = /^cq_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** Makes a new token: the string to show once and the row to store. */
export async function newToken(submitter: string, role: 'submitter' | 'admin' = 'submitter') {
  const bytes = crypto.getRandomValues(new Uint8Array(32 + 12));
  const id = [...bytes.subarray(32)]
    .map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36])
    .join('');
  const secret = btoa(String.fromCharCode(...bytes.subarray(0, 32)))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
  return {
    token: `cq_${id}_${secret}`,
    row: { id, submitter, role, hash: await hashSecret(secret) },
  };
}
