/**
 * The data-free risk predictor (core/risk, docs/RISK.md) on a loaded task's model, for the API
 * (GET /api/v1/tasks/:id/risk) and the task pages. Reports are pure functions of the model's
 * bytes (content-addressed key) and the options, so an isolate keeps the last few it computed.
 */
import { eq } from 'drizzle-orm';
import { getTarget, type TargetId } from '../../core/formats/targets.ts';
import { decodeModel } from '../../core/onnx/index.ts';
import {
  parseInputStats,
  predictRisk,
  type RiskOptions,
  type RiskReport,
} from '../../core/risk/risk.ts';
import { openDb } from '../../db/queries.ts';
import * as schema from '../../db/schema.ts';
import type { Env } from '../env.ts';
import { IsolateCache } from './isolate-cache.ts';

const reports = new IsolateCache(32);

/**
 * Risk reports of task `id`'s model on `targets`: `null` when no such task is loaded,
 * `undefined` when its model blob is missing from R2 (a broken load; the API answers 500).
 */
export async function taskRisk(
  env: Pick<Env, 'DB' | 'BLOBS'>,
  id: string,
  targets: readonly TargetId[],
  options: RiskOptions = {},
  /** `[name=]mean,std,min,max` for a float input (core/risk parseInputStats; InputStatsError). */
  inputStats?: string,
): Promise<RiskReport[] | null | undefined> {
  const row = await openDb(env.DB)
    .select({ modelKey: schema.tasks.modelKey })
    .from(schema.tasks)
    .where(eq(schema.tasks.id, id))
    .get();
  if (!row) return null;
  const key = `${row.modelKey}|${targets.join(',')}|${JSON.stringify(options)}|${inputStats ?? ''}`;
  try {
    return await reports.get(key, async () => {
      const blob = await env.BLOBS.get(row.modelKey);
      if (!blob) throw new MissingModel();
      const model = decodeModel(new Uint8Array(await blob.arrayBuffer()));
      const inputs = inputStats ? { inputs: parseInputStats(inputStats, model) } : {};
      return targets.map((t) => predictRisk(model, getTarget(t), { ...options, ...inputs }));
    });
  } catch (err) {
    if (err instanceof MissingModel) return undefined;
    throw err;
  }
}

class MissingModel extends Error {}
