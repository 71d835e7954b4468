import { describe, expect, it } from 'vitest';
import { type QueueProgress, queueWatchdog } from '../../scripts/watchdog.ts';

const MIN = 60_000;

/** A watchdog over a scripted service: `answers` are what GET /admin/progress returns in turn. */
function scripted(answers: (QueueProgress | 'down')[]) {
  let t = 0;
  const restarts: number[] = [];
  const lines: string[] = [];
  const dog = queueWatchdog({
    idleMs: 20 * MIN,
    now: () => t,
    progress: async () => {
      const a = answers.shift();
      if (a === undefined) throw new Error('script ran out');
      if (a === 'down') throw new Error('fetch failed');
      return a;
    },
    restart: async () => {
      restarts.push(t);
    },
    log: (l) => lines.push(l),
  });
  return {
    /** Ticks once a minute for `minutes` minutes; returns the states. */
    async run(minutes: number) {
      const states: string[] = [];
      for (let i = 0; i < minutes; i++) {
        t += MIN;
        states.push(await dog.tick());
      }
      return states;
    },
    restarts,
    lines,
  };
}

const open = (last: number | null): QueueProgress => ({
  open_submissions: 3,
  pending_shards: 10,
  last_activity: last,
});

describe('queue watchdog', () => {
  it('leaves a moving queue alone, however long it runs', async () => {
    const s = scripted(Array.from({ length: 60 }, (_, i) => open(1000 + i)));
    const states = await s.run(60);
    expect(new Set(states)).toEqual(new Set(['moving']));
    expect(s.restarts).toEqual([]);
  });

  it('waits out a slow message shorter than the idle limit', async () => {
    // A shard running 15 minutes: last_activity stays put, then moves again.
    const answers = [open(1), ...Array.from({ length: 15 }, () => open(1)), open(2), open(3)];
    const s = scripted(answers);
    await s.run(answers.length);
    expect(s.restarts).toEqual([]);
  });

  it('restarts once when open work shows no activity for the idle limit, then watches again', async () => {
    const answers = [...Array.from({ length: 21 }, () => open(5)), open(6), open(7)];
    const s = scripted(answers);
    const states = await s.run(answers.length);
    // Seen at minute 1; still the same at minute 21: 20 minutes quiet.
    expect(s.restarts).toEqual([21 * MIN]);
    expect(states[20]).toBe('restarted');
    expect(states.slice(21)).toEqual(['moving', 'moving']);
    expect(s.lines).toEqual([
      'watchdog: no queue activity for 20 min with work open; restarting wrangler dev',
    ]);
  });

  it('never restarts a service with no open work', async () => {
    const done = { open_submissions: 0, pending_shards: 0, last_activity: 5 };
    const s = scripted(Array.from({ length: 90 }, () => done));
    await s.run(90);
    expect(s.restarts).toEqual([]);
  });

  it('restarts a service that stopped answering', async () => {
    const answers: (QueueProgress | 'down')[] = [
      open(1),
      ...Array.from({ length: 20 }, () => 'down' as const),
    ];
    const s = scripted(answers);
    const states = await s.run(answers.length);
    expect(states.slice(1, 19).every((x) => x === 'unreachable')).toBe(true);
    expect(s.restarts).toEqual([21 * MIN]);
    expect(s.lines[0]).toMatch(/the service has not answered for 20 min/);
  });

  /** Open work, as reported by a server that also reports its queue consumer. */
  const consumer = (last: number, inFlight: number, lastEnd: number | null): QueueProgress => ({
    ...open(last),
    consumer_in_flight: inFlight,
    consumer_last_end: lastEnd,
  });

  it('restarts at once on the stall signature: the consumer idle after its last batch, work open', async () => {
    // Batches end at 100, 200, 300 (each look finds the consumer between two); then it stays
    // idle after the batch that ended at 300 while work is open.
    const answers = [
      consumer(1, 1, null),
      consumer(2, 0, 100),
      consumer(3, 0, 200),
      consumer(4, 0, 300),
      consumer(4, 0, 300),
      consumer(5, 1, 300),
    ];
    const s = scripted(answers);
    const states = await s.run(answers.length);
    // Seen idle after 300 at minute 4, still so at minute 5: 60 s >= 45 s, long before 20 min.
    expect(s.restarts).toEqual([5 * MIN]);
    expect(states).toEqual(['moving', 'moving', 'moving', 'moving', 'restarted', 'moving']);
    expect(s.lines).toEqual([
      'watchdog: the queue consumer finished its last batch and got no next one for 60 s with work open; restarting wrangler dev',
    ]);
  });

  it('leaves a consumer busy with one long batch to the idle limit', async () => {
    // In flight for 25 minutes, no pipeline write: the idle limit (20 min) decides, not the hand-off.
    const answers = Array.from({ length: 25 }, () => consumer(7, 1, 100));
    const s = scripted(answers);
    await s.run(answers.length);
    expect(s.restarts).toEqual([21 * MIN]);
    expect(s.lines[0]).toMatch(/no queue activity for 20 min/);
  });

  it('never takes an idle consumer with no open work, or one not yet started, for a stall', async () => {
    const done = { ...consumer(5, 0, 300), open_submissions: 0 };
    const s = scripted([
      ...Array.from({ length: 10 }, () => done),
      ...Array.from({ length: 5 }, (_, i) => consumer(10 + i, 0, null)),
    ]);
    await s.run(15);
    expect(s.restarts).toEqual([]);
  });

  it('gives the hand-off its own limit (handoffMs), capped by the idle limit', async () => {
    let t = 0;
    const restarts: number[] = [];
    // last_activity moves at every look (submissions keep arriving), so only the hand-off can
    // call this a stall: the consumer stays idle after the batch that ended at 50.
    const answers = Array.from({ length: 12 }, (_, i) => consumer(1 + i, 0, 50));
    const dog = queueWatchdog({
      idleMs: 2 * MIN,
      handoffMs: 10 * MIN,
      now: () => t,
      progress: async () => answers.shift()!,
      restart: async () => {
        restarts.push(t);
      },
      log: () => {},
    });
    for (let i = 0; i < 4; i++) {
      t += MIN;
      await dog.tick();
    }
    // First seen at minute 1; the hand-off's 10 min is capped at the idle limit's 2.
    expect(restarts).toEqual([3 * MIN]);
  });
});
