import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import type { ShardMessage } from './messages.ts';
import { consumerState, handleQueueBatch, messageDeadlineMs, withDeadline } from './queue.ts';

/** A D1 binding whose every query never answers (a stuck storage layer). */
function hungD1(): D1Database {
  const never = () => new Promise<never>(() => {});
  const statement: Record<string, unknown> = {};
  Object.assign(statement, {
    bind: () => statement,
    first: never,
    all: never,
    raw: never,
    run: never,
  });
  return { prepare: () => statement, batch: never, exec: never } as unknown as D1Database;
}

/** A batch of the shards queue holding one message, whose ack and retry do nothing. */
function oneShard(body: ShardMessage): MessageBatch<ShardMessage> {
  return {
    queue: 'cann-quant-shards',
    messages: [
      { id: 'm', timestamp: new Date(), attempts: 1, body, ack: () => {}, retry: () => {} },
    ],
  } as unknown as MessageBatch<ShardMessage>;
}

describe('message deadline', () => {
  it('passes a result through and rejects, naming the work, when time runs out', async () => {
    expect(await withDeadline(Promise.resolve(42), 1000, 'x')).toBe(42);
    await expect(withDeadline(Promise.reject(new Error('boom')), 1000, 'x')).rejects.toThrow(
      'boom',
    );
    await expect(
      withDeadline(new Promise(() => {}), 50, "shard 3 of phase 'validate' of run r1"),
    ).rejects.toThrow("shard 3 of phase 'validate' of run r1 did not finish within 0.05 s");
  });

  it('defaults to the 15 minutes of a Cloudflare queue consumer and reads the variable', () => {
    expect(messageDeadlineMs({})).toBe(900_000);
    expect(messageDeadlineMs({ MESSAGE_DEADLINE_SECONDS: '60' })).toBe(60_000);
    expect(messageDeadlineMs({ MESSAGE_DEADLINE_SECONDS: 'soon' })).toBe(900_000);
    expect(messageDeadlineMs({ MESSAGE_DEADLINE_SECONDS: '-1' })).toBe(900_000);
  });

  it('retries a message whose handling hangs instead of holding the queue', async () => {
    const calls: string[] = [];
    const body: ShardMessage = { kind: 'shard', runId: 'r-hung', phase: 'validate', idx: 0 };
    const batch = {
      queue: 'cann-quant-shards',
      messages: [
        {
          id: 'm1',
          timestamp: new Date(),
          attempts: 1,
          body,
          ack: () => calls.push('ack'),
          retry: () => calls.push('retry'),
        },
      ],
    } as unknown as MessageBatch<ShardMessage>;
    const t0 = Date.now();
    await handleQueueBatch(batch, { ...env, DB: hungD1(), MESSAGE_DEADLINE_SECONDS: '0.2' });
    expect(calls).toEqual(['retry']);
    // the message's deadline plus the error record's, not forever
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('traces each message when QUEUE_TRACE is 1, and only then', async () => {
    const batch = oneShard({ kind: 'shard', runId: 'r-traced', phase: 'validate', idx: 2 });
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const hung = { ...env, DB: hungD1(), MESSAGE_DEADLINE_SECONDS: '0.1' };
      await handleQueueBatch(batch, hung);
      expect(log.mock.calls.filter((c) => String(c[0]).startsWith('queue trace'))).toEqual([]);
      await handleQueueBatch(batch, { ...hung, QUEUE_TRACE: '1' });
      // it started and never ended: the message timed out (the end line is for handled messages)
      expect(log.mock.calls.map((c) => c[0])).toEqual([
        "queue trace: start shard 2 of phase 'validate' of run r-traced",
      ]);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });

  it('counts the batch in flight while it is handled and stamps its end (GET /admin/progress)', async () => {
    const batch = oneShard({ kind: 'shard', runId: 'r-counted', phase: 'validate', idx: 1 });
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const before = consumerState.inFlight;
      const t0 = Date.now();
      const handling = handleQueueBatch(batch, {
        ...env,
        DB: hungD1(),
        MESSAGE_DEADLINE_SECONDS: '0.2',
      });
      expect(consumerState.inFlight).toBe(before + 1);
      await handling;
      // ended (here by its deadline: a failed batch ends too) and no longer in flight
      expect(consumerState.inFlight).toBe(before);
      expect(consumerState.lastEnd).toBeGreaterThanOrEqual(t0 + 200);
    } finally {
      error.mockRestore();
    }
  });
});
