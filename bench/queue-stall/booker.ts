/** A second Worker holding the D1 binding: the consumer's D1 statements run here (svc=1). */
interface Env {
  DB: D1Database;
}
export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const { chain, step } = (await req.json()) as { chain: number; step: number };
    await env.DB.prepare(
      'CREATE TABLE IF NOT EXISTS steps (chain INTEGER PRIMARY KEY, step INTEGER NOT NULL)',
    ).run();
    const prev = await env.DB.prepare('SELECT step FROM steps WHERE chain = ?').bind(chain).first();
    await env.DB.prepare('INSERT OR REPLACE INTO steps (chain, step) VALUES (?, ?)')
      .bind(chain, step)
      .run();
    return Response.json({ prev: prev?.step ?? null });
  },
};
