/**
 * `npm start`'s queue watchdog. The local queue (miniflare) delivers one batch at a time, and it
 * sometimes stops delivering: nothing is logged, the work stays in D1 and nothing moves (README,
 * "Known issue"). A restart of `wrangler dev` on the same state resumes it (POST
 * /api/v1/admin/resume). The watchdog does that restart itself when the service has open
 * submissions but its last activity (GET /api/v1/admin/progress: the time of the pipeline's last
 * write) has not changed for `idleMs`. A queue message takes 0.4 s at the median and 5.1 s at
 * most (1,609 batches of the full zoo, 2026-11-28), so the default of 5 minutes leaves a factor
 * of 60; and a restart that did catch a slow message costs only its redoing (at-least-once).
 *
 * It restarts sooner on the stall's own signature (bench/results/queue-stall-2026-11-29.md):
 * the consumer finished its last batch and got no next one while work is open. miniflare hands
 * the next batch over as soon as the last one returns, so `handoffMs` (default 45 s) with the
 * consumer idle is a stall, where waiting out the idle limit would cost minutes per stall; a
 * consumer busy with a long shard (in flight) is left to the idle limit.
 */

/** GET /api/v1/admin/progress. */
export interface QueueProgress {
  open_submissions: number;
  pending_shards: number;
  /** Time (ms) of the pipeline's last write; null before any. */
  last_activity: number | null;
  /** Queue batches the Worker is handling now (absent from servers older than this field). */
  consumer_in_flight?: number;
  /** Time (ms, server clock) the Worker's last queue batch ended; null before any. */
  consumer_last_end?: number | null;
}

/** Default {@link WatchdogOptions.handoffMs}. */
export const HANDOFF_MS = 45_000;

export interface WatchdogOptions {
  /** No change of `last_activity` for this long, with open submissions, is a stall. */
  idleMs: number;
  /**
   * The consumer idle (nothing in flight) this long after its last batch ended, with open
   * submissions, is a stall too (default {@link HANDOFF_MS}; never more than `idleMs`).
   */
  handoffMs?: number;
  progress: () => Promise<QueueProgress>;
  restart: () => Promise<void>;
  log: (line: string) => void;
  /** The watchdog's clock (tests pass a fake one). */
  now?: () => number;
}

/** What one look at the service found. */
export type WatchdogState = 'idle' | 'moving' | 'waiting' | 'restarted' | 'unreachable';

/**
 * A watchdog to be ticked every few seconds (`npm start`: 15 s; never twice at once). Idle time
 * is measured on the watchdog's own clock, from the first tick that saw the current
 * `last_activity`, so the server's clock never has to agree with ours. An unreachable service counts as no activity:
 * a dead `wrangler dev` is restarted too.
 */
export function queueWatchdog(o: WatchdogOptions): { tick(): Promise<WatchdogState> } {
  const now = o.now ?? Date.now;
  const handoffMs = Math.min(o.handoffMs ?? HANDOFF_MS, o.idleMs);
  let seen: number | null | undefined;
  let since = now();
  /** The idle consumer's last batch end as last seen, and since when (our clock) it is so. */
  let seenEnd: number | undefined;
  let endSince = now();
  const restart = async (why: string) => {
    o.log(`watchdog: ${why} with work open; restarting wrangler dev`);
    await o.restart();
    since = now();
    seenEnd = undefined;
    return 'restarted' as const;
  };
  return {
    async tick() {
      let state: WatchdogState;
      /** Set when the consumer has sat idle past `handoffMs`: how long (ms). */
      let handedOff: number | undefined;
      try {
        const p = await o.progress();
        if (p.open_submissions === 0) {
          since = now();
          seenEnd = undefined;
          return 'idle';
        }
        const lastEnd = p.consumer_last_end;
        if (p.consumer_in_flight === 0 && typeof lastEnd === 'number') {
          if (lastEnd !== seenEnd) {
            seenEnd = lastEnd;
            endSince = now();
          } else if (now() - endSince >= handoffMs) handedOff = now() - endSince;
        } else seenEnd = undefined;
        if (handedOff === undefined && p.last_activity !== seen) {
          seen = p.last_activity;
          since = now();
          return 'moving';
        }
        state = 'waiting';
      } catch {
        state = 'unreachable';
      }
      // Outside the try: a restart that fails ends the watchdog as before, not as 'unreachable'.
      if (handedOff !== undefined)
        return await restart(
          `the queue consumer finished its last batch and got no next one for ${Math.round(handedOff / 1000)} s`,
        );
      const quiet = now() - since;
      if (quiet < o.idleMs) return state;
      return await restart(
        `${state === 'unreachable' ? 'the service has not answered' : 'no queue activity'} for ${Math.round(quiet / 60_000)} min`,
      );
    },
  };
}
