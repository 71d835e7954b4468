/**
 * `npm start`'s queue watchdog. The local queue (miniflare) delivers one batch at a time, and it
 * sometimes stops delivering: nothing is logged, the work stays in D1 and nothing moves (README,
 * "Known issue"). A restart of `wrangler dev` on the same state resumes it (POST
 * /api/v1/admin/resume). The watchdog does that restart itself when the service has open
 * submissions but its last activity (GET /api/v1/admin/progress: the time of the pipeline's last
 * write) has not changed for `idleMs`. A queue message takes 0.4 s at the median and 5.1 s at
 * most (1,609 batches of the full zoo, 2026-11-28), so the default of 5 minutes leaves a factor
 * of 60; and a restart that did catch a slow message costs only its redoing (at-least-once).
 */

/** GET /api/v1/admin/progress. */
export interface QueueProgress {
  open_submissions: number;
  pending_shards: number;
  /** Time (ms) of the pipeline's last write; null before any. */
  last_activity: number | null;
}

export interface WatchdogOptions {
  /** No change of `last_activity` for this long, with open submissions, is a stall. */
  idleMs: number;
  progress: () => Promise<QueueProgress>;
  restart: () => Promise<void>;
  log: (line: string) => void;
  /** The watchdog's clock (tests pass a fake one). */
  now?: () => number;
}

/** What one look at the service found. */
export type WatchdogState = 'idle' | 'moving' | 'waiting' | 'restarted' | 'unreachable';

/**
 * A watchdog to be ticked about once a minute (never twice at once). Idle time is measured on
 * the watchdog's own clock, from the first tick that saw the current `last_activity`, so the
 * server's clock never has to agree with ours. An unreachable service counts as no activity:
 * a dead `wrangler dev` is restarted too.
 */
export function queueWatchdog(o: WatchdogOptions): { tick(): Promise<WatchdogState> } {
  const now = o.now ?? Date.now;
  let seen: number | null | undefined;
  let since = now();
  return {
    async tick() {
      let state: WatchdogState;
      try {
        const p = await o.progress();
        if (p.open_submissions === 0) {
          since = now();
          return 'idle';
        }
        if (p.last_activity !== seen) {
          seen = p.last_activity;
          since = now();
          return 'moving';
        }
        state = 'waiting';
      } catch {
        state = 'unreachable';
      }
      const quiet = now() - since;
      if (quiet < o.idleMs) return state;
      o.log(
        `watchdog: ${state === 'unreachable' ? 'the service has not answered' : 'no queue activity'} for ${Math.round(quiet / 60_000)} min with work open; restarting wrangler dev`,
      );
      await o.restart();
      since = now();
      return 'restarted';
    },
  };
}
