/**
 * Cross-framework submissions: a QDQ model another framework quantized is uploaded
 * (POST /api/v1/models?format=qdq: readable, the task's inputs and outputs, the task's own model
 * within half a quantization step), submitted with `recipe.imported`, and scored on the queue
 * with its own scales: no calibration phase, the same answer as `cann-quant score --qdq`.
 *
 * Fixture: zoo/smoke-fmnist/pytorch-ptq/model.onnx, PyTorch's FX post-training quantization of
 * smoke-fmnist exported by torch.onnx (`/usr/bin/python3 zoo/common/pytorch_ptq.py smoke-fmnist`).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../core/data/split-store.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import floatModel from '../../zoo/smoke-fmnist/model.onnx';
import qoperatorModel from '../../zoo/smoke-fmnist/ort-qoperator/model.onnx';
import ptqModel from '../../zoo/smoke-fmnist/pytorch-ptq/model.onnx';
import {
  api,
  localScore,
  makeToken,
  offLeaderboardAfterAll,
  seedTask,
  submitScored,
} from './service-support.ts';

const bytes = new Uint8Array(ptqModel);
const base = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
let token: string;

const upload = (body: BodyInit, query = '?task=smoke-fmnist&format=qdq') =>
  api(`/api/v1/models${query}`, {
    method: 'POST',
    token,
    headers: { 'content-type': 'application/octet-stream' },
    body,
  });
const detail = async (res: Response) => ((await res.json()) as { detail: string }).detail;

beforeAll(async () => {
  const admin = (await makeToken('seeder-imported', 'admin')).token;
  await seedTask('smoke-fmnist', admin);
  token = (await makeToken('erin')).token;
}, 300_000);

const offLeaderboard = offLeaderboardAfterAll();

describe('imported (QDQ) model uploads', () => {
  it("accept a framework's quantization of the task's model and refuse anything else", async () => {
    const ok = await upload(bytes);
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({
      model: await sha256Hex(bytes),
      task: 'smoke-fmnist',
      format: 'qdq',
      bytes: bytes.length,
    });

    // the float model: nothing quantized
    const float = await upload(new Uint8Array(floatModel));
    expect(float.status).toBe(422);
    expect(float.headers.get('content-type')).toBe('application/problem+json');
    expect(await detail(float)).toMatch(
      /^the body is not a quantized model this service reads \(QDQ, or ONNX Runtime QOperator or dynamic\): no QuantizeLinear\/DequantizeLinear found/,
    );
    // the same file with one weight moved a whole quantization step: another model
    const moved = decodeModel(bytes.slice()); // raw_data are views into the bytes decoded
    const w = moved.graph!.node.find(
      (n) => n.opType === 'Constant' && n.attribute[0]?.t?.dataType === 3,
    )!.attribute[0]!.t!;
    const raw = new Int8Array(w.rawData.buffer, w.rawData.byteOffset, w.rawData.length);
    raw[0] = raw[0]! > 0 ? raw[0]! - 2 : raw[0]! + 2;
    const other = await upload(encodeModel(moved));
    expect(other.status).toBe(422);
    expect(await detail(other)).toMatch(
      /^the model is not smoke-fmnist's model: no imported conv \[8x1x3x3\] layer has \/features\/features\.0\/Conv's weights \(the closest is 2\.\d quantization steps away/,
    );
    // ONNX Runtime's operator-style (QOperator) file of the same model is read too
    const qop = new Uint8Array(qoperatorModel);
    const qopUp = await upload(qop);
    expect(qopUp.status, await qopUp.clone().text()).toBe(201);
    expect(((await qopUp.json()) as { model: string }).model).toBe(await sha256Hex(qop));
    const format = await upload(bytes, '?task=smoke-fmnist&format=tflite');
    expect(format.status).toBe(400);
    expect(((await format.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe(
      'format',
    );

    // a recipe naming a model never uploaded
    const missing = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify({ ...base, name: 'pt-missing', imported: { model: '1'.repeat(64) } }),
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe(
      'imported.model',
    );
  });

  it('are scored with their own scales, as cann-quant score --qdq scores them', async () => {
    const model = await sha256Hex(bytes);
    const recipe = {
      ...base,
      name: 'pytorch-fx-ptq',
      imported: { model, producer: 'pytorch 1.13.0' },
    };
    const { id, stored } = await submitScored(recipe, token, offLeaderboard);
    const report = stored.report;
    expect(report.calibration.sampler).toBe('imported');
    expect(report.calibration.samples).toBe(0);
    expect(report.imported!.producer).toBe('pytorch 1.13.0');
    expect(report.imported!.layers.map((l) => [l.activation.mapping, l.weight.mapping])).toEqual([
      ['exact', 'exact'],
      ['exact', 'exact'],
      ['exact', 'exact'],
    ]);
    expect(report.layers.every((l) => l.method === 'imported')).toBe(true);

    // The service's answer is the local one (the same parameters, metric, QQI and level).
    const local = await localScore(recipe);
    expect(report.metric.all.int8).toEqual(local.int8);
    expect(report.qqi.value).toBe(local.qqi);
    expect(report.level).toBe(local.level);
    const check = (cid: string) => report.checks.find((k) => k.id === cid)!;
    expect(check('L1.reproducible').pass).toBe(true);
    expect(check('L3.fidelity').pass).toBe(true);
    expect(check('L2.samples')).toMatchObject({ pass: false, value: 0 });

    const page = await (await api(`/submissions/${id}`)).text();
    expect(page).toContain('id="imported"');
    expect(page).toContain('pytorch 1.13.0');
    // The leaderboard says where the quantization came from, in JSON, CSV and on the page.
    const rows = (await (
      await api('/api/v1/leaderboard?task=smoke-fmnist&target=ascend310')
    ).json()) as { rows: { submissionId: string; importedFrom: string | null }[] };
    expect(rows.rows.find((r) => r.submissionId === id)!.importedFrom).toBe('pytorch 1.13.0');
    expect(
      rows.rows.filter((r) => r.submissionId !== id).every((r) => r.importedFrom === null),
    ).toBe(true);
    const csv = await (await api('/api/v1/leaderboard?task=smoke-fmnist&format=csv')).text();
    expect(csv.split('\n')[0]).toContain(',calibrationSamples,importedFrom,trusted,');
    const board = await (await api('/?task=smoke-fmnist')).text();
    expect(board).toContain('data-imported="pytorch 1.13.0"');
    // The cross-framework challenge: the leaderboard's imported rows, in the API and on its page.
    const only = (await (await api('/api/v1/leaderboard?source=imported')).json()) as {
      rows: { submissionId: string }[];
    };
    expect(only.rows.map((r) => r.submissionId)).toEqual([id]);
    const calibrated = (await (
      await api('/api/v1/leaderboard?source=calibrated&task=smoke-fmnist')
    ).json()) as { rows: { submissionId: string }[] };
    expect(calibrated.rows.some((r) => r.submissionId === id)).toBe(false);
    expect((await api('/api/v1/leaderboard?source=pytorch')).status).toBe(400);
    expect((await api('/api/v1/leaderboard?targets=ascend310-w4a8,nope')).status).toBe(400);
    const challenges = await (await api('/challenges')).text();
    const cross = challenges.slice(
      challenges.indexOf('id="cross-framework"'),
      challenges.indexOf('id="dynamic"'),
    );
    expect(cross).toContain(`data-submission="${id}"`);
    expect(cross).toContain('imported · pytorch 1.13.0');
    // ... and only there: the dynamic challenge lists cpu-wasm-dynamic entries.
    expect(challenges.slice(challenges.indexOf('id="dynamic"'))).not.toContain(
      `data-submission="${id}"`,
    );
  }, 900_000);
});
