/**
 * The dynamic-quantization challenge on the service: a recipe for target cpu-wasm-dynamic
 * (activation scales computed per input at run time, DynamicQuantizeLinear -> ConvInteger /
 * MatMulInteger on onnxruntime-web) runs on the queue in workerd and gives the answer
 * `cann-quant score` gives in Node: the same parameters, INT8 metric and level. Its entry is
 * on the /challenges page, and recipes that cannot mean anything on it are refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import type { StoredReport } from '../../db/queries.ts';
import {
  api,
  localScore,
  makeToken,
  offLeaderboardAfterAll,
  seedTask,
  waitForSubmission,
} from './service-support.ts';

const recipe = {
  ...recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'cpu-wasm-dynamic'),
  name: 'dynamic-smoke',
};
let token: string;

beforeAll(async () => {
  const admin = (await makeToken('seeder-dynamic', 'admin')).token;
  await seedTask('smoke-fmnist', admin);
  token = (await makeToken('dana')).token;
}, 300_000);

const offLeaderboard = offLeaderboardAfterAll();

describe('dynamic quantization (cpu-wasm-dynamic) submissions', () => {
  it('refuse a QAT model on a target without calibrated activation scales', async () => {
    const res = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify({ ...recipe, qat: { model: '1'.repeat(64) } }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const errors = ((await res.json()) as { errors: { path: string; message?: string }[] }).errors;
    expect(errors.map((e) => e.path)).toContain('qat');
  });

  it('are scored on the queue as cann-quant score scores them, and listed by the challenge', async () => {
    const res = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify(recipe),
    });
    const body = (await res.json()) as { id: string };
    expect(res.status, JSON.stringify(body)).toBe(202);
    const { id } = body;
    offLeaderboard(id);
    expect(await waitForSubmission(id)).toMatchObject({ status: 'scored', error: null });
    const report = ((await (await api(`/api/v1/submissions/${id}/report`)).json()) as StoredReport)
      .report;
    expect(report.target).toBe('cpu-wasm-dynamic');
    expect(report.calibration.samples).toBe(50);
    // Sensitivity ran on the dynamic kernels: every layer has a tier.
    expect(report.layers.length).toBe(3);
    expect(report.layers.every((l) => typeof l.tier === 'string')).toBe(true);

    const local = await localScore(recipe);
    expect(report.metric.all.int8).toEqual(local.int8);
    expect(report.level).toBe(local.level);
    // The service times nothing and the target is timed, not modelled: no QQI to rank by.
    expect(report.qqi.value).toBeNull();

    const challenges = await (await api('/challenges')).text();
    const dynamic = challenges.slice(challenges.indexOf('id="dynamic"'));
    expect(dynamic).toContain(`data-submission="${id}"`);
    expect(dynamic).not.toContain('Not open.');
    const rows = (await (await api('/api/v1/leaderboard?targets=cpu-wasm-dynamic')).json()) as {
      rows: { submissionId: string; target: string }[];
    };
    expect(rows.rows.map((r) => r.submissionId)).toEqual([id]);
  }, 900_000);
});
