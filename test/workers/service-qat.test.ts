/**
 * QAT submissions (issue 9): a model trained by `cann-quant train` is uploaded
 * (POST /api/v1/models, size-bounded, checked against the reference graph: L4.architecture),
 * submitted with `recipe.qat`, scored on the queue like any recipe, and measured against the FP32
 * reference model, which a PTQ run of the same recipe on the task's model also provides (L4.gain).
 *
 * Fixture: test/fixtures/qat/smoke-fmnist-ascend310, written by
 * `node cli/bin.js train --task smoke-fmnist --target ascend310 --progressive --hardware-sim
 *  --epochs 1 --train-samples 1024 --held-out 300 --lr 1e-3 --no-ptq-eval --no-score
 *  --out test/fixtures/qat/smoke-fmnist-ascend310` (stage 2 kept, stages 1 and 3 rolled back).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../core/data/split-store.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import type { StoredReport } from '../../db/queries.ts';
import qatModel from '../fixtures/qat/smoke-fmnist-ascend310/model.qat.onnx';
import stageLog from '../fixtures/qat/smoke-fmnist-ascend310/stage-log.json';
import {
  api,
  localScore,
  makeToken,
  offLeaderboardAfterAll,
  seedTask,
  submitScored,
} from './service-support.ts';

const bytes = new Uint8Array(qatModel);
const base = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
const recipe = { ...base, name: 'qat' };
let token: string;

const upload = (body: BodyInit, query = '?task=smoke-fmnist', type = 'application/octet-stream') =>
  api(`/api/v1/models${query}`, { method: 'POST', token, headers: { 'content-type': type }, body });

beforeAll(async () => {
  const admin = (await makeToken('seeder-qat', 'admin')).token;
  await seedTask('smoke-fmnist', admin);
  token = (await makeToken('dora')).token;
}, 300_000);

const offLeaderboard = offLeaderboardAfterAll();

describe('QAT model uploads', () => {
  it('accept the reference graph and refuse anything else with a problem', async () => {
    const ok = await upload(bytes);
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({
      model: await sha256Hex(bytes),
      task: 'smoke-fmnist',
      bytes: bytes.length,
    });

    // another graph (still a valid model): the first Relu made a Sigmoid
    const changed = decodeModel(bytes);
    changed.graph!.node.find((n) => n.opType === 'Relu')!.opType = 'Sigmoid';
    const bad = await upload(encodeModel(changed));
    expect(bad.status).toBe(422);
    expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(((await bad.json()) as { detail: string }).detail).toMatch(/^L4\.architecture: /);

    expect((await upload(new Uint8Array([1, 2, 3, 4, 5]))).status).toBe(422); // not ONNX
    expect((await upload(new Uint8Array(2 * bytes.length + 1))).status).toBe(413);
    expect((await upload(bytes, '')).status).toBe(400); // no task
    expect((await upload(bytes, '?task=nope')).status).toBe(404);
    expect((await upload(bytes, undefined, 'application/json')).status).toBe(415);
    const anonymous = await api('/api/v1/models?task=smoke-fmnist', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(anonymous.status).toBe(401);

    // a recipe naming a model never uploaded
    const missing = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify({ ...recipe, qat: { model: '0'.repeat(64) } }),
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe(
      'qat.model',
    );

    // stress tests compare with the task's FP32 model, which a QAT submission does not score
    const stressed = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify({
        ...recipe,
        qat: { model: await sha256Hex(bytes) },
        validation: { stress: {} },
      }),
    });
    expect(stressed.status).toBe(400);
    expect(stressed.headers.get('content-type')).toBe('application/problem+json');
    expect(((await stressed.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe(
      'validation.stress',
    );
  });

  it('are scored against the FP32 reference with a PTQ run beside them', async () => {
    const model = await sha256Hex(bytes);
    const stages = stageLog.stages.map((s) => ({
      tiers: s.tiers as ('low' | 'medium' | 'high')[],
      simulatedArithmetic: s.simulatedArithmetic,
    }));
    const { id } = await submitScored({ ...recipe, qat: { model, stages } }, token, offLeaderboard);

    const view = (await (await api(`/api/v1/submissions/${id}`)).json()) as {
      runs: { role: string }[];
    };
    expect(view.runs.map((r) => r.role).sort()).toEqual([
      'cross',
      'cross',
      'cross',
      'cross',
      'primary',
      'ptq',
      'reproduction',
    ]);
    const stored = (await (await api(`/api/v1/submissions/${id}/report`)).json()) as StoredReport;
    const q = stored.qat!;
    expect(q.model).toBe(model);
    expect(q.sameGraph).toEqual({ same: true });

    // The PTQ run is the ordinary recipe on the task's model: the local score of that recipe.
    const local = (await localScore(base)) as Awaited<ReturnType<typeof localScore>> & {
      fp32: Record<string, number>;
    };
    expect(q.fp32Reference).toBe(local.fp32.top1);
    expect(q.ptq.int8).toBe(local.int8.top1);
    // The QAT model's loss is against that reference, not against its own FP32 accuracy.
    expect(q.lossPoints).toBeCloseTo((q.fp32Reference - q.int8) * 100, 6);
    expect(stored.report.metric.all.fp32).toEqual(local.fp32);
    expect(q.qatFp32).not.toBe(q.fp32Reference); // the weights changed
    expect(q.aboveReference).toBe(q.int8 > q.fp32Reference);
    expect(stored.reviewReason !== null).toBe(q.aboveReference || q.lossPoints < -0.5);

    const page = await (await api(`/submissions/${id}`)).text();
    expect(page).toContain('id="qat"');
    expect(page).toContain('data-qat="ptq"');

    const check = (cid: string) => stored.report.checks.find((k) => k.id === cid)!;
    expect(check('L4.architecture')).toMatchObject({ pass: true, value: true });
    // QAT trained the biases: that is its bias correction (the post-training one stays off)
    expect(check('L3.bias')).toMatchObject({ pass: true, value: 'qat' });
    // The leaderboard row carries the same comparison as the report (against the reference).
    const rows = (await (
      await api('/api/v1/leaderboard?task=smoke-fmnist&target=ascend310')
    ).json()) as {
      rows: {
        submissionId: string;
        fp32: number;
        int8: number;
        lossPoints: number;
        underReview: boolean;
      }[];
    };
    const row = rows.rows.find((r) => r.submissionId === id)!;
    expect(row).toMatchObject({
      fp32: q.fp32Reference,
      int8: q.int8,
      underReview: stored.reviewReason !== null,
    });
    expect(row.lossPoints).toBeCloseTo(q.lossPoints, 9);
    expect(check('L4.stages')).toMatchObject({ pass: true, value: 3 });
    const gain = check('L4.gain');
    expect(gain.value).toBeCloseTo(q.lossPoints, 6);
    expect(gain.pass).toBe(q.lossPoints < q.ptq.lossPoints && q.lossPoints <= 0.3);
  }, 900_000);
});
