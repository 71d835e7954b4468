/**
 * `npm start`: the local service on http://127.0.0.1:8787 with every zoo task loaded and the
 * reference recipes submitted (they are scored in the background; the leaderboard fills as they
 * finish). Flags: --port <n>, --tasks a,b, --no-submit, --persist-to <dir>. Ctrl-C stops wrangler dev.
 */
import { parseArgs } from 'node:util';
import { startService } from './service.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8787' },
    tasks: { type: 'string' },
    'no-submit': { type: 'boolean', default: false },
    'persist-to': { type: 'string' },
  },
});
const service = await startService({
  port: Number(values.port),
  ...(values.tasks ? { tasks: values.tasks.split(',') } : {}),
  submit: !values['no-submit'],
  ...(values['persist-to'] ? { persistTo: values['persist-to'] } : {}),
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
service.process.stdout?.pipe(process.stdout);
service.process.stderr?.pipe(process.stderr);
const stop = () => void service.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
