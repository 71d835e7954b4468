/**
 * The public API, /api/v1 (described by ./openapi.ts, served at /api/v1/openapi.json).
 * Thin: validation and HTTP shapes here, work in functions/service and db/queries.
 */
import { and, eq, isNull, ne } from 'drizzle-orm';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import {
  DEFAULT_TARGET,
  DYNAMIC_TARGET_IDS,
  getTarget,
  TARGETS,
  type TargetId,
} from '../../core/formats/targets.ts';
import { importKindRefusal, interfaceMismatch, sameTaskModel } from '../../core/import/layers.ts';
import { importQdq, QdqImportError } from '../../core/import/qdq.ts';
import { decodeModel } from '../../core/onnx/index.ts';
import { parseRecipe, type Recipe, RecipeError } from '../../core/recipe/schema.ts';
import { TEMPLATES } from '../../core/recipe/templates.ts';
import { InputStatsError, type RiskOptions } from '../../core/risk/risk.ts';
import { sameGraph } from '../../core/train/export.ts';
import {
  getReport,
  getSubmission,
  getTaskRow,
  LEADERBOARD_SORTS,
  LEADERBOARD_SOURCES,
  type LeaderboardQuery,
  type LeaderboardSort,
  type LeaderboardSource,
  leaderboard,
  listTasks,
  openDb,
} from '../../db/queries.ts';
import * as schema from '../../db/schema.ts';
import type { Env } from '../env.ts';
import { r2BlobStore } from '../service/blobs.ts';
import { taskRisk } from '../service/risk.ts';
import { createSubmission, recipeHash } from '../service/runs.ts';
import { type Caller, newToken, requireToken } from './auth.ts';
import { openApiDocument, referencePage } from './openapi.ts';
import { type FieldProblem, ProblemError } from './problem.ts';
import { rateLimit } from './rate-limit.ts';

/** Largest recipe body accepted (bytes). */
export const MAX_RECIPE_BYTES = 64 * 1024;

/** Largest QAT model accepted (bytes); also at most {@link MODEL_SIZE_FACTOR} x the task's model. */
export const MAX_MODEL_BYTES = 32 * 1024 * 1024;
/** A QAT model has the reference graph: its size stays near the task model's. */
export const MODEL_SIZE_FACTOR = 2;

/**
 * The task's reference model bytes, for checking an uploaded model of that task: 404 when the
 * task is not loaded, 413 when the upload is larger than {@link MODEL_SIZE_FACTOR} x the
 * reference (or {@link MAX_MODEL_BYTES}).
 */
async function referenceFor(
  env: Env,
  taskId: string,
  bytes: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  const row = await openDb(env.DB)
    .select({ modelKey: schema.tasks.modelKey })
    .from(schema.tasks)
    .where(eq(schema.tasks.id, taskId))
    .get();
  if (!row) throw new ProblemError(404, `task '${taskId}' is not loaded on this server`);
  const reference = await env.BLOBS.get(row.modelKey);
  if (!reference) throw new Error(`task '${taskId}': model blob ${row.modelKey} is missing`);
  const refBytes = new Uint8Array(await reference.arrayBuffer());
  const limit = Math.min(MAX_MODEL_BYTES, MODEL_SIZE_FACTOR * refBytes.length);
  if (bytes.length > limit)
    throw new ProblemError(
      413,
      `the model is ${bytes.length} bytes; ${what} of ${taskId} may have at most ${limit} (${MODEL_SIZE_FACTOR} x the reference model, at most ${MAX_MODEL_BYTES})`,
    );
  return refBytes;
}

/**
 * Checks a QAT model against its task's reference model (L4.architecture: same nodes, inputs,
 * outputs, initializer names, types and shapes); 422 with the first difference otherwise.
 */
async function checkQatModel(env: Env, taskId: string, bytes: Uint8Array): Promise<void> {
  const refBytes = await referenceFor(env, taskId, bytes, 'a QAT model');
  let model: ReturnType<typeof decodeModel>;
  try {
    model = decodeModel(bytes);
    if (!model.graph) throw new Error('no graph');
  } catch (err) {
    throw new ProblemError(422, `the body is not an ONNX model: ${(err as Error).message}`, {
      slug: 'invalid-model',
    });
  }
  const same = sameGraph(decodeModel(refBytes), model);
  if (!same.same)
    throw new ProblemError(
      422,
      `L4.architecture: the model is not ${taskId}'s reference graph: ${same.why}`,
      { slug: 'architecture-changed' },
    );
}

/**
 * Checks an imported quantization (a QDQ ONNX file another framework quantized, core/import):
 * it must be readable, take the task model's inputs and give its outputs, and quantize that very
 * model (sameTaskModel: every layer within half a quantization step); 422 with the reason.
 */
async function checkQdqModel(
  env: Env,
  taskId: string,
  bytes: Uint8Array,
): Promise<ReturnType<typeof importQdq>> {
  const refBytes = await referenceFor(env, taskId, bytes, 'a quantized model');
  let imported: ReturnType<typeof importQdq>;
  try {
    imported = importQdq(decodeModel(bytes));
  } catch (err) {
    const what =
      err instanceof QdqImportError
        ? 'not a quantized model this service reads (QDQ, or ONNX Runtime QOperator or dynamic)'
        : 'not an ONNX model';
    throw new ProblemError(422, `the body is ${what}: ${(err as Error).message}`, {
      slug: 'invalid-model',
    });
  }
  const task = decodeModel(refBytes);
  const mismatch = interfaceMismatch(imported.model, task);
  if (mismatch)
    throw new ProblemError(422, `the model cannot stand in for ${taskId}'s: ${mismatch}`, {
      slug: 'invalid-model',
    });
  const same = sameTaskModel(task, imported, getTarget(DEFAULT_TARGET));
  if (!same.same)
    throw new ProblemError(422, `the model is not ${taskId}'s model: ${same.why}`, {
      slug: 'not-the-task-model',
    });
  return imported;
}

type AppEnv = { Bindings: Env; Variables: { caller: Caller } };

const tooLarge = (limit: number) =>
  bodyLimit({
    maxSize: limit,
    onError: () => {
      throw new ProblemError(413, `the request body is larger than ${limit} bytes`);
    },
  });

/** Reads a JSON body; a syntax error or another content type is a 400/415 problem. */
async function jsonBody(req: Request): Promise<unknown> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/.test(type))
    throw new ProblemError(415, `send the body as application/json (got '${type || 'none'}')`);
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProblemError(400, `the body is not valid JSON: ${(err as Error).message}`, {
      errors: [{ path: '', expected: 'a JSON document', got: `${text.slice(0, 40)}...` }],
    });
  }
}

/** Validates a recipe with the same zod schema as the CLI; 400 with one entry per field. */
function validRecipe(body: unknown): Recipe {
  try {
    return parseRecipe(body);
  } catch (err) {
    if (err instanceof RecipeError) {
      throw new ProblemError(400, `invalid recipe: ${err.message}`, {
        slug: 'invalid-recipe',
        errors: err.issues.map(
          (i): FieldProblem => ({ path: i.path, expected: i.expected, got: i.got }),
        ),
      });
    }
    throw err;
  }
}

function intParam(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ProblemError(400, `query parameter '${name}' must be an integer in ${min}..${max}`, {
      errors: [{ path: name, expected: `integer ${min}..${max}`, got: value }],
    });
  return n;
}

/** Target(s) and format options of GET /tasks/:id/risk (400 on nonsense). */
export function riskQuery(q: Record<string, string | undefined>): {
  targets: TargetId[];
  options: RiskOptions;
} {
  const target = q.target ?? DEFAULT_TARGET;
  if (target !== 'all' && !Object.hasOwn(TARGETS, target))
    throw new ProblemError(400, `unknown target '${target}'`, {
      errors: [
        {
          path: 'target',
          expected: `all or one of ${Object.keys(TARGETS).join(', ')}`,
          got: target,
        },
      ],
    });
  const options: RiskOptions = {};
  if (q.weights !== undefined) {
    if (q.weights !== 'per-channel' && q.weights !== 'per-tensor')
      throw new ProblemError(400, `query parameter 'weights' must be per-channel or per-tensor`, {
        errors: [{ path: 'weights', expected: 'per-channel or per-tensor', got: q.weights }],
      });
    options.weightGranularity = q.weights;
  }
  return {
    targets: target === 'all' ? (Object.keys(TARGETS) as TargetId[]) : [target as TargetId],
    options,
  };
}

/** Leaderboard filters from a query string (400 on nonsense). */
export function leaderboardQuery(q: Record<string, string | undefined>): LeaderboardQuery {
  const out: LeaderboardQuery = {};
  if (q.task) out.task = q.task;
  if (q.target) {
    if (!Object.hasOwn(TARGETS, q.target))
      throw new ProblemError(400, `unknown target '${q.target}'`, {
        errors: [
          { path: 'target', expected: `one of ${Object.keys(TARGETS).join(', ')}`, got: q.target },
        ],
      });
    out.target = q.target;
  }
  if (q.targets) {
    const list = q.targets.split(',').filter(Boolean);
    const bad = list.find((t) => !Object.hasOwn(TARGETS, t));
    if (bad !== undefined || list.length === 0)
      throw new ProblemError(400, `unknown target '${bad ?? ''}' in targets`, {
        errors: [
          {
            path: 'targets',
            expected: `a comma-separated list of ${Object.keys(TARGETS).join(', ')}`,
            got: q.targets,
          },
        ],
      });
    out.targets = list;
  }
  const level = intParam('level', q.level, 0, 5);
  if (level !== undefined) out.level = level;
  if (q.min_qqi !== undefined && q.min_qqi !== '') {
    const v = Number(q.min_qqi);
    if (!Number.isFinite(v))
      throw new ProblemError(400, `query parameter 'min_qqi' must be a number`, {
        errors: [{ path: 'min_qqi', expected: 'a number', got: q.min_qqi }],
      });
    out.minQqi = v;
  }
  if (q.sort) {
    if (!(LEADERBOARD_SORTS as readonly string[]).includes(q.sort))
      throw new ProblemError(400, `unknown sort '${q.sort}'`, {
        errors: [{ path: 'sort', expected: `one of ${LEADERBOARD_SORTS.join(', ')}`, got: q.sort }],
      });
    out.sort = q.sort as LeaderboardSort;
  }
  if (q.source) {
    if (!(LEADERBOARD_SOURCES as readonly string[]).includes(q.source))
      throw new ProblemError(400, `unknown source '${q.source}'`, {
        errors: [
          { path: 'source', expected: `one of ${LEADERBOARD_SOURCES.join(', ')}`, got: q.source },
        ],
      });
    out.source = q.source as LeaderboardSource;
  }
  const limit = intParam('limit', q.limit, 1, 1000);
  if (limit !== undefined) out.limit = limit;
  return out;
}

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

/** The /api/v1 routes. */
export function apiV1(): Hono<AppEnv> {
  const api = new Hono<AppEnv>();

  api.get('/openapi.json', (c) => c.json(openApiDocument(new URL(c.req.url).origin)));
  api.get('/docs', (c) => c.html(referencePage('/api/v1/openapi.json')));

  // A model for a later submission, content-addressed (uploading the same bytes again is
  // harmless): a QAT model (recipe.qat.model = the returned sha256), or with ?format=qdq a QDQ
  // model another framework quantized (recipe.imported.model).
  api.post('/models', tooLarge(MAX_MODEL_BYTES), requireToken(), async (c) => {
    const taskId = c.req.query('task');
    if (!taskId)
      throw new ProblemError(400, 'name the task the model was trained for: ?task=<id>', {
        errors: [{ path: 'task', expected: 'a loaded task id', got: 'nothing' }],
      });
    const format = c.req.query('format') ?? 'qat';
    if (format !== 'qat' && format !== 'qdq')
      throw new ProblemError(400, `unknown model format '${format}'`, {
        errors: [
          {
            path: 'format',
            expected:
              "'qat' (a QAT-trained float model, the default) or 'qdq' (a quantized QDQ model)",
            got: JSON.stringify(format),
          },
        ],
      });
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/(octet-stream|onnx)\b/.test(type))
      throw new ProblemError(
        415,
        `send the ONNX bytes as application/octet-stream (got '${type || 'none'}')`,
      );
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (format === 'qdq') await checkQdqModel(c.env, taskId, bytes);
    else await checkQatModel(c.env, taskId, bytes);
    const key = await r2BlobStore(c.env.BLOBS).put(bytes);
    const sha256 = key.slice('blobs/'.length);
    return c.json(
      {
        model: sha256,
        task: taskId,
        format,
        bytes: bytes.length,
        architecture:
          format === 'qdq'
            ? "the task's model: every weighted layer within half a quantization step"
            : 'same nodes, inputs, outputs and initializer shapes as the reference',
      },
      201,
    );
  });

  api.post(
    '/submissions',
    tooLarge(MAX_RECIPE_BYTES),
    requireToken(),
    async (c, next) => {
      const caller = c.get('caller');
      const limit = Number.parseInt(c.env.SUBMISSIONS_PER_MINUTE ?? '10', 10) || 10;
      await rateLimit(c.env, `submit:${caller.tokenId}`, limit);
      await next();
    },
    async (c) => {
      const caller = c.get('caller');
      const recipe = validRecipe(await jsonBody(c.req.raw));
      const db = openDb(c.env.DB);
      if (!(await getTaskRow(db, recipe.task))) {
        const known = (await listTasks(db)).map((t) => t.id);
        throw new ProblemError(400, `task '${recipe.task}' is not loaded on this server`, {
          slug: 'invalid-recipe',
          errors: [
            {
              path: 'task',
              expected: known.length ? `one of ${known.join(', ')}` : 'a loaded task',
              got: JSON.stringify(recipe.task),
            },
          ],
        });
      }
      if (recipe.qat && recipe.validation?.stress)
        throw new ProblemError(400, 'stress tests are not run for QAT submissions', {
          slug: 'invalid-recipe',
          errors: [
            {
              path: 'validation.stress',
              expected:
                "absent with qat (the stress tests compare with the task's FP32 model, which a QAT run does not score)",
              got: JSON.stringify(recipe.validation.stress),
            },
          ],
        });
      // A model the recipe names must have been uploaded (POST /api/v1/models) and still pass
      // that upload's checks.
      const uploaded = async (
        path: 'imported.model' | 'qat.model',
        sha: string,
        what: string,
        format: string,
      ) => {
        const blob = await c.env.BLOBS.get(`blobs/${sha}`);
        if (!blob)
          throw new ProblemError(400, `the ${what} model has not been uploaded`, {
            slug: 'invalid-recipe',
            errors: [
              {
                path,
                expected: `the sha256 returned by POST /api/v1/models?task=${recipe.task}${format}`,
                got: JSON.stringify(sha),
              },
            ],
          });
        return new Uint8Array(await blob.arrayBuffer());
      };
      if (recipe.imported) {
        const imported = await checkQdqModel(
          c.env,
          recipe.task,
          await uploaded('imported.model', recipe.imported.model, 'imported', '&format=qdq'),
        );
        // A dynamically quantized file goes on a dynamic target, a QDQ file on a static one.
        const refusal = importKindRefusal(imported, getTarget(recipe.target));
        if (refusal)
          throw new ProblemError(400, refusal, {
            slug: 'invalid-recipe',
            errors: [
              {
                path: 'target',
                expected:
                  imported.format === 'dynamic'
                    ? `a dynamic target (${DYNAMIC_TARGET_IDS.join(', ')}) for this dynamically quantized file`
                    : 'a static target for this QDQ file',
                got: JSON.stringify(recipe.target),
              },
            ],
          });
      }
      if (recipe.qat)
        await checkQatModel(
          c.env,
          recipe.task,
          await uploaded('qat.model', recipe.qat.model, 'QAT', ''),
        );
      // One recipe name per submitter, task and target: other content under a taken name is a
      // conflict (the same content is the same submission: idempotent).
      const hash = await recipeHash(recipe);
      const clash = await db
        .select({ id: schema.submissions.id })
        .from(schema.submissions)
        .where(
          and(
            eq(schema.submissions.submitter, caller.submitter),
            eq(schema.submissions.recipeName, recipe.name),
            eq(schema.submissions.task, recipe.task),
            eq(schema.submissions.target, recipe.target),
            ne(schema.submissions.recipeHash, hash),
          ),
        )
        .get();
      if (clash)
        throw new ProblemError(
          409,
          `you already submitted a different recipe named '${recipe.name}' for ${recipe.task} on ${recipe.target} (${clash.id}); rename this one`,
          { slug: 'recipe-name-taken' },
        );
      const { id, created } = await createSubmission(c.env, caller, recipe);
      const view = await getSubmission(db, id);
      const location = `/api/v1/submissions/${id}`;
      c.header('location', location);
      return c.json(
        {
          ...view,
          links: {
            self: location,
            report: `${location}/report`,
            page: `/submissions/${id}`,
            badge: `/badge/${id}.svg`,
          },
        },
        created ? 202 : 200,
      );
    },
  );

  api.get('/submissions/:id', async (c) => {
    const id = c.req.param('id');
    const view = await getSubmission(openDb(c.env.DB), id);
    if (!view) throw new ProblemError(404, `no submission '${id}'`);
    return c.json({
      ...view,
      links: {
        self: `/api/v1/submissions/${id}`,
        report: `/api/v1/submissions/${id}/report`,
        page: `/submissions/${id}`,
        badge: `/badge/${id}.svg`,
      },
    });
  });

  api.get('/submissions/:id/report', async (c) => {
    const id = c.req.param('id');
    const db = openDb(c.env.DB);
    const view = await getSubmission(db, id);
    if (!view) throw new ProblemError(404, `no submission '${id}'`);
    if (view.status !== 'scored')
      throw new ProblemError(
        409,
        view.status === 'failed'
          ? `submission '${id}' failed: ${view.error ?? 'unknown reason'}`
          : `submission '${id}' is ${view.status}; the report exists once it is scored`,
      );
    const report = await getReport(db, c.env.BLOBS, id);
    if (!report) throw new ProblemError(404, `the report of '${id}' is missing`);
    c.header('cache-control', 'public, max-age=300');
    return c.json(report);
  });

  api.get('/leaderboard', async (c) => {
    const q = c.req.query();
    const rows = await leaderboard(openDb(c.env.DB), leaderboardQuery(q));
    if (q.format === 'csv') {
      const cols = [
        'rank',
        'submissionId',
        'recipe',
        'submitter',
        'task',
        'target',
        'level',
        'qqi',
        'metric',
        'fp32',
        'int8',
        'lossPoints',
        'estimatedLossPoints',
        'speedup',
        'energyGain',
        'calibrationSamples',
        'importedFrom',
        'trusted',
        'underReview',
        'scoredAt',
      ] as const;
      const lines = [cols.join(','), ...rows.map((r) => cols.map((k) => csvCell(r[k])).join(','))];
      return c.body(`${lines.join('\n')}\n`, 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'inline; filename="leaderboard.csv"',
      });
    }
    if (q.format && q.format !== 'json')
      throw new ProblemError(400, `unknown format '${q.format}'`, {
        errors: [{ path: 'format', expected: 'json or csv', got: q.format }],
      });
    return c.json({ count: rows.length, rows });
  });

  api.get('/tasks', async (c) => c.json({ tasks: await listTasks(openDb(c.env.DB)) }));
  api.get('/tasks/:id', async (c) => {
    const t = await getTaskRow(openDb(c.env.DB), c.req.param('id'));
    if (!t) throw new ProblemError(404, `no task '${c.req.param('id')}'`);
    return c.json(t);
  });
  // The data-free risk predictor (core/risk, docs/RISK.md) on a loaded task's model: each
  // layer's INT8 noise on a target (or on every target: ?target=all), from the model alone.
  api.get('/tasks/:id/risk', async (c) => {
    const id = c.req.param('id');
    const q = c.req.query();
    const { options, targets } = riskQuery(q);
    const reports = await taskRisk(c.env, id, targets, options, q.input_stats).catch((err) => {
      if (err instanceof InputStatsError)
        throw new ProblemError(400, `query parameter 'input_stats': ${err.message}`, {
          errors: [
            { path: 'input_stats', expected: '[name=]mean,std,min,max', got: q.input_stats ?? '' },
          ],
        });
      throw err;
    });
    if (reports === null) throw new ProblemError(404, `no task '${id}'`);
    if (reports === undefined) throw new Error(`task '${id}': its model blob is missing`);
    return c.json(targets.length === 1 ? { task: id, ...reports[0]! } : { task: id, reports });
  });
  api.get('/targets', (c) => c.json({ targets: Object.values(TARGETS) }));
  api.get('/templates', (c) => c.json({ templates: TEMPLATES }));

  // Tokens: admins create them for submitters; a submitter may revoke its own.
  api.post('/tokens', tooLarge(4096), requireToken({ role: 'admin' }), async (c) => {
    const body = (await jsonBody(c.req.raw)) as { submitter?: unknown; role?: unknown };
    if (typeof body?.submitter !== 'string' || !/^[\w.@-]{1,64}$/.test(body.submitter))
      throw new ProblemError(400, 'submitter must be 1-64 characters of [A-Za-z0-9_.@-]', {
        errors: [
          { path: 'submitter', expected: '[A-Za-z0-9_.@-]{1,64}', got: String(body?.submitter) },
        ],
      });
    const role = body.role === 'admin' ? 'admin' : 'submitter';
    const { token, row } = await newToken(body.submitter, role);
    await openDb(c.env.DB).insert(schema.tokens).values(row).run();
    return c.json({ id: row.id, submitter: row.submitter, role, token }, 201);
  });

  api.delete('/tokens/:id', requireToken(), async (c) => {
    const caller = c.get('caller');
    const id = c.req.param('id');
    const db = openDb(c.env.DB);
    const row = await db.select().from(schema.tokens).where(eq(schema.tokens.id, id)).get();
    if (!row) throw new ProblemError(404, `no token '${id}'`);
    if (caller.role !== 'admin' && row.submitter !== caller.submitter)
      throw new ProblemError(403, 'you may revoke only your own tokens');
    await db
      .update(schema.tokens)
      .set({ revokedAt: Date.now() })
      .where(and(eq(schema.tokens.id, id), isNull(schema.tokens.revokedAt)))
      .run();
    return c.body(null, 204);
  });

  return api;
}
