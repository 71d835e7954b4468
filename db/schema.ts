/**
 * The service's D1 schema (drizzle). Migrations are generated from this file with
 * `npm run db:generate` (drizzle-kit) into db/migrations, which `wrangler d1 migrations apply`
 * and the workers tests both apply.
 *
 * Large things never live here: models, task data, shard outputs and reports are R2 objects
 * under content-addressed keys (`blobs/<sha256>`); rows hold their keys.
 */
import { sql } from 'drizzle-orm';
import {
  index,
  integer,
  primaryKey,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';

const now = sql`(unixepoch('subsec') * 1000)`;
const createdAt = () => integer('created_at', { mode: 'number' }).notNull().default(now);

/** Benchmark tasks loaded by the seed step. Label keys are internal: no endpoint returns them. */
export const tasks = sqliteTable('tasks', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  kind: text('kind').notNull(),
  metric: text('metric').notNull(),
  /** The public task manifest (zoo/<id>/task.json). */
  manifest: text('manifest', { mode: 'json' }).notNull(),
  /** FP32 ONNX model. */
  modelKey: text('model_key').notNull(),
  /** Split manifests (chunked model inputs, see functions/storage.ts). */
  calibrationKey: text('calibration_key').notNull(),
  evaluationKey: text('evaluation_key').notNull(),
  /** Ground truth of the evaluation split. Never returned by any endpoint. */
  labelsKey: text('labels_key').notNull(),
  createdAt: createdAt(),
});

/** Hardware targets (a copy of core/formats/targets.ts for queries and joins). */
export const targets = sqliteTable('targets', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  spec: text('spec', { mode: 'json' }).notNull(),
});

/** API tokens: only the SHA-256 of the token is stored. */
export const tokens = sqliteTable(
  'tokens',
  {
    id: text('id').primaryKey(),
    submitter: text('submitter').notNull(),
    hash: text('hash').notNull(),
    role: text('role', { enum: ['submitter', 'admin'] })
      .notNull()
      .default('submitter'),
    createdAt: createdAt(),
    revokedAt: integer('revoked_at', { mode: 'number' }),
    lastUsedAt: integer('last_used_at', { mode: 'number' }),
  },
  (t) => [uniqueIndex('tokens_hash').on(t.hash)],
);

export type SubmissionStatus = 'queued' | 'running' | 'scored' | 'failed';

/** A submitted recipe. The same recipe from the same submitter is one submission. */
export const submissions = sqliteTable(
  'submissions',
  {
    id: text('id').primaryKey(),
    submitter: text('submitter').notNull(),
    tokenId: text('token_id').notNull(),
    /** SHA-256 of the canonical (validated, defaults filled, keys sorted) recipe JSON. */
    recipeHash: text('recipe_hash').notNull(),
    recipe: text('recipe', { mode: 'json' }).notNull(),
    recipeName: text('recipe_name').notNull(),
    task: text('task').notNull(),
    target: text('target').notNull(),
    status: text('status', { enum: ['queued', 'running', 'scored', 'failed'] })
      .notNull()
      .default('queued'),
    error: text('error'),
    createdAt: createdAt(),
    updatedAt: integer('updated_at', { mode: 'number' }).notNull().default(now),
  },
  (t) => [
    uniqueIndex('submissions_submitter_recipe').on(t.submitter, t.recipeHash),
    index('submissions_task_target').on(t.task, t.target),
  ],
);

/**
 * Executions of a submission's recipe: the primary run, an independent reproduction with
 * another shard count (the L1.reproducible evidence) and, once the primary is complete, one run
 * per other target of the cross-hardware table (L5.cross).
 */
export const runs = sqliteTable(
  'runs',
  {
    id: text('id').primaryKey(),
    submissionId: text('submission_id').notNull(),
    role: text('role', { enum: ['primary', 'reproduction', 'cross', 'ptq'] }).notNull(),
    /** Cross-hardware runs: the other target, and the recipe derived for it (else null). */
    target: text('target'),
    recipe: text('recipe', { mode: 'json' }),
    shards: integer('shards').notNull(),
    status: text('status', { enum: ['running', 'complete', 'failed'] })
      .notNull()
      .default('running'),
    error: text('error'),
    createdAt: createdAt(),
    finishedAt: integer('finished_at', { mode: 'number' }),
  },
  (t) => [index('runs_submission').on(t.submissionId)],
);

/** Phases a run reached, in order; a row exists once the phase was fanned out. */
export const phases = sqliteTable(
  'phases',
  {
    runId: text('run_id').notNull(),
    phase: text('phase').notNull(),
    seq: integer('seq').notNull(),
    shards: integer('shards').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.phase] })],
);

/** One shard of a phase. `done` is set once (the first delivery that finishes wins). */
export const shards = sqliteTable(
  'shards',
  {
    runId: text('run_id').notNull(),
    phase: text('phase').notNull(),
    idx: integer('idx').notNull(),
    status: text('status', { enum: ['pending', 'done'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    outputKey: text('output_key'),
    outputBytes: integer('output_bytes'),
    seconds: real('seconds'),
    error: text('error'),
    updatedAt: integer('updated_at', { mode: 'number' }).notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.runId, t.phase, t.idx] })],
);

/** The scored result of a submission (one row once scored): what the leaderboard ranks. */
export const results = sqliteTable(
  'results',
  {
    submissionId: text('submission_id').primaryKey(),
    task: text('task').notNull(),
    target: text('target').notNull(),
    qqi: real('qqi'),
    level: integer('level').notNull(),
    metric: text('metric').notNull(),
    fp32: real('fp32').notNull(),
    int8: real('int8').notNull(),
    lossPoints: real('loss_points').notNull(),
    estimatedLossPoints: real('estimated_loss_points'),
    speedup: real('speedup'),
    energyGain: real('energy_gain'),
    calibrationSamples: integer('calibration_samples').notNull(),
    paramsDigest: text('params_digest').notNull(),
    trusted: integer('trusted', { mode: 'boolean' }).notNull(),
    /** Results a reviewer should look at (e.g. INT8 above its FP32 reference). */
    underReview: integer('under_review', { mode: 'boolean' }).notNull().default(false),
    reviewReason: text('review_reason'),
    reportKey: text('report_key').notNull(),
    qdqKey: text('qdq_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('results_task_target_qqi').on(t.task, t.target, t.qqi)],
);

/** Per-layer quantization and sensitivity of a scored submission. */
export const layerResults = sqliteTable(
  'layer_results',
  {
    submissionId: text('submission_id').notNull(),
    layer: text('layer').notNull(),
    kind: text('kind').notNull(),
    tier: text('tier'),
    method: text('method').notNull(),
    actScale: real('act_scale').notNull(),
    actZeroPoint: integer('act_zero_point').notNull(),
    channels: integer('channels').notNull(),
    sqnrDb: real('sqnr_db'),
  },
  (t) => [primaryKey({ columns: [t.submissionId, t.layer] })],
);

/** The L1-L5 checks of a scored submission. */
export const checks = sqliteTable(
  'checks',
  {
    submissionId: text('submission_id').notNull(),
    checkId: text('check_id').notNull(),
    level: integer('level').notNull(),
    /** 'pass' | 'fail' | 'not-run'. */
    outcome: text('outcome', { enum: ['pass', 'fail', 'not-run'] }).notNull(),
    value: text('value', { mode: 'json' }),
    threshold: text('threshold').notNull(),
    evidence: text('evidence').notNull(),
  },
  (t) => [primaryKey({ columns: [t.submissionId, t.checkId] })],
);

/** Feedback knowledge base: (deviation, suggestion, outcome) per layer, consulted by later runs. */
export const feedback = sqliteTable(
  'feedback',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    task: text('task').notNull(),
    target: text('target').notNull(),
    layer: text('layer').notNull(),
    opType: text('op_type').notNull(),
    deviation: text('deviation', { mode: 'json' }).notNull(),
    suggestion: text('suggestion', { mode: 'json' }).notNull(),
    outcome: text('outcome', { mode: 'json' }).notNull(),
    recoveredPoints: real('recovered_points'),
    createdAt: createdAt(),
  },
  (t) => [index('feedback_lookup').on(t.target, t.opType)],
);

/** Fixed-window request counters for rate limiting (key = token id or client address). */
export const rateLimits = sqliteTable(
  'rate_limits',
  {
    key: text('key').notNull(),
    window: integer('window').notNull(),
    count: integer('count').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.key, t.window] })],
);
