/**
 * The service end to end in workerd: a recipe submitted through the API is planned into shards,
 * fanned out on the real local queue, reduced and scored; the result equals `cann-quant score`
 * run locally (live, by the seed server in Node) in parameters, metric and QQI; evaluation
 * labels never leave the service.
 */
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import type { StoredReport } from '../../db/queries.ts';
import { api, localScore, makeToken, seedTask, waitForSubmission } from './service-support.ts';

// with the robustness stress tests (recipe.validation.stress), which only the primary run does
const recipe = {
  ...recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310'),
  validation: { stress: { thresholdPoints: 0.3 } },
};
let admin: string;
let labelsKey: string;

beforeAll(async () => {
  admin = (await makeToken('seeder', 'admin')).token;
  ({ labelsKey } = await seedTask('smoke-fmnist', admin));
}, 300_000);

describe('a submission, end to end', () => {
  let id: string;

  it('is accepted (202 + Location), idempotent, and scored on the queue', async () => {
    const { token } = await makeToken('alice');
    const res = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify(recipe),
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string; status: string };
    id = body.id;
    expect(res.headers.get('location')).toBe(`/api/v1/submissions/${id}`);
    expect(body.status).toBe('queued');
    // The same recipe from the same submitter (keys in another order) is the same submission.
    const again = await api('/api/v1/submissions', {
      method: 'POST',
      token,
      body: JSON.stringify(Object.fromEntries(Object.entries(recipe).reverse())),
    });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(id);

    const done = await waitForSubmission(id);
    expect(done).toMatchObject({ status: 'scored', error: null });
    const view = (await (await api(`/api/v1/submissions/${id}`)).json()) as {
      runs: {
        role: string;
        target: string;
        shards: number;
        phases: { phase: string; done: number; total: number }[];
      }[];
    };
    const byRole = (role: string) => view.runs.filter((r) => r.role === role);
    expect(byRole('primary').map((r) => r.shards)).toEqual([4]);
    expect(byRole('reproduction').map((r) => r.shards)).toEqual([3]);
    // One cross-hardware run per other target, started when the primary completed.
    expect(
      byRole('cross')
        .map((r) => r.target)
        .sort(),
    ).toEqual(['ascend310p', 'cpu-wasm', 'nvidia-t4', 'snapdragon']);
    const phases = (r: { phases: { phase: string }[] }) => r.phases.map((p) => p.phase);
    for (const r of byRole('primary'))
      expect(phases(r).slice(-3)).toEqual(['validate', 'stress-range', 'stress']);
    for (const r of [...byRole('reproduction'), ...byRole('cross')])
      expect(phases(r)).not.toContain('stress');
    for (const r of [...byRole('primary'), ...byRole('reproduction')])
      expect(phases(r).filter((p) => !p.startsWith('stress'))).toEqual([
        'reference',
        'ranges',
        'histograms',
        'sensitivity',
        // max trials of the per-layer method search (percentile 99.99 is the sensitivity pass's)
        'search',
        'bias',
        // the recipe's biasCorrection is 'auto': both candidates are estimated
        'estimate',
        'estimate-uncorrected',
        'fidelity',
        'validate',
      ]);
    // The FP32 reference pass is shared: the cross-hardware runs (same model, same data) get
    // their reference shards from R2 without executing them (attempts 0); the reproduction run
    // never reads the shared cache (an independent execution for L1.reproducible).
    const refShards = await env.DB.prepare(
      `SELECT runs.role AS role, shards.attempts AS attempts, shards.status AS status
         FROM shards JOIN runs ON shards.run_id = runs.id
        WHERE runs.submission_id = ? AND shards.phase = 'reference'`,
    )
      .bind(id)
      .all<{ role: string; attempts: number; status: string }>();
    const refOf = (role: string) => refShards.results.filter((r) => r.role === role);
    // 4 targets x (1 calibration + 2 evaluation ranges: REFERENCE_RANGE is 500 samples)
    expect(refOf('cross')).toHaveLength(4 * 3);
    for (const r of refOf('cross'))
      expect(r).toEqual({ role: 'cross', attempts: 0, status: 'done' });
    expect(refOf('reproduction')).toHaveLength(3);
    for (const r of refOf('reproduction')) expect(r.attempts).toBeGreaterThanOrEqual(1);
    for (const r of view.runs) {
      expect(r.phases.length).toBeGreaterThanOrEqual(5);
      for (const p of r.phases) expect(p.done).toBe(p.total);
    }
  }, 900_000);

  it('scores exactly as `cann-quant score` does locally', async () => {
    const local = await localScore(recipe);
    const res = await api(`/api/v1/submissions/${id}/report`);
    expect(res.status).toBe(200);
    const stored = (await res.json()) as StoredReport;
    expect(stored.report.paramsDigest).toBe(local.paramsDigest);
    expect(stored.report.metric.all.int8).toEqual(local.int8);
    expect(stored.report.qqi.value).toBe(local.qqi);
    expect(stored.report.metric.fp32).toBe(0.885);
    // The reproduction ran with another shard count and agreed.
    const repro = stored.report.checks.find((c) => c.id === 'L1.reproducible');
    expect(repro?.pass).toBe(true);
    expect(stored.layerErrors?.samples).toBe(200);
    // The cross-hardware table: the same recipe on the five targets, and L5.cross from it.
    const cross = stored.crossHardware!;
    expect(cross.rows.map((r) => r.target)).toEqual([
      'ascend310',
      'ascend310p',
      'nvidia-t4',
      'snapdragon',
      'cpu-wasm',
    ]);
    expect(cross.rows[0]!.int8).toBe(stored.report.metric.int8);
    const l5 = stored.report.checks.find((c) => c.id === 'L5.cross')!;
    expect(l5.pass).toBe(cross.l5.pass);
    expect(l5.pass).not.toBe('not-run');
    expect(stored.layerErrors?.layers.length).toBe(stored.report.layers.length);
    // The stress tests give, in workerd over the queue's shards, what `cann-quant validate
    // --stress` gives in Node for the same recipe (cli/validate.test.ts pins the same rows).
    const stress = stored.stress!;
    expect(stress.threshold_points).toBe(0.3);
    expect(stress.rows.map((r) => [r.id, r.fp32, r.int8])).toEqual([
      ['noise-0.1', 0.887, 0.888],
      ['noise-0.3', 0.845, 0.845],
      ['contrast-1.5', 0.887, 0.883],
      ['brightness-0.5', 0.719, 0.713],
    ]);
    expect(stress.rows.filter((r) => !r.pass).map((r) => r.id)).toEqual(['brightness-0.5']);
    // +0.50 points over the clean loss, with a standard error of 0.27: within noise (the same
    // jackknife in Node: test/node/pipeline.test.ts)
    expect(stress.rows.map((r) => r.extra_se_points)).toEqual([
      0.133333, 0.179505, 0.213437, 0.268742,
    ]);
    expect(stress.rows.every((r) => r.significant === false)).toBe(true);
  }, 300_000);

  it('its page shows the cross-hardware table of the real runs', async () => {
    const stored = (await (await api(`/api/v1/submissions/${id}/report`)).json()) as StoredReport;
    const res = await api(`/submissions/${id}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const section = html.slice(html.indexOf('id="hardware"'));
    expect(section).toContain('Cross-hardware');
    for (const row of stored.crossHardware!.rows) expect(section).toContain(row.name);
    const stress = html.slice(html.indexOf('id="stress"'), html.indexOf('id="heatmap"'));
    expect(stress).toContain('Robustness stress tests');
    expect(stress).toMatch(
      /<tr data-stress="brightness-0.5">[\s\S]*?flagged<\/span> \(within noise\)/,
    );
    expect(stress).toContain('1 flagged.');
  });

  it('appears on the leaderboard (JSON and CSV)', async () => {
    const json = (await (
      await api('/api/v1/leaderboard?task=smoke-fmnist&target=ascend310&sort=qqi')
    ).json()) as { rows: { submissionId: string; qqi: number; level: number }[] };
    const row = json.rows.find((r) => r.submissionId === id);
    expect(row).toBeDefined();
    const csv = await (await api('/api/v1/leaderboard?task=smoke-fmnist&format=csv')).text();
    expect(csv.split('\n')[0]).toMatch(/^rank,submissionId,recipe,submitter/);
    expect(csv).toContain(id);
  });

  it('never returns the evaluation labels', async () => {
    const labels = await env.BLOBS.get(labelsKey);
    expect(labels).not.toBeNull();
    const labelBytes = new Uint8Array(await labels!.arrayBuffer());
    const labelText = new TextDecoder().decode(labelBytes);
    const paths = [
      '/api/v1/tasks',
      '/api/v1/tasks/smoke-fmnist',
      `/api/v1/submissions/${id}`,
      `/api/v1/submissions/${id}/report`,
      '/api/v1/leaderboard',
      '/api/v1/leaderboard?format=csv',
      '/api/v1/openapi.json',
      '/api/v1/targets',
      '/api/v1/templates',
    ];
    for (const p of paths) {
      const text = await (await api(p)).text();
      expect(text, p).not.toContain(labelsKey.slice('blobs/'.length));
      expect(text, p).not.toContain(labelText.slice(0, 200));
    }
    // Admin blob routes have no GET (only HEAD, which says whether a blob is there): a blob
    // cannot be read back through the API.
    const get = await api(`/api/v1/admin/${labelsKey}`, { token: admin });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('HEAD');
    expect(await get.text()).not.toContain(labelText.slice(0, 200));
  });
});
