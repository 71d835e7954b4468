/**
 * Talking to a cann-quant server: `submit`, and the `admin` commands (tokens against the local
 * D1 database or a server, seeding zoo tasks).
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Tier } from '../../core/calibrate/sensitivity.ts';
import {
  forImportedQuantization,
  parseRecipeJson,
  type Recipe,
  RecipeError,
} from '../../core/recipe/schema.ts';
import { newToken } from '../../functions/api/tokens.ts';
import { TASKS } from '../../zoo/registry.ts';
import { CliError } from '../errors.ts';
import { fetchRetrying } from '../http.ts';
import { readImportFor } from '../imported-store.ts';
import { progressBar } from '../progress.ts';
import { packTask, uploadTask } from '../seed.ts';
import { localRecipeWarnings, printWarnings } from './score.ts';
import { parsePositiveInt, parseServerUrl, printResult } from './shared.ts';

/** A request to the server; a problem+json answer becomes one readable CliError line. */
export async function serverCall<T>(
  server: string,
  path: string,
  init: RequestInit & { token?: string } = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const url = `${server.replace(/\/$/, '')}${path}`;
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  const res = await fetchRetrying(url, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const p = body as {
      detail?: string;
      errors?: { path: string; expected: string; got: string }[];
    };
    const fields = p?.errors?.length
      ? ` (${p.errors.map((e) => `${e.path || '(recipe)'}: expected ${e.expected}, got ${e.got}`).join('; ')})`
      : '';
    throw new CliError(
      `server answered ${res.status}: ${p?.detail ?? String(text).slice(0, 200)}${fields}`,
      res.status === 400 || res.status === 409 || res.status === 413 ? 2 : 1,
    );
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

interface SubmissionView {
  id: string;
  status: string;
  error: string | null;
  runs: { role: string; phases: { phase: string; done: number; total: number }[] }[];
  result: {
    qqi: number | null;
    level: number;
    lossPoints: number;
    metric: string;
    int8: number;
    fp32: number;
  } | null;
  links?: Record<string, string>;
}

function token(o: { token?: string }): string {
  const t = o.token ?? process.env.CANN_QUANT_TOKEN;
  if (!t) throw new CliError('give --token <t> (or set CANN_QUANT_TOKEN)');
  return t;
}

/** Runs `wrangler d1 execute` against the local database. */
function localD1(sql: string, persistTo?: string): void {
  const args = ['wrangler', 'd1', 'execute', 'DB', '--local', '--command', sql];
  if (persistTo) args.push('--persist-to', persistTo);
  const r = spawnSync('npx', args, {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  });
  if (r.status !== 0)
    throw new CliError(
      `wrangler d1 execute failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`,
    );
}

const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Creates a token in the local D1 database (wrangler's local state); returns it (shown once). */
export async function createLocalToken(
  submitter: string,
  role: 'submitter' | 'admin',
  persistTo?: string,
): Promise<{ id: string; token: string }> {
  if (!/^[\w.@-]{1,64}$/.test(submitter))
    throw new CliError('submitter must be 1-64 characters of [A-Za-z0-9_.@-]', 2);
  const { token, row } = await newToken(submitter, role);
  localD1(
    `INSERT INTO tokens (id, submitter, hash, role) VALUES (${sqlText(row.id)}, ${sqlText(row.submitter)}, ${sqlText(row.hash)}, ${sqlText(role)})`,
    persistTo,
  );
  return { id: row.id, token };
}

/** Uploads a model for a later submission (POST /api/v1/models): the server's sha256 and size. */
function uploadModel(
  server: string,
  token: string,
  task: string,
  bytes: Uint8Array,
  format: 'qat' | 'qdq',
) {
  return serverCall<{ model: string; bytes: number }>(
    server,
    `/api/v1/models?task=${encodeURIComponent(task)}${format === 'qdq' ? '&format=qdq' : ''}`,
    {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array(bytes), // a copy typed over a plain ArrayBuffer, as fetch wants
    },
  );
}

/**
 * Uploads a `cann-quant train` output folder's QAT model and returns the recipe JSON that
 * submits it: `qat.model` = the sha256 the server answered, `qat.stages` from the stage log.
 */
async function withQatModel(
  server: string,
  token: string,
  recipe: Recipe,
  dir: string,
  quiet?: boolean,
): Promise<string> {
  const model = await readFile(join(dir, 'model.qat.onnx')).catch(() => {
    throw new CliError(
      `cannot read ${join(dir, 'model.qat.onnx')} (a cann-quant train --out folder)`,
    );
  });
  const log = JSON.parse(
    await readFile(join(dir, 'stage-log.json'), 'utf8').catch(() => {
      throw new CliError(`cannot read ${join(dir, 'stage-log.json')}`);
    }),
  ) as { task?: string; stages?: { tiers: Tier[]; simulatedArithmetic: boolean }[] };
  if (log.task && log.task !== recipe.task)
    throw new CliError(
      `the QAT model was trained for ${log.task}, the recipe is for ${recipe.task}`,
      2,
    );
  const up = await uploadModel(server, token, recipe.task, model, 'qat');
  if (!quiet)
    process.stderr.write(
      `uploaded QAT model ${up.body.model.slice(0, 12)} (${up.body.bytes} bytes)\n`,
    );
  const stages = (log.stages ?? []).map((s) => ({
    tiers: s.tiers,
    simulatedArithmetic: s.simulatedArithmetic,
  }));
  return JSON.stringify({ ...recipe, qat: { model: up.body.model, stages } });
}

/**
 * Uploads a QDQ model another framework quantized (?format=qdq: the server checks it is the
 * task's model) and returns the recipe JSON that submits it: `imported.model` = the sha256 the
 * server answered, `imported.producer` from the file.
 */
async function withImportedModel(
  server: string,
  token: string,
  recipe: Recipe,
  file: string,
  quiet?: boolean,
): Promise<string> {
  const { bytes, imported } = await readImportFor(recipe, file);
  const { producer } = imported;
  const up = await uploadModel(server, token, recipe.task, bytes, 'qdq');
  if (!quiet)
    process.stderr.write(
      `uploaded ${imported.format === 'qdq' ? 'QDQ' : imported.format === 'qoperator' ? 'QOperator' : 'dynamically quantized'} model ${up.body.model.slice(0, 12)} (${up.body.bytes} bytes, ${producer || 'producer not named'})\n`,
    );
  return JSON.stringify({
    ...forImportedQuantization(recipe),
    imported: { model: up.body.model, ...(producer ? { producer } : {}) },
  });
}

export function registerService(program: Command): void {
  program
    .command('submit')
    .description('submit a recipe to a cann-quant server; --wait follows it until scored')
    .argument('<recipe>', 'recipe JSON file')
    .option(
      '--server <url>',
      'server',
      parseServerUrl,
      process.env.CANN_QUANT_SERVER ?? 'http://127.0.0.1:8787',
    )
    .option('--token <t>', 'bearer token (default: $CANN_QUANT_TOKEN)')
    .option('--wait', 'wait until scored, showing progress')
    .option('--timeout <s>', 'give up waiting after this many seconds', parsePositiveInt, 3600)
    .option('--json', 'print one JSON object')
    .option(
      '--qat <dir>',
      'a `cann-quant train` output folder: uploads its model.qat.onnx and submits the recipe with it (recipe.qat, stages from stage-log.json)',
    )
    .option(
      '--qdq <file>',
      "a model another framework quantized (QDQ, ONNX Runtime's QOperator, or its quantize_dynamic output for cpu-wasm-dynamic): uploads it and submits the recipe with it (recipe.imported: its own scales on the recipe's target, no calibration)",
    )
    .action(
      async (
        file: string,
        o: {
          server: string;
          token?: string;
          wait?: boolean;
          timeout: number;
          json?: boolean;
          qat?: string;
          qdq?: string;
        },
      ) => {
        if (o.qat && o.qdq) throw new CliError('give --qat or --qdq, not both', 2);
        let text = await readFile(file, 'utf8').catch(() => {
          throw new CliError(`cannot read recipe '${file}'`);
        });
        let recipe: ReturnType<typeof parseRecipeJson>;
        try {
          recipe = parseRecipeJson(text); // the same schema as the server: fail before the upload
        } catch (err) {
          if (err instanceof RecipeError) throw new CliError(`invalid recipe: ${err.message}`, 2);
          throw err;
        }
        const t = token(o);
        // Said before the upload; the run report on the server says it again.
        const warnings = await localRecipeWarnings(recipe);
        printWarnings(warnings);
        if (o.qat) text = await withQatModel(o.server, t, recipe, o.qat, o.json);
        if (o.qdq) text = await withImportedModel(o.server, t, recipe, o.qdq, o.json);
        const sent = await serverCall<SubmissionView>(o.server, '/api/v1/submissions', {
          method: 'POST',
          token: t,
          headers: { 'content-type': 'application/json' },
          body: text,
        });
        let view = sent.body;
        const base = o.server.replace(/\/$/, '');
        if (!o.json)
          process.stderr.write(
            `${sent.status === 202 ? 'queued' : 'already submitted'}: ${view.id} (${base}/submissions/${view.id})\n`,
          );
        if (o.wait) {
          const bar = progressBar(`scoring ${view.id}`, !o.json && process.stderr.isTTY === true);
          const deadline = Date.now() + o.timeout * 1000;
          try {
            while (view.status === 'queued' || view.status === 'running') {
              if (Date.now() > deadline)
                throw new CliError(`${view.id} is still ${view.status} after ${o.timeout} s`);
              await new Promise((r) => setTimeout(r, 1000));
              try {
                view = (
                  await serverCall<SubmissionView>(o.server, `/api/v1/submissions/${view.id}`)
                ).body;
              } catch (err) {
                // A local wrangler dev answers late while its one isolate runs a shard: keep
                // polling until the deadline.
                if (!(err instanceof CliError) || !/cannot reach/.test(err.message)) throw err;
                continue;
              }
              const phases = view.runs.flatMap((r) => r.phases);
              // 7 phases per run once planned; count what is known so far.
              bar.update(
                phases.reduce((s, p) => s + p.done, 0),
                Math.max(
                  1,
                  phases.reduce((s, p) => s + p.total, 0),
                ),
              );
            }
          } finally {
            bar.stop();
          }
          if (view.status === 'failed') throw new CliError(`${view.id} failed: ${view.error}`);
        }
        const r = view.result;
        const out = {
          id: view.id,
          status: view.status,
          qqi: r?.qqi ?? null,
          level: r?.level ?? null,
          loss_points: r?.lossPoints ?? null,
          report: `${base}/api/v1/submissions/${view.id}/report`,
          page: `${base}/submissions/${view.id}`,
          badge: `${base}/badge/${view.id}.svg`,
          warnings,
        };
        printResult(o.json, out, () =>
          r
            ? [
                `${view.id}: scored  QQI ${r.qqi ?? 'n/a'}  level L${r.level}  ${r.metric} FP32 ${r.fp32.toFixed(4)} INT8 ${r.int8.toFixed(4)} (loss ${r.lossPoints.toFixed(2)} points)`,
                `report ${out.report}`,
                `page   ${out.page}`,
                `badge  ${out.badge}`,
              ].join('\n')
            : `${view.id}: ${view.status}  (follow: cann-quant submit ${file} --wait, or ${out.page})`,
        );
      },
    );

  const admin = program.command('admin').description('administration of a cann-quant server');
  const tokens = admin.command('token').description('API tokens (shown once, stored as SHA-256)');
  tokens
    .command('create')
    .description('create a token in the local database (or on --server with an admin --token)')
    .requiredOption('--submitter <name>', 'who the token submits as')
    .option('--admin', 'an admin token (task loading, token management)')
    .option(
      '--server <url>',
      'create it through a server instead of the local database',
      parseServerUrl,
    )
    .option('--token <t>', 'admin token for --server')
    .option('--persist-to <dir>', "wrangler's local state directory (default: .wrangler/state)")
    .option('--json', 'print one JSON object')
    .action(
      async (o: {
        submitter: string;
        admin?: boolean;
        server?: string;
        token?: string;
        persistTo?: string;
        json?: boolean;
      }) => {
        const role = o.admin ? 'admin' : 'submitter';
        const created = o.server
          ? (
              await serverCall<{ id: string; token: string }>(o.server, '/api/v1/tokens', {
                method: 'POST',
                token: token(o),
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ submitter: o.submitter, role }),
              })
            ).body
          : await createLocalToken(o.submitter, role, o.persistTo);
        printResult(
          o.json,
          { id: created.id, submitter: o.submitter, role, token: created.token },
          () =>
            [
              `token ${created.token}`,
              `id ${created.id} (${role} for ${o.submitter}); it is not shown again`,
            ].join('\n'),
        );
      },
    );
  tokens
    .command('revoke')
    .description('revoke a token by id (local database, or --server)')
    .argument('<id>', 'token id (the part after cq_)')
    .option('--server <url>', 'revoke through a server', parseServerUrl)
    .option('--token <t>', 'admin (or the same submitter’s) token for --server')
    .option('--persist-to <dir>', "wrangler's local state directory")
    .action(async (id: string, o: { server?: string; token?: string; persistTo?: string }) => {
      if (!/^[a-z0-9]{12}$/.test(id)) throw new CliError(`'${id}' is not a token id`, 2);
      if (o.server)
        await serverCall(o.server, `/api/v1/tokens/${id}`, { method: 'DELETE', token: token(o) });
      else
        localD1(
          `UPDATE tokens SET revoked_at = unixepoch('subsec') * 1000 WHERE id = ${sqlText(id)} AND revoked_at IS NULL`,
          o.persistTo,
        );
      process.stdout.write(`revoked ${id}\n`);
    });

  admin
    .command('seed')
    .description('load zoo tasks (model, packed splits, labels) into a server')
    .option('--server <url>', 'server', parseServerUrl, 'http://127.0.0.1:8787')
    .option('--token <t>', 'admin token (default: $CANN_QUANT_TOKEN)')
    .option('--tasks <ids>', `comma-separated (default: all: ${Object.keys(TASKS).join(', ')})`)
    .action(async (o: { server: string; token?: string; tasks?: string }) => {
      const ids = o.tasks ? o.tasks.split(',').map((s) => s.trim()) : Object.keys(TASKS);
      for (const id of ids)
        if (!Object.hasOwn(TASKS, id)) throw new CliError(`unknown task '${id}'`, 2);
      for (const id of ids) {
        const pack = await packTask(id);
        const bar = progressBar(`seed ${id}`);
        const r = await uploadTask(o.server, token(o), pack, (d, t) => bar.update(d, t)).finally(
          () => bar.stop(),
        );
        process.stdout.write(`${id}: ${r.uploaded} blobs uploaded, ${r.skipped} already there\n`);
      }
    });
}
