/**
 * Queue consumers. `cann-quant-shards` carries the pipeline's messages; a message that keeps
 * failing goes (after max_retries, wrangler.toml) to `cann-quant-shards-dlq`, whose consumer
 * fails the submission with a readable reason. A PermanentFailure fails it at once.
 */
import type { Env } from '../env.ts';
import { describeMessage, type ShardMessage } from './messages.ts';
import { failSubmission, handleMessage, PermanentFailure, recordShardError } from './runs.ts';

/** Name of the dead-letter queue (wrangler.toml). */
export const DEAD_LETTER_QUEUE = 'cann-quant-shards-dlq';

/**
 * This isolate's queue consumer: batches being handled now, and when (ms) the last one ended.
 * GET /api/v1/admin/progress reports it for `npm start`'s watchdog (scripts/watchdog.ts): miniflare's
 * queue stalls with the consumer idle after a finished batch (README, "Known issue"), which a
 * consumer still busy with a long shard never looks like. Per isolate, so it means something
 * only where one isolate runs the Worker (wrangler dev).
 */
export const consumerState: { inFlight: number; lastEnd: number | null } = {
  inFlight: 0,
  lastEnd: null,
};

/** Cloudflare's wall-clock limit of a queue consumer invocation, in seconds. */
const CONSUMER_LIMIT_SECONDS = 900;

/**
 * How long one message may take before it is given up and retried (env MESSAGE_DEADLINE_SECONDS,
 * default {@link CONSUMER_LIMIT_SECONDS}). Locally nothing enforces a limit, and miniflare's
 * broker waits for each batch before it delivers the next, so an invocation that never finished
 * would stop the whole queue. A message of the full zoo took 5.1 s at most over 1,609 batches
 * (scripts/watchdog.ts).
 */
export function messageDeadlineMs(env: Pick<Env, 'MESSAGE_DEADLINE_SECONDS'>): number {
  const s = Number(env.MESSAGE_DEADLINE_SECONDS ?? CONSUMER_LIMIT_SECONDS);
  return (Number.isFinite(s) && s > 0 ? s : CONSUMER_LIMIT_SECONDS) * 1000;
}

/** `work`, or an error naming `what` once `ms` have passed without it settling. */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

export async function handleQueueBatch(batch: MessageBatch<ShardMessage>, env: Env): Promise<void> {
  consumerState.inFlight++;
  try {
    await handleBatch(batch, env);
  } finally {
    consumerState.inFlight--;
    consumerState.lastEnd = Date.now();
  }
}

async function handleBatch(batch: MessageBatch<ShardMessage>, env: Env): Promise<void> {
  if (batch.queue === DEAD_LETTER_QUEUE) {
    for (const m of batch.messages) {
      const shard =
        m.body.kind === 'shard'
          ? await env.DB.prepare(
              'SELECT error, attempts FROM shards WHERE run_id = ? AND phase = ? AND idx = ?',
            )
              .bind(m.body.runId, m.body.phase, m.body.idx)
              .first<{ error: string | null; attempts: number }>()
          : null;
      await failSubmission(
        env,
        m.body,
        `${describeMessage(m.body)} failed ${shard?.attempts ?? m.attempts} time(s) and was dead-lettered${shard?.error ? `: ${shard.error}` : ''}`,
      );
      m.ack();
    }
    return;
  }
  const deadline = messageDeadlineMs(env);
  const trace = env.QUEUE_TRACE === '1';
  for (const m of batch.messages) {
    const what = describeMessage(m.body);
    const started = Date.now();
    if (trace) console.log(`queue trace: start ${what}`);
    try {
      await withDeadline(handleMessage(env, m.body), deadline, what);
      m.ack();
      if (trace) console.log(`queue trace: end ${what} (${Date.now() - started} ms)`);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      console.error(`${what} (attempt ${m.attempts}):`, err);
      // D1 may be what hung: recording the error gets the same deadline.
      await withDeadline(recordShardError(env, m.body, err), deadline, 'recording the error').catch(
        () => {},
      );
      if (err instanceof PermanentFailure) {
        await failSubmission(env, m.body, `${what}: ${text}`);
        m.ack();
      } else m.retry();
    }
  }
}
