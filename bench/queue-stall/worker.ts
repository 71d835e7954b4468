/**
 * A queue consumer with nothing of cann-quant in it, to see what makes miniflare's local queue
 * stall (run.sh drives it; the README's "Known issue" and
 * bench/results/queue-stall-2026-11-29.md say what it found). Each message does what a shard
 * does, each part switchable by the knobs the seed request sets: D1 statements, an R2 read and
 * write of a ~1 MB object, a Float32Array of `mem` MB filled by CPU work (2-41 passes over 8M
 * elements; workerd's clock does not move during pure CPU work, so the work is counted in
 * iterations, not milliseconds), then one follow-up message, so the backlog stays as large as
 * it was seeded. Every handled message logs `handled <chain>/<step>`.
 *
 * Two knobs move the D1 statements out of the consumer's invocation: `book=1` leaves them to a
 * second queue's consumer in the same Worker (the heavy consumer sends it one small message),
 * and `svc=1` to another Worker, booker.ts, over a service binding (run.sh with
 * `WRANGLER_ARGS="-c bench/queue-stall/booker.toml"`, which runs both Workers in one wrangler dev).
 * Three test whether the garbage collection of D1's objects matters: `keep=1` keeps every D1
 * prepared statement reachable forever, `keepinv=1` until the end of its message, and
 * `keepdummy=1` (the control) keeps as many small plain objects instead.
 */
/**
 * What each message does: MB allocated (fresh each time unless `reuse`); D1: 'all' (create,
 * select, insert), 'read' (one `SELECT ?`) or 'none'; whether it touches R2.
 */
interface Knobs {
  mem: number;
  /** Reuse one buffer across messages instead of allocating a new one (no garbage). */
  reuse: boolean;
  /** Milliseconds the handler waits (setTimeout) after its last message, before it returns. */
  tail: number;
  d1: 'all' | 'read' | 'none';
  r2: boolean;
  /** D1 left to a second queue's consumer: the heavy consumer sends it one small message. */
  book: boolean;
  /** D1 in another Worker (booker.ts), called over a service binding. */
  svc: boolean;
  /** Keep every D1 prepared statement reachable forever. */
  keep: boolean;
  /** Keep them reachable until the end of the message that made them. */
  keepinv: boolean;
  /** The control of `keep`: keep six small plain objects per message reachable instead. */
  keepdummy: boolean;
}
interface Step extends Knobs {
  chain: number;
  step: number;
}
interface Env {
  DB: D1Database;
  BLOBS: R2Bucket;
  Q: Queue<Step>;
  BOOK: Queue<Step>;
  BOOKER?: Fetcher;
}

let kept: Float32Array | null = null;
const keptStatements: unknown[] = [];
const keptDummies: unknown[] = [];

/** `sql` prepared and bound; kept reachable (`keep`) in {@link keptStatements}. */
function statement(env: Env, keep: boolean, sql: string, ...params: unknown[]) {
  const st = env.DB.prepare(sql);
  const bound = params.length > 0 ? st.bind(...params) : st;
  if (keep) keptStatements.push(st, bound);
  return bound;
}

async function work(env: Env, knobs: Step): Promise<number> {
  const { chain, step, mem, reuse, d1, r2 } = knobs;
  const keep = knobs.keep || knobs.keepinv;
  if (d1 === 'all')
    await statement(
      env,
      keep,
      'CREATE TABLE IF NOT EXISTS steps (chain INTEGER PRIMARY KEY, step INTEGER NOT NULL)',
    ).run();
  const prev =
    d1 === 'all'
      ? await statement(env, keep, 'SELECT step FROM steps WHERE chain = ?', chain).first()
      : d1 === 'read'
        ? await statement(env, keep, 'SELECT ? AS step', step).first()
        : null;
  const key = `blob-${chain % 8}`;
  const obj = r2 ? await env.BLOBS.get(key) : null;
  const bytes = obj ? new Uint8Array(await obj.arrayBuffer()) : new Uint8Array(1 << 20);
  const size = Math.max(1, mem << 18);
  if (reuse && kept?.length !== size) kept = new Float32Array(size);
  const buf = reuse && kept ? kept : new Float32Array(size);
  let acc = 0;
  const rounds = 2 + ((chain * 7919 + step * 104729) % 40);
  for (let r = 0; r < (mem > 0 ? rounds : 0); r++)
    for (let i = 0; i < 8 << 20; i += 3) {
      const j = i % buf.length;
      buf[j] = Math.sqrt(i + r) + (bytes[i & 0xfffff] ?? 0);
      acc += buf[j]!;
    }
  bytes[0] = (bytes[0]! + 1) & 0xff;
  if (r2) await env.BLOBS.put(key, bytes);
  if (d1 === 'all')
    await statement(
      env,
      keep,
      'INSERT OR REPLACE INTO steps (chain, step) VALUES (?, ?)',
      chain,
      step,
    ).run();
  return acc + Number(prev?.step ?? 0);
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === '/seed') {
      const q = url.searchParams;
      const n = Number(q.get('chains') ?? '100');
      const knobs: Knobs = {
        mem: Number(q.get('mem') ?? '32'),
        reuse: q.get('reuse') === '1',
        tail: Number(q.get('tail') ?? '0'),
        d1: q.get('d1') === '0' ? 'none' : q.get('d1') === 'read' ? 'read' : 'all',
        r2: q.get('r2') !== '0',
        book: q.get('book') === '1',
        svc: q.get('svc') === '1',
        keep: q.get('keep') === '1',
        keepinv: q.get('keepinv') === '1',
        keepdummy: q.get('keepdummy') === '1',
      };
      for (let c = 0; c < n; c++) await env.Q.send({ chain: c, step: 0, ...knobs });
      return new Response(`seeded ${n} chains, ${JSON.stringify(knobs)}\n`);
    }
    return new Response(
      'POST /seed?chains=N&mem=MB&d1=0|read|1&r2=0|1&reuse=1&tail=MS&book=1&svc=1&keep=1&keepinv=1&keepdummy=1\n',
      { status: 404 },
    );
  },
  async queue(batch: MessageBatch<Step>, env: Env): Promise<void> {
    if (batch.queue === 'repro-book') {
      for (const m of batch.messages) {
        await work(env, { ...m.body, mem: 0, r2: false });
        m.ack();
        console.log(`booked ${m.body.chain}/${m.body.step}`);
      }
      return;
    }
    for (const m of batch.messages) {
      const { chain, step } = m.body;
      await work(env, m.body.book || m.body.svc ? { ...m.body, d1: 'none' } : m.body);
      if (m.body.svc)
        await (
          await env.BOOKER!.fetch('http://booker/', {
            method: 'POST',
            body: JSON.stringify({ chain, step }),
          })
        ).json();
      if (m.body.book) await env.BOOK.send(m.body);
      await env.Q.send({ ...m.body, step: step + 1 });
      m.ack();
      if (m.body.keepinv) keptStatements.length = 0;
      if (m.body.keepdummy)
        for (let i = 0; i < 6; i++) keptDummies.push({ sql: `s${i}`, params: [chain, step] });
      console.log(`handled ${chain}/${step}`);
    }
    const tail = batch.messages[0]?.body.tail ?? 0;
    if (tail > 0) await new Promise((r) => setTimeout(r, tail));
  },
};
