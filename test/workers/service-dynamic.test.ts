/**
 * The dynamic-quantization challenge on the service: a recipe for target cpu-wasm-dynamic
 * (activation scales computed per input at run time, DynamicQuantizeLinear -> ConvInteger /
 * MatMulInteger on onnxruntime-web) runs on the queue in workerd and gives the answer
 * `cann-quant score` gives in Node: the same parameters, INT8 metric and level. Its entry is
 * on the /challenges page, and recipes that cannot mean anything on it are refused.
 *
 * A file ONNX Runtime's own quantize_dynamic wrote (zoo/smoke-fmnist/ort-dynamic, made by
 * zoo/common/ort_dynamic.py) is uploaded and scored on the same target with its own weights;
 * submitted for a static target, it is refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../core/data/split-store.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import type { StoredReport } from '../../db/queries.ts';
import ortDynamicModel from '../../zoo/smoke-fmnist/ort-dynamic/model.onnx';
import {
  api,
  localScore,
  makeToken,
  offLeaderboardAfterAll,
  seedTask,
  submitScored,
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
    const { id, stored } = await submitScored(recipe, token, offLeaderboard);
    const report = stored.report;
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

  it('score an ONNX Runtime quantize_dynamic file with its own weights, and refuse it for a static target', async () => {
    const bytes = new Uint8Array(ortDynamicModel);
    const up = await api('/api/v1/models?task=smoke-fmnist&format=qdq', {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(up.status, await up.clone().text()).toBe(201);
    const imported = {
      model: await sha256Hex(bytes),
      producer: 'onnxruntime 1.30.0 quantize_dynamic',
    };

    const wrong = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify({
        ...recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
        name: 'ort-dynamic-on-ascend',
        imported,
      }),
    });
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await wrong.json()) as { detail: string; errors: { path: string }[] };
    expect(problem.detail).toMatch(
      /^the file is quantized dynamically .*: ascend310 needs calibrated activation scales/,
    );
    expect(problem.errors.map((e) => e.path)).toEqual(['target']);

    const ort = { ...recipe, name: 'ort-quantize-dynamic', imported };
    const res = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify(ort),
    });
    const body = (await res.json()) as { id: string };
    expect(res.status, JSON.stringify(body)).toBe(202);
    offLeaderboard(body.id);
    expect(await waitForSubmission(body.id)).toMatchObject({ status: 'scored', error: null });
    const report = (
      (await (await api(`/api/v1/submissions/${body.id}/report`)).json()) as StoredReport
    ).report;
    expect(report.calibration.sampler).toBe('imported');
    expect(report.imported!.format).toBe('dynamic');
    expect(report.imported!.layers.map((l) => [l.activation.foreign, l.weight.mapping])).toEqual([
      ['dynamic', 'exact'],
      ['dynamic', 'exact'],
      ['dynamic', 'exact'],
    ]);
    const local = await localScore(ort);
    expect(report.metric.all.int8).toEqual(local.int8);
    expect(report.level).toBe(local.level);
    const page = await (await api(`/submissions/${body.id}`)).text();
    expect(page).toContain('id="imported"');
    expect(page).toContain('per input, at run time');
    expect(page).toContain(
      'A model quantized dynamically (activation scales computed per input at run time) by',
    );
  }, 900_000);
});
