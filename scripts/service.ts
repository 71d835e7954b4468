/**
 * The local service, ready to use: D1 migrations applied, `wrangler dev` (local D1, R2 and
 * Queues in miniflare) started, zoo tasks loaded and the reference recipes submitted, so that
 * the leaderboard is never empty. `npm start` runs it (scripts/start.ts).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalToken, serverCall } from '../cli/commands/service.ts';
import { packTask, uploadTask } from '../cli/seed.ts';
import { DEFAULT_TEMPLATE_BY_KIND, recipeFromTemplate } from '../core/recipe/templates.ts';
import { getTask, TASKS } from '../zoo/registry.ts';
import type { QueueProgress } from './watchdog.ts';

export interface ServiceOptions {
  port?: number;
  /** wrangler's local state directory (default .wrangler/state). */
  persistTo?: string;
  /** Zoo tasks to load (default: all). */
  tasks?: string[];
  /** Submit the reference recipes of the loaded tasks (default true). */
  submit?: boolean;
  /** Wait until every reference submission is scored (default false). */
  waitScored?: boolean;
  /**
   * Called after each task is loaded and its reference recipes submitted, when no upload is in
   * flight, so a restart there loses nothing: `npm start`'s watchdog looks at the queue there
   * while the zoo loads (the references of the first tasks are scored meanwhile). An error
   * stops the service and rejects `startService`.
   */
  betweenTasks?: (service: Pick<RunningService, 'restart' | 'progress'>) => Promise<void>;
  log?: (line: string) => void;
}

export interface RunningService {
  url: string;
  adminToken: string;
  submissions: string[];
  /** The running `wrangler dev` (a new one after each restart). */
  readonly process: ChildProcess;
  stop(): Promise<void>;
  /** Stops `wrangler dev`, starts it again on the same state and resumes the unfinished work. */
  restart(): Promise<void>;
  /** GET /api/v1/admin/progress within 30 s (what the watchdog watches); throws otherwise. */
  progress(): Promise<QueueProgress>;
}

const wranglerEnv = {
  ...process.env,
  CI: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
};

/** The reference recipes of a task: its default template and the naive baseline, on ascend310. */
export function referenceRecipes(taskId: string) {
  const kind = getTask(taskId).manifest.kind;
  const template = DEFAULT_TEMPLATE_BY_KIND[kind] ?? 'industrial-vision';
  return [template, 'naive-baseline'].map((t) => ({
    ...recipeFromTemplate(t, taskId, 'ascend310'),
    name: `reference-${t}`,
  }));
}

export async function startService(o: ServiceOptions = {}): Promise<RunningService> {
  const port = o.port ?? 8787;
  const persistTo = o.persistTo ?? '.wrangler/state';
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const tasks = o.tasks ?? Object.keys(TASKS);
  await mkdir(persistTo, { recursive: true });

  const migrate = spawnSync(
    'npx',
    ['wrangler', 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistTo],
    { encoding: 'utf8', env: wranglerEnv },
  );
  if (migrate.status !== 0)
    throw new Error(`migrations failed: ${migrate.stderr || migrate.stdout}`);

  // One admin token per state directory, kept beside it (never committed: .wrangler is ignored).
  const tokenFile = join(persistTo, 'cann-quant-admin-token');
  let adminToken = existsSync(tokenFile) ? (await readFile(tokenFile, 'utf8')).trim() : '';
  if (!adminToken) {
    adminToken = (await createLocalToken('cann-quant-reference', 'admin', persistTo)).token;
    await writeFile(tokenFile, `${adminToken}\n`, { mode: 0o600 });
  }

  const url = `http://127.0.0.1:${port}`;
  let wrangler = await launchWrangler(url, port, persistTo);
  log(
    `service on ${url} (state in ${persistTo}; wrangler dev's output in ${wranglerLog(persistTo)})`,
  );
  // Work that was in flight when the last wrangler dev stopped (its local queue did not survive).
  const resume = async () => {
    const resumed = await serverCall<{ advanced: number; finalized: number }>(
      url,
      '/api/v1/admin/resume',
      { method: 'POST', token: adminToken },
    );
    if (resumed.body.advanced + resumed.body.finalized > 0)
      log(
        `resumed ${resumed.body.advanced} run(s) and ${resumed.body.finalized} finalization(s) left from the last start`,
      );
  };
  try {
    await resume();
  } catch (err) {
    await wrangler.stop();
    throw err;
  }
  const stop = () => wrangler.stop();
  const restart = async () => {
    await wrangler.stop();
    wrangler = await launchWrangler(url, port, persistTo);
    await resume();
  };
  const progress = async () => {
    const res = await serverCall<QueueProgress>(url, '/api/v1/admin/progress', {
      token: adminToken,
      // a stuck service must not hang the caller too
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200) throw new Error(`GET /api/v1/admin/progress: ${res.status}`);
    return res.body;
  };

  const submissions: string[] = [];
  try {
    for (const id of tasks) {
      const t0 = Date.now();
      const r = await uploadTask(url, adminToken, await packTask(id));
      log(
        `loaded ${id}: ${r.uploaded} blobs uploaded, ${r.skipped} present (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
      if (o.submit === false) continue;
      for (const recipe of referenceRecipes(id)) {
        const res = await serverCall<{ id: string }>(url, '/api/v1/submissions', {
          method: 'POST',
          token: adminToken,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(recipe),
        });
        submissions.push(res.body.id);
        log(`submitted ${recipe.name} for ${id}: ${res.body.id}`);
      }
      await o.betweenTasks?.({ restart, progress });
    }
    if (o.waitScored) {
      for (const sid of submissions) {
        for (;;) {
          const v = await serverCall<{ status: string; error: string | null }>(
            url,
            `/api/v1/submissions/${sid}`,
          );
          if (v.body.status === 'scored') break;
          if (v.body.status === 'failed') throw new Error(`${sid} failed: ${v.body.error}`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
      log(`all ${submissions.length} reference submissions scored`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    adminToken,
    submissions,
    get process() {
      return wrangler.child;
    },
    stop,
    restart,
    progress,
  };
}

/** Where `wrangler dev`'s output goes: its request log, the Worker's console, the queue trace. */
const wranglerLog = (persistTo: string) => join(persistTo, 'wrangler-dev.log');

/**
 * Starts `wrangler dev` and waits until it answers /health (120 s at most). Its output is
 * appended to `<persistTo>/wrangler-dev.log` (a restart appends to the same file) and its last
 * 20,000 characters are kept for the error when it fails to start. Its `stop` sends SIGTERM to
 * the whole process group and SIGKILL 10 s later if it is still there (a stuck workerd can
 * ignore SIGTERM).
 */
async function launchWrangler(
  url: string,
  port: number,
  persistTo: string,
): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(
    'npx',
    [
      'wrangler',
      'dev',
      '--local',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--persist-to',
      persistTo,
      // QUEUE_TRACE=1 npm start: the Worker logs each queue message's start and end.
      ...(process.env.QUEUE_TRACE === '1' ? ['--var', 'QUEUE_TRACE:1'] : []),
    ],
    { env: wranglerEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  const logFile = createWriteStream(wranglerLog(persistTo), { flags: 'a' });
  logFile.write(`--- wrangler dev started ${new Date().toISOString()} on ${url}\n`);
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-20_000);
    logFile.write(b);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise((r) => child.once('exit', r));
  child.once('close', () => logFile.end());
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      /* gone */
    }
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    signal('SIGTERM');
    const killer = setTimeout(() => signal('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /health in 120 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
