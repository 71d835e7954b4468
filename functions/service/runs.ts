/**
 * Sharded execution of submissions on Queues: plan -> shards -> reduce, by deterministic replay
 * (core/pipeline/replay.ts).
 *
 * - `advance(run)` replays the run over the phases whose shards are all done. At the first
 *   unfinished phase it records the phase and its shard rows (once: INSERT OR IGNORE) and fans
 *   the shard messages out; when nothing is left the run is complete and, once every run of the
 *   submission is, a `finalize` message follows.
 * - `runShard(run, phase, idx)` replays the same run and executes its one shard; the output goes
 *   to R2 under its content hash and the shard row is marked done in the same D1 transaction
 *   that counts what is left of the phase: exactly one delivery sees "done by me and nothing
 *   left" and triggers the next `advance`. A duplicate delivery finds the row done and returns;
 *   a retried shard recomputes the same bytes (the pipeline is deterministic).
 * - `finalize(submission)` replays both runs to completion, scores the primary with the
 *   reproduction as the L1.reproducible evidence (core/score), and writes results, per-layer
 *   rows, checks, the report and the QDQ model.
 */
import { and, eq, getTableColumns, sql } from 'drizzle-orm';
import { type DrizzleD1Database, drizzle } from 'drizzle-orm/d1';
import { type BlobStore, type SplitManifest, storedSplit } from '../../core/data/split-store.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import { SHARD_OUTPUT_LIMIT } from '../../core/pipeline/plan.ts';
import {
  decodeShardOutput,
  encodeShardOutput,
  replayPipeline,
} from '../../core/pipeline/replay.ts';
import type { PipelineInputs, PipelineResult } from '../../core/pipeline/run.ts';
import {
  runtimeIdentity,
  type SharedIdentity,
  sharedShardKey,
} from '../../core/pipeline/shared-cache.ts';
import { qatScoringRecipe, withoutQat } from '../../core/recipe/qat.ts';
import { parseRecipe, type Recipe, withoutStress } from '../../core/recipe/schema.ts';
import {
  crossHardware,
  crossTargetsFor,
  recipeForTarget,
} from '../../core/score/cross-hardware.ts';
import { buildSubmissionReport } from '../../core/score/submission-report.ts';
import { sameGraph } from '../../core/train/export.ts';
import { d1RowChunks } from '../../db/limits.ts';
import * as schema from '../../db/schema.ts';
import { getTask } from '../../zoo/registry.ts';
import type { TaskManifest } from '../../zoo/task.ts';
import type { Env } from '../env.ts';
import { getJson, putJson, r2BlobStore } from './blobs.ts';
import { IsolateCache } from './isolate-cache.ts';
import type { ShardMessage } from './messages.ts';

type Db = DrizzleD1Database<typeof schema>;

/** An error that retrying cannot fix: the submission fails at once with this message. */
export class PermanentFailure extends Error {
  override name = 'PermanentFailure';
}

export function database(env: Env): Db {
  return drizzle(env.DB, { schema });
}

/** Immutable blobs (content-addressed) decoded once per isolate: models, manifests, labels. */
const blobs = new IsolateCache(16);

/** What a replay of one run needs. */
interface RunContext {
  run: typeof schema.runs.$inferSelect;
  submission: typeof schema.submissions.$inferSelect;
  taskRow: typeof schema.tasks.$inferSelect;
  recipe: Recipe;
  inputs: PipelineInputs;
  store: BlobStore;
  /** R2 key of the model this run executes (the task's, or a QAT submission's upload). */
  modelKey: string;
}

async function runContext(env: Env, db: Db, runId: string): Promise<RunContext> {
  const row = await db
    .select()
    .from(schema.runs)
    .innerJoin(schema.submissions, eq(schema.runs.submissionId, schema.submissions.id))
    .innerJoin(schema.tasks, eq(schema.submissions.task, schema.tasks.id))
    .where(eq(schema.runs.id, runId))
    .get();
  if (!row) throw new PermanentFailure(`run ${runId} (or its submission or task) does not exist`);
  // A cross-hardware run carries the recipe derived for its target; others run the submission's.
  const recipe = parseRecipe(row.runs.recipe ?? row.submissions.recipe);
  const task = getTask(recipe.task);
  const store = r2BlobStore(env.BLOBS);
  const t = row.tasks;
  // A QAT submission runs its uploaded model (content-addressed) with bias correction off; its
  // PTQ run carries the recipe without `qat` and runs the task's model.
  const modelKey = recipe.qat ? `blobs/${recipe.qat.model}` : t.modelKey;
  // An imported quantization (recipe.imported) runs the task's model for FP32 and the uploaded
  // QDQ file's parameters on the target (core/import).
  const importedKey = recipe.imported ? `blobs/${recipe.imported.model}` : undefined;
  const [model, calibManifest, evalManifest, labels, imported] = await Promise.all([
    blobs.get(modelKey, () => store.get(modelKey)),
    blobs.get(t.calibrationKey, () => getJson<SplitManifest>(store, t.calibrationKey)),
    blobs.get(t.evaluationKey, () => getJson<SplitManifest>(store, t.evaluationKey)),
    blobs.get(t.labelsKey, async () => decodeShardOutput(await store.get(t.labelsKey))),
    importedKey ? blobs.get(importedKey, () => store.get(importedKey)) : undefined,
  ]);
  return {
    run: row.runs,
    submission: row.submissions,
    taskRow: t,
    recipe,
    store,
    modelKey,
    inputs: {
      // stress tests run in the primary run only (the others reproduce or compare it)
      recipe: ((r: Recipe) => (recipe.qat ? qatScoringRecipe(r) : r))(
        row.runs.role === 'primary' ? recipe : withoutStress(recipe),
      ),
      task,
      model,
      calibration: storedSplit(calibManifest, store),
      evaluation: { ...storedSplit(evalManifest, store), labels },
      ...(imported ? { imported } : {}),
    },
  };
}

/** Outputs of the run's phases whose shards are all done, read back from R2. */
async function phaseCache(db: Db, store: BlobStore, runId: string) {
  const rows = await db
    .select()
    .from(schema.shards)
    .where(eq(schema.shards.runId, runId))
    .orderBy(schema.shards.phase, schema.shards.idx)
    .all();
  const byPhase = new Map<string, (typeof rows)[number][]>();
  for (const r of rows) byPhase.set(r.phase, [...(byPhase.get(r.phase) ?? []), r]);
  const cache = new Map<string, unknown[]>();
  for (const [phase, list] of byPhase) {
    if (list.some((r) => r.status !== 'done' || !r.outputKey)) continue;
    cache.set(
      phase,
      await Promise.all(list.map(async (r) => decodeShardOutput(await store.get(r.outputKey!)))),
    );
  }
  return cache;
}

/**
 * Shared phases (the FP32 reference pass) are cached across runs in R2 under `shared/<key>`,
 * whose body is the blob key of the shard's output: the key hashes the task's content-addressed
 * model and split keys, the runtime and the shard input (core/pipeline/shared-cache.ts). The
 * reproduction run never reads it: L1.reproducible needs an independent execution.
 */
async function sharedKeys(
  ctx: RunContext,
  phase: string,
  inputs: readonly unknown[],
): Promise<string[]> {
  const t = ctx.taskRow;
  const identity: SharedIdentity = {
    model: ctx.modelKey,
    calibration: t.calibrationKey,
    evaluation: t.evaluationKey,
    runtime: await runtimeIdentity(),
  };
  return Promise.all(
    inputs.map(async (input) => `shared/${await sharedShardKey(identity, phase, input)}`),
  );
}

/** Replays a run; fans out its next phase or completes it. Idempotent. */
export async function advance(env: Env, runId: string): Promise<void> {
  const db = database(env);
  const ctx = await runContext(env, db, runId);
  if (ctx.run.status !== 'running') return;
  const cache = await phaseCache(db, ctx.store, runId);
  const step = await replayPipeline(ctx.inputs, { shards: ctx.run.shards }, { cache });
  if (step.kind === 'shard') throw new Error('advance: the orchestrator executed a shard');
  if (step.kind === 'pending') {
    await db
      .insert(schema.phases)
      .values({ runId, phase: step.phase, seq: cache.size, shards: step.shards })
      .onConflictDoNothing()
      .run();
    // Shards of a shared phase already computed by another run are inserted done (attempts 0).
    const hits: (string | undefined)[] =
      step.meta.shared && ctx.run.role !== 'reproduction' && sharedCacheEnabled(env)
        ? await Promise.all(
            (await sharedKeys(ctx, step.phase, step.inputs)).map(async (k) =>
              (await env.BLOBS.get(k))?.text(),
            ),
          )
        : [];
    const rows = Array.from({ length: step.shards }, (_, idx) =>
      hits[idx]
        ? {
            runId,
            phase: step.phase,
            idx,
            status: 'done' as const,
            outputKey: hits[idx],
            updatedAt: Date.now(),
          }
        : { runId, phase: step.phase, idx },
    );
    // One statement per chunk: D1 binds at most 100 parameters per statement, and a phase can
    // have dozens of shards (fmnist-resnet's reference pass: 30, 5 parameters each).
    const shardColumns = Object.keys(getTableColumns(schema.shards)).length;
    await db.batch([
      db
        .update(schema.submissions)
        .set({ status: 'running', updatedAt: Date.now() })
        .where(
          and(
            eq(schema.submissions.id, ctx.submission.id),
            eq(schema.submissions.status, 'queued'),
          ),
        ),
      ...d1RowChunks(rows, shardColumns).map((chunk) =>
        db.insert(schema.shards).values(chunk).onConflictDoNothing(),
      ),
    ]);
    // (Re)send every shard still pending: after a crash between the insert and the send, the
    // retried advance must not leave the phase stranded; duplicates are harmless.
    const pending = await db
      .select({ idx: schema.shards.idx })
      .from(schema.shards)
      .where(
        and(
          eq(schema.shards.runId, runId),
          eq(schema.shards.phase, step.phase),
          eq(schema.shards.status, 'pending'),
        ),
      )
      .all();
    // Every shard served from the shared cache: nothing will report back, advance again.
    if (pending.length === 0) {
      await env.SHARDS.send({ kind: 'advance', runId });
      return;
    }
    for (let i = 0; i < pending.length; i += 100) {
      await env.SHARDS.sendBatch(
        pending.slice(i, i + 100).map((p) => ({
          body: { kind: 'shard', runId, phase: step.phase, idx: p.idx } satisfies ShardMessage,
        })),
      );
    }
    return;
  }
  // The primary's completion creates the cross-hardware runs in the same transaction, so that no
  // other run can see "all complete" in between and finalize too early.
  const cross =
    ctx.run.role === 'primary' && crossHardwareEnabled(env)
      ? crossTargetsFor(step.result).map((t) => ({
          id: `${ctx.submission.id}.cross-${t}`,
          submissionId: ctx.submission.id,
          role: 'cross' as const,
          target: t,
          recipe: recipeForTarget(ctx.recipe, t, step.result),
          shards: ctx.run.shards,
        }))
      : [];
  const [done] = await db.batch([
    db
      .update(schema.runs)
      .set({ status: 'complete', finishedAt: Date.now() })
      .where(and(eq(schema.runs.id, runId), eq(schema.runs.status, 'running'))),
    ...(cross.length > 0 ? [db.insert(schema.runs).values(cross).onConflictDoNothing()] : []),
  ]);
  if (done.meta.changes !== 1) return;
  if (cross.length > 0)
    await env.SHARDS.sendBatch(
      cross.map((r) => ({ body: { kind: 'advance', runId: r.id } satisfies ShardMessage })),
    );
  const open = await db
    .select({ n: sql<number>`count(*)` })
    .from(schema.runs)
    .where(
      and(
        eq(schema.runs.submissionId, ctx.submission.id),
        sql`${schema.runs.status} != 'complete'`,
      ),
    )
    .get();
  if ((open?.n ?? 0) === 0)
    await env.SHARDS.send({ kind: 'finalize', submissionId: ctx.submission.id });
}

/** Executes one shard of a run. A shard already done is left alone (duplicate delivery). */
export async function runShard(env: Env, runId: string, phase: string, idx: number) {
  const db = database(env);
  const key = and(
    eq(schema.shards.runId, runId),
    eq(schema.shards.phase, phase),
    eq(schema.shards.idx, idx),
  );
  const row = await db.select().from(schema.shards).where(key).get();
  if (!row)
    throw new PermanentFailure(
      `shard ${idx} of phase '${phase}' of run ${runId} was never planned`,
    );
  if (row.status === 'done') return { duplicate: true };
  await db
    .update(schema.shards)
    .set({ attempts: sql`${schema.shards.attempts} + 1`, updatedAt: Date.now() })
    .where(key)
    .run();
  const ctx = await runContext(env, db, runId);
  if (ctx.run.status !== 'running') return { duplicate: true };
  const cache = await phaseCache(db, ctx.store, runId);
  const t0 = performance.now();
  const step = await replayPipeline(
    ctx.inputs,
    { shards: ctx.run.shards },
    { cache, shard: { phase, index: idx } },
  );
  if (step.kind !== 'shard')
    throw new Error(`shard ${idx} of '${phase}': the replay ended with '${step.kind}'`);
  const bytes = encodeShardOutput(step.output);
  const outputKey = await ctx.store.put(bytes);
  if (step.meta.shared && sharedCacheEnabled(env) && bytes.length <= SHARD_OUTPUT_LIMIT) {
    const [sharedKey] = await sharedKeys(ctx, phase, [step.input]);
    await env.BLOBS.put(sharedKey!, outputKey);
  }
  const [marked, left] = await db.batch([
    db
      .update(schema.shards)
      .set({
        status: 'done',
        outputKey,
        outputBytes: bytes.length,
        seconds: Math.round(performance.now() - t0) / 1000,
        error: bytes.length > SHARD_OUTPUT_LIMIT ? `output ${bytes.length} bytes > 1 MiB` : null,
        updatedAt: Date.now(),
      })
      .where(and(key, eq(schema.shards.status, 'pending'))),
    db
      .select({ n: sql<number>`count(*)` })
      .from(schema.shards)
      .where(
        and(
          eq(schema.shards.runId, runId),
          eq(schema.shards.phase, phase),
          eq(schema.shards.status, 'pending'),
        ),
      ),
  ]);
  const last = marked.meta.changes === 1 && (left[0]?.n ?? 1) === 0;
  if (last) await env.SHARDS.send({ kind: 'advance', runId });
  return { duplicate: marked.meta.changes !== 1, last, outputKey, bytes: bytes.length };
}

/** Records a shard's failure text (the message will be retried or dead-lettered). */
export async function recordShardError(env: Env, m: ShardMessage, err: unknown) {
  if (m.kind !== 'shard') return;
  const db = database(env);
  await db
    .update(schema.shards)
    .set({
      error: String(err instanceof Error ? err.message : err).slice(0, 2000),
      updatedAt: Date.now(),
    })
    .where(
      and(
        eq(schema.shards.runId, m.runId),
        eq(schema.shards.phase, m.phase),
        eq(schema.shards.idx, m.idx),
      ),
    )
    .run();
}

/** Marks a submission (found from any message) failed with a readable reason. */
export async function failSubmission(env: Env, m: ShardMessage, reason: string) {
  const db = database(env);
  let submissionId: string | undefined;
  if (m.kind === 'finalize') submissionId = m.submissionId;
  else {
    const run = await db.select().from(schema.runs).where(eq(schema.runs.id, m.runId)).get();
    submissionId = run?.submissionId;
    if (run)
      await db
        .update(schema.runs)
        .set({ status: 'failed', error: reason, finishedAt: Date.now() })
        .where(and(eq(schema.runs.id, run.id), eq(schema.runs.status, 'running')))
        .run();
  }
  if (!submissionId) return;
  await db
    .update(schema.submissions)
    .set({ status: 'failed', error: reason.slice(0, 2000), updatedAt: Date.now() })
    .where(
      and(eq(schema.submissions.id, submissionId), sql`${schema.submissions.status} != 'scored'`),
    )
    .run();
}

/** Replays a complete run to its result. */
async function completedResult(env: Env, db: Db, runId: string) {
  const ctx = await runContext(env, db, runId);
  const cache = await phaseCache(db, ctx.store, runId);
  const step = await replayPipeline(ctx.inputs, { shards: ctx.run.shards }, { cache });
  if (step.kind !== 'complete') throw new Error(`run ${runId} is not complete (${step.phase})`);
  return { ctx, result: step.result };
}

/** Scores a submission whose runs are complete; writes the result once. */
export async function finalize(env: Env, submissionId: string): Promise<void> {
  const db = database(env);
  const sub = await db
    .select()
    .from(schema.submissions)
    .where(eq(schema.submissions.id, submissionId))
    .get();
  if (!sub || sub.status === 'scored' || sub.status === 'failed') return;
  const runRows = await db
    .select()
    .from(schema.runs)
    .where(eq(schema.runs.submissionId, submissionId))
    .all();
  const primaryRow = runRows.find((r) => r.role === 'primary');
  const reproRow = runRows.find((r) => r.role === 'reproduction');
  if (!primaryRow) throw new PermanentFailure(`submission ${submissionId} has no primary run`);
  // A run still going will send its own finalize when it completes.
  if (runRows.some((r) => r.status !== 'complete')) return;
  const { ctx, result } = await completedResult(env, db, primaryRow.id);
  const second: PipelineResult | undefined = reproRow
    ? (await completedResult(env, db, reproRow.id)).result
    : undefined;
  const ptqRow = runRows.find((r) => r.role === 'ptq');
  const ptq = ptqRow ? await completedResult(env, db, ptqRow.id) : undefined;
  const crossRuns = [];
  for (const r of runRows.filter((x) => x.role === 'cross'))
    crossRuns.push({ runId: r.id, run: (await completedResult(env, db, r.id)).result });
  const manifest = ctx.taskRow.manifest as TaskManifest;
  const crossTable =
    crossRuns.length > 0
      ? await crossHardware(
          [{ runId: primaryRow.id, run: result }, ...crossRuns],
          ctx.inputs.model,
          ctx.inputs.imported ? { imported: ctx.inputs.imported } : {},
        )
      : null;
  const { stored, scored } = await buildSubmissionReport({
    ...(crossTable ? { crossHardware: crossTable } : {}),
    submission: {
      id: sub.id,
      submitter: sub.submitter,
      createdAt: sub.createdAt,
      recipeHash: sub.recipeHash,
    },
    model: ctx.inputs.model,
    ...(ctx.inputs.imported ? { imported: ctx.inputs.imported } : {}),
    evaluationSplitSize: manifest.splits.evaluation.size,
    calibration: ctx.inputs.calibration,
    evaluation: ctx.inputs.evaluation,
    primary: { runId: primaryRow.id, result },
    ...(ptq && ptqRow
      ? {
          qat: {
            ptq: { runId: ptqRow.id, result: ptq.result },
            sameGraph: sameGraph(decodeModel(ptq.ctx.inputs.model), decodeModel(ctx.inputs.model)),
          },
        }
      : {}),
    ...(second && reproRow
      ? { reproduction: { runId: reproRow.id, shards: reproRow.shards, result: second } }
      : {}),
  });
  const { report, reviewReason } = stored;
  // The scored comparison (for a QAT submission: against the FP32 reference model, not the QAT
  // model's own FP32 run).
  const m = report.metric;
  const c = { metric: m.name, fp32: m.fp32, int8: m.int8, lossPoints: m.lossPoints };
  const reportKey = await putJson(ctx.store, stored);
  const qdqKey = await ctx.store.put(encodeModel(result.qdq));
  await db.batch([
    db
      .insert(schema.results)
      .values({
        submissionId,
        task: result.task,
        target: result.target,
        qqi: scored.qqi.value,
        level: scored.level,
        metric: c.metric,
        fp32: c.fp32,
        int8: c.int8,
        lossPoints: c.lossPoints,
        estimatedLossPoints: result.estimate?.lossPoints ?? null,
        speedup: report.qqi.speedup,
        energyGain: report.qqi.energyGain,
        calibrationSamples: result.calibration.samples.length,
        paramsDigest: scored.paramsDigest,
        trusted: scored.trusted,
        underReview: reviewReason !== null,
        reviewReason,
        reportKey,
        qdqKey,
      })
      .onConflictDoNothing(),
    ...report.layers.map((l) =>
      db
        .insert(schema.layerResults)
        .values({
          submissionId,
          layer: l.name,
          kind: l.kind,
          tier: l.tier,
          method: l.method,
          actScale: l.activation.scale,
          actZeroPoint: l.activation.zeroPoint,
          channels: l.weight.channels,
          sqnrDb: l.sqnrDb,
        })
        .onConflictDoNothing(),
    ),
    ...report.checks.map((k) =>
      db
        .insert(schema.checks)
        .values({
          submissionId,
          checkId: k.id,
          level: k.level,
          outcome: k.pass === 'not-run' ? 'not-run' : k.pass ? 'pass' : 'fail',
          value: k.value,
          threshold: k.threshold,
          evidence: k.evidence,
        })
        .onConflictDoNothing(),
    ),
    db
      .update(schema.submissions)
      .set({ status: 'scored', error: null, updatedAt: Date.now() })
      .where(eq(schema.submissions.id, submissionId)),
  ]);
}

/** Canonical JSON: keys sorted at every level (the recipe hash does not depend on key order). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** Whether shared phases are served from and stored in R2 (SHARED_CACHE var, default on). */
export function sharedCacheEnabled(env: Env): boolean {
  return (env.SHARED_CACHE ?? 'on') !== 'off';
}

/** Whether submissions also run on the other targets (CROSS_HARDWARE var, default on). */
export function crossHardwareEnabled(env: Env): boolean {
  return (env.CROSS_HARDWARE ?? 'on') !== 'off';
}

/** Shards of the primary run and of the reproduction (another count, as L1.reproducible asks). */
export function shardCounts(env: Env): { primary: number; reproduction: number } {
  const n = Math.max(1, Math.min(16, Number.parseInt(env.SHARDS_PER_PHASE ?? '4', 10) || 4));
  return { primary: n, reproduction: n > 1 ? n - 1 : 2 };
}

/**
 * Creates a submission and its two runs and starts them, or returns the existing submission of
 * the same recipe by the same submitter (idempotent: the id derives from both).
 */
export async function createSubmission(
  env: Env,
  who: { submitter: string; tokenId: string },
  recipe: Recipe,
): Promise<{ id: string; created: boolean }> {
  const db = database(env);
  const text = canonicalJson(recipe);
  const hash = await sha256Text(text);
  const id = `sub_${(await sha256Text(`${who.submitter}\n${hash}`)).slice(0, 24)}`;
  const inserted = await db
    .insert(schema.submissions)
    .values({
      id,
      submitter: who.submitter,
      tokenId: who.tokenId,
      recipeHash: hash,
      recipe: JSON.parse(text),
      recipeName: recipe.name,
      task: recipe.task,
      target: recipe.target,
    })
    .onConflictDoNothing()
    .run();
  if (inserted.meta.changes !== 1) return { id, created: false };
  const counts = shardCounts(env);
  const runRows = [
    { id: `${id}.primary`, submissionId: id, role: 'primary' as const, shards: counts.primary },
    {
      id: `${id}.reproduction`,
      submissionId: id,
      role: 'reproduction' as const,
      shards: counts.reproduction,
    },
  ];
  // A QAT submission also runs the same recipe on the task's own model: its PTQ loss (L4.gain)
  // and the FP32 reference the QAT model's loss is measured against.
  const ptqRows = recipe.qat
    ? [
        {
          id: `${id}.ptq`,
          submissionId: id,
          role: 'ptq' as const,
          recipe: withoutQat(recipe),
          shards: counts.primary,
        },
      ]
    : [];
  await db
    .insert(schema.runs)
    .values([...runRows, ...ptqRows])
    .onConflictDoNothing()
    .run();
  await env.SHARDS.sendBatch(
    [...runRows, ...ptqRows].map((r) => ({
      body: { kind: 'advance', runId: r.id } satisfies ShardMessage,
    })),
  );
  return { id, created: true };
}

/** SHA-256 of a recipe's canonical JSON (the submission's identity with the submitter). */
export function recipeHash(recipe: Recipe): Promise<string> {
  return sha256Text(canonicalJson(recipe));
}

async function sha256Text(text: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Dispatches one queue message. */
export async function handleMessage(env: Env, m: ShardMessage): Promise<void> {
  switch (m.kind) {
    case 'advance':
      return advance(env, m.runId);
    case 'shard':
      await runShard(env, m.runId, m.phase, m.idx);
      return;
    case 'finalize':
      return finalize(env, m.submissionId);
  }
}

export type { Recipe };
