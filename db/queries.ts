/**
 * Read queries of the service, shared by the API (functions/api) and the pages (leaderboard/).
 * Nothing here returns a task's data or label keys: public shapes only.
 */
import { and, asc, desc, eq, gte, inArray, type SQL, sql } from 'drizzle-orm';
import { type DrizzleD1Database, drizzle } from 'drizzle-orm/d1';
import type { StoredReport } from '../core/score/submission-report.ts';
import * as schema from './schema.ts';

export type Db = DrizzleD1Database<typeof schema>;

/** A drizzle handle over a D1 binding. */
export function openDb(d1: D1Database): Db {
  return drizzle(d1, { schema });
}

/** A task as the public sees it (no storage keys, no labels). */
export interface PublicTask {
  id: string;
  title: string;
  kind: string;
  metric: string;
  manifest: unknown;
  loadedAt: number;
}

export async function listTasks(db: Db): Promise<PublicTask[]> {
  const rows = await db.select().from(schema.tasks).orderBy(asc(schema.tasks.id)).all();
  return rows.map(publicTask);
}

export async function getTaskRow(db: Db, id: string): Promise<PublicTask | null> {
  const row = await db.select().from(schema.tasks).where(eq(schema.tasks.id, id)).get();
  return row ? publicTask(row) : null;
}

function publicTask(row: typeof schema.tasks.$inferSelect): PublicTask {
  return {
    id: row.id,
    title: row.title,
    kind: row.kind,
    metric: row.metric,
    manifest: row.manifest,
    loadedAt: row.createdAt,
  };
}

/** Leaderboard filters and order (all optional). */
export interface LeaderboardQuery {
  task?: string;
  target?: string;
  /** Minimum level earned. */
  level?: number;
  minQqi?: number;
  /**
   * Where the quantization came from: calibrated here, imported from another framework
   * (recipe.imported), or a QAT model (recipe.qat).
   */
  source?: LeaderboardSource;
  /** Only these targets (e.g. the W4A8 ones); `target` narrows further. */
  targets?: readonly string[];
  sort?: LeaderboardSort;
  limit?: number;
}

export const LEADERBOARD_SORTS = ['qqi', 'loss', 'speedup', 'energy', 'date', 'level'] as const;
export const LEADERBOARD_SOURCES = ['calibrated', 'imported', 'qat'] as const;
export type LeaderboardSource = (typeof LEADERBOARD_SOURCES)[number];
export type LeaderboardSort = (typeof LEADERBOARD_SORTS)[number];

/** One ranked row. */
export interface LeaderboardRow {
  rank: number;
  submissionId: string;
  recipe: string;
  submitter: string;
  task: string;
  target: string;
  level: number;
  qqi: number | null;
  metric: string;
  fp32: number;
  int8: number;
  lossPoints: number;
  estimatedLossPoints: number | null;
  speedup: number | null;
  energyGain: number | null;
  calibrationSamples: number;
  /**
   * Cross-framework submissions (recipe.imported): the framework that quantized the model, as
   * the submitter named it ('unnamed' when not); null for recipes calibrated here.
   */
  importedFrom: string | null;
  trusted: boolean;
  underReview: boolean;
  reviewReason: string | null;
  scoredAt: number;
}

/** The producer of an imported quantization named by a stored recipe (null: not imported). */
function importedFrom(recipe: unknown): string | null {
  const imported = (recipe as { imported?: { producer?: string } } | null)?.imported;
  return imported ? (imported.producer ?? 'unnamed') : null;
}

/** Scored submissions, filtered and ranked (rank 1 = first in the chosen order). */
export async function leaderboard(db: Db, q: LeaderboardQuery = {}): Promise<LeaderboardRow[]> {
  const r = schema.results;
  const where: SQL[] = [];
  if (q.task) where.push(eq(r.task, q.task));
  if (q.target) where.push(eq(r.target, q.target));
  if (q.level !== undefined) where.push(gte(r.level, q.level));
  if (q.minQqi !== undefined) where.push(gte(r.qqi, q.minQqi));
  if (q.targets) where.push(inArray(r.target, [...q.targets]));
  const recipe = schema.submissions.recipe;
  const imported = sql`json_extract(${recipe}, '$.imported') IS NOT NULL`;
  const qat = sql`json_extract(${recipe}, '$.qat') IS NOT NULL`;
  if (q.source === 'imported') where.push(imported);
  if (q.source === 'qat') where.push(qat);
  if (q.source === 'calibrated')
    where.push(
      sql`json_extract(${recipe}, '$.imported') IS NULL AND json_extract(${recipe}, '$.qat') IS NULL`,
    );
  const order = {
    qqi: [sql`${r.qqi} IS NULL`, desc(r.qqi), asc(r.lossPoints)],
    loss: [asc(r.lossPoints), sql`${r.qqi} IS NULL`, desc(r.qqi)],
    speedup: [sql`${r.speedup} IS NULL`, desc(r.speedup), desc(r.qqi)],
    energy: [sql`${r.energyGain} IS NULL`, desc(r.energyGain), desc(r.qqi)],
    level: [desc(r.level), sql`${r.qqi} IS NULL`, desc(r.qqi)],
    date: [desc(r.createdAt)],
  }[q.sort ?? 'qqi'];
  const rows = await db
    .select({ result: r, submission: schema.submissions })
    .from(r)
    .innerJoin(schema.submissions, eq(r.submissionId, schema.submissions.id))
    .where(where.length ? and(...where) : undefined)
    .orderBy(...order, asc(r.submissionId))
    .limit(Math.min(Math.max(q.limit ?? 500, 1), 1000))
    .all();
  return rows.map(({ result: x, submission: s }, i) => ({
    rank: i + 1,
    submissionId: x.submissionId,
    recipe: s.recipeName,
    submitter: s.submitter,
    task: x.task,
    target: x.target,
    level: x.level,
    qqi: x.qqi,
    metric: x.metric,
    fp32: x.fp32,
    int8: x.int8,
    lossPoints: x.lossPoints,
    estimatedLossPoints: x.estimatedLossPoints,
    speedup: x.speedup,
    energyGain: x.energyGain,
    calibrationSamples: x.calibrationSamples,
    importedFrom: importedFrom(s.recipe),
    trusted: x.trusted,
    underReview: x.underReview,
    reviewReason: x.reviewReason,
    scoredAt: x.createdAt,
  }));
}

/** Shards done / planned per phase of one run. */
export interface RunProgress {
  id: string;
  role: 'primary' | 'reproduction' | 'cross' | 'ptq';
  target: string | null;
  shards: number;
  status: string;
  error: string | null;
  phases: { phase: string; done: number; total: number }[];
}

/** A submission with its progress and (once scored) its headline result. */
export interface SubmissionView {
  id: string;
  status: schema.SubmissionStatus;
  submitter: string;
  recipe: string;
  recipeHash: string;
  task: string;
  target: string;
  error: string | null;
  createdAt: number;
  updatedAt: number;
  runs: RunProgress[];
  result: Omit<LeaderboardRow, 'rank'> | null;
}

export async function getSubmission(db: Db, id: string): Promise<SubmissionView | null> {
  const s = await db.select().from(schema.submissions).where(eq(schema.submissions.id, id)).get();
  if (!s) return null;
  const runs = await db
    .select()
    .from(schema.runs)
    .where(eq(schema.runs.submissionId, id))
    .orderBy(asc(schema.runs.role))
    .all();
  const counts = await db
    .select({
      runId: schema.shards.runId,
      phase: schema.shards.phase,
      seq: schema.phases.seq,
      total: sql<number>`count(*)`,
      done: sql<number>`sum(case when ${schema.shards.status} = 'done' then 1 else 0 end)`,
    })
    .from(schema.shards)
    .innerJoin(
      schema.phases,
      and(
        eq(schema.phases.runId, schema.shards.runId),
        eq(schema.phases.phase, schema.shards.phase),
      ),
    )
    .innerJoin(schema.runs, eq(schema.runs.id, schema.shards.runId))
    .where(eq(schema.runs.submissionId, id))
    .groupBy(schema.shards.runId, schema.shards.phase)
    .orderBy(asc(schema.phases.seq))
    .all();
  const result = await db
    .select()
    .from(schema.results)
    .where(eq(schema.results.submissionId, id))
    .get();
  return {
    id: s.id,
    status: s.status,
    submitter: s.submitter,
    recipe: s.recipeName,
    recipeHash: s.recipeHash,
    task: s.task,
    target: s.target,
    error: s.error,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    runs: runs.map((r) => ({
      id: r.id,
      role: r.role,
      target: r.target ?? s.target,
      shards: r.shards,
      status: r.status,
      error: r.error,
      phases: counts
        .filter((c) => c.runId === r.id)
        .map((c) => ({ phase: c.phase, done: Number(c.done), total: Number(c.total) })),
    })),
    result: result
      ? {
          submissionId: id,
          recipe: s.recipeName,
          submitter: s.submitter,
          task: result.task,
          target: result.target,
          level: result.level,
          qqi: result.qqi,
          metric: result.metric,
          fp32: result.fp32,
          int8: result.int8,
          lossPoints: result.lossPoints,
          estimatedLossPoints: result.estimatedLossPoints,
          speedup: result.speedup,
          energyGain: result.energyGain,
          calibrationSamples: result.calibrationSamples,
          importedFrom: importedFrom(s.recipe),
          trusted: result.trusted,
          underReview: result.underReview,
          reviewReason: result.reviewReason,
          scoredAt: result.createdAt,
        }
      : null,
  };
}

/** R2 key of a scored submission's report, or null. */
export async function reportKey(db: Db, id: string): Promise<string | null> {
  const r = await db
    .select({ key: schema.results.reportKey })
    .from(schema.results)
    .where(eq(schema.results.submissionId, id))
    .get();
  return r?.key ?? null;
}

/** The checks of a scored submission, by level. */
export async function submissionChecks(db: Db, id: string) {
  return db
    .select()
    .from(schema.checks)
    .where(eq(schema.checks.submissionId, id))
    .orderBy(asc(schema.checks.level), asc(schema.checks.checkId))
    .all();
}

/** Per-layer rows of a scored submission. */
export async function submissionLayers(db: Db, id: string) {
  return db
    .select()
    .from(schema.layerResults)
    .where(eq(schema.layerResults.submissionId, id))
    .all();
}

export type { StoredReport };

/** The stored report of a scored submission, or null (unknown or not scored yet). */
export async function getReport(
  db: Db,
  bucket: R2Bucket,
  id: string,
): Promise<StoredReport | null> {
  const key = await reportKey(db, id);
  if (!key) return null;
  const obj = await bucket.get(key);
  return obj ? ((await obj.json()) as StoredReport) : null;
}

/** The validated recipe of a submission (any status), or null. Used by the submission page. */
export async function submissionRecipe(db: Db, id: string): Promise<unknown | null> {
  const row = await db
    .select({ recipe: schema.submissions.recipe })
    .from(schema.submissions)
    .where(eq(schema.submissions.id, id))
    .get();
  return row ? row.recipe : null;
}
