/**
 * GET /api/v1/tasks/:id/risk in workerd: the data-free risk predictor (core/risk) on a loaded
 * task's model gives, double for double, what it gives in Node (core/risk/risk.test.ts and
 * cli/risk.test.ts pin the same smoke-fmnist figures), and its errors are problem+json.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RiskReport } from '../../core/risk/risk.ts';
import { api, makeToken, seedTask } from './service-support.ts';

beforeAll(async () => {
  await seedTask('smoke-fmnist', (await makeToken('seeder-risk', 'admin')).token);
}, 300_000);

describe('GET /api/v1/tasks/:id/risk', () => {
  it("reports smoke-fmnist on Ascend 310 with Node's exact doubles", async () => {
    const res = await api('/api/v1/tasks/smoke-fmnist/risk');
    expect(res.status).toBe(200);
    const r = (await res.json()) as RiskReport & { task: string };
    expect(r.task).toBe('smoke-fmnist');
    expect(r.target).toBe('ascend310');
    expect(r.predictedSqnrDb).toBe(35.717396650597514);
    expect(r.weightOnlySqnrDb).toBe(38.52204909353492);
    expect(r.layers.map((l) => l.sqnrDb).sort((a, b) => a - b)).toEqual([
      38.86763674349383, 38.929990998131785, 49.85036472230483,
    ]);
    expect(r.covered).toBe(2);
  });

  it('compares every target, and takes per-tensor weights', async () => {
    const all = (await (await api('/api/v1/tasks/smoke-fmnist/risk?target=all')).json()) as {
      reports: RiskReport[];
    };
    expect(all.reports.map((r) => r.target)).toContain('ascend310p-w4a8');
    expect(all.reports.find((r) => r.target === 'ascend310p-w4a8')!.predictedSqnrDb).toBe(
      13.390651094592252,
    );
    const perTensor = (await (
      await api('/api/v1/tasks/smoke-fmnist/risk?weights=per-tensor')
    ).json()) as RiskReport;
    expect(perTensor.predictedSqnrDb).toBe(33.88481418212416);
    // stated input statistics cover the first layer too (all three layers)
    const stated = (await (
      await api('/api/v1/tasks/smoke-fmnist/risk?input_stats=0,1,-0.8102,2.0227')
    ).json()) as RiskReport;
    expect(stated.covered).toBe(3);
  });

  it('answers problem+json for an unknown task, target or weights value', async () => {
    for (const [path, status, field] of [
      ['/api/v1/tasks/imagenet/risk', 404, undefined],
      ['/api/v1/tasks/smoke-fmnist/risk?target=tpu', 400, 'target'],
      ['/api/v1/tasks/smoke-fmnist/risk?weights=per-row', 400, 'weights'],
      ['/api/v1/tasks/smoke-fmnist/risk?input_stats=0,1,2', 400, 'input_stats'],
    ] as const) {
      const res = await api(path);
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const body = (await res.json()) as { detail: string; errors?: { path: string }[] };
      expect(body.detail.length).toBeGreaterThan(0);
      if (field) expect(body.errors?.[0]?.path).toBe(field);
    }
  });
});
