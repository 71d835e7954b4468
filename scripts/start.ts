/**
 * `npm start`: the local service on http://127.0.0.1:8787 with every zoo task loaded and the
 * reference recipes submitted (they are scored in the background; the leaderboard fills as they
 * finish). Flags: --port <n>, --tasks a,b, --no-submit, --persist-to <dir>, --watchdog <minutes>
 * (restart a local queue that has open work but no activity for that long; default 5, 0: off).
 * Ctrl-C stops wrangler dev.
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { type RunningService, startService } from './service.ts';
import { queueWatchdog } from './watchdog.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8787' },
    tasks: { type: 'string' },
    'no-submit': { type: 'boolean', default: false },
    'persist-to': { type: 'string' },
    watchdog: { type: 'string', default: '5' },
  },
});
const watchdogMinutes = Number(values.watchdog);
if (!Number.isFinite(watchdogMinutes) || watchdogMinutes < 0) {
  process.stderr.write(
    `npm start: --watchdog takes minutes (a number >= 0, 0: off), got '${values.watchdog}'\n`,
  );
  process.exit(1);
}
const url = `http://127.0.0.1:${Number(values.port)}`;
const pipeOutput = (child: ChildProcess) => {
  child.stdout?.pipe(process.stdout);
  child.stderr?.pipe(process.stderr);
};
/** The service the watchdog acts on: startService's own while the zoo loads, then the ready one. */
let watched: Pick<RunningService, 'restart' | 'progress'> | undefined;
/** Set once the service is ready: a restarted wrangler dev's output goes to ours from then on. */
let ready: RunningService | undefined;
const dog =
  watchdogMinutes > 0
    ? queueWatchdog({
        idleMs: watchdogMinutes * 60_000,
        progress: () => watched!.progress(),
        restart: async () => {
          await watched!.restart();
          if (ready) pipeOutput(ready.process);
          process.stderr.write(`watchdog: wrangler dev restarted on ${url}\n`);
        },
        log: (line) => process.stderr.write(`${line}\n`),
      })
    : null;
const service = await startService({
  port: Number(values.port),
  ...(values.tasks ? { tasks: values.tasks.split(',') } : {}),
  submit: !values['no-submit'],
  ...(values['persist-to'] ? { persistTo: values['persist-to'] } : {}),
  // While the zoo loads, the watchdog looks between two tasks (no upload is in flight there).
  ...(dog
    ? {
        betweenTasks: async (s: Pick<RunningService, 'restart' | 'progress'>) => {
          watched = s;
          await dog.tick();
        },
      }
    : {}),
}).catch((err: unknown) => {
  // startService has stopped wrangler dev; what went wrong, without a stack trace
  process.stderr.write(`npm start: ${(err as Error).message}\n`);
  process.exit(1);
});
process.stderr.write(
  [
    `ready: ${service.url}  (leaderboard /, API ${service.url}/api/v1/docs)`,
    `admin token (also in ${values['persist-to'] ?? '.wrangler/state'}/cann-quant-admin-token): ${service.adminToken}`,
    `a submitter token: node cli/bin.js admin token create --submitter you`,
    '',
  ].join('\n'),
);
pipeOutput(service.process);
watched = service;
ready = service;
let stopping = false;
const stop = () => {
  stopping = true;
  void service.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

if (dog) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 15_000));
    if (stopping) break;
    await dog.tick().catch((err: unknown) => {
      process.stderr.write(
        `npm start: the watchdog could not restart wrangler dev: ${(err as Error).message}\n`,
      );
      process.exit(1);
    });
  }
}
