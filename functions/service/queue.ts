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

export async function handleQueueBatch(batch: MessageBatch<ShardMessage>, env: Env): Promise<void> {
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
  for (const m of batch.messages) {
    try {
      await handleMessage(env, m.body);
      m.ack();
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      console.error(`${describeMessage(m.body)} (attempt ${m.attempts}):`, err);
      await recordShardError(env, m.body, err).catch(() => {});
      if (err instanceof PermanentFailure) {
        await failSubmission(env, m.body, `${describeMessage(m.body)}: ${text}`);
        m.ack();
      } else m.retry();
    }
  }
}
