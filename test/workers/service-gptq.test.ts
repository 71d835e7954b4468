/**
 * A recipe with GPTQ weight rounding (format.weightRounding 'gptq') on the service: the queue
 * runs its rounding phase in workerd and gets the integers, metric and level `cann-quant score`
 * gets in Node (the parameter digest covers the integer weights), and the submission page shows
 * each layer's rounding.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recipeFromTemplate } from '../../core/recipe/templates.ts';
import {
  api,
  localScore,
  makeToken,
  offLeaderboardAfterAll,
  seedTask,
  submitScored,
} from './service-support.ts';

const base = recipeFromTemplate('industrial-vision', 'smoke-fmnist', 'ascend310');
const recipe = {
  ...base,
  name: 'gptq-smoke',
  format: { ...base.format, weightRounding: 'gptq' as const },
};
let token: string;

beforeAll(async () => {
  const admin = (await makeToken('seeder-gptq', 'admin')).token;
  await seedTask('smoke-fmnist', admin);
  token = (await makeToken('gabi')).token;
}, 300_000);

const offLeaderboard = offLeaderboardAfterAll();

describe('GPTQ weight rounding on the service', () => {
  it('is scored on the queue with the integers cann-quant score chooses, and shown per layer', async () => {
    const { id, stored } = await submitScored(recipe, token, offLeaderboard);
    const report = stored.report;
    expect(report.layers).toHaveLength(3);
    for (const l of report.layers) {
      expect(l.rounding?.method).toBe('gptq');
      expect(l.rounding!.gptqDb!).toBeGreaterThan(l.rounding!.nearestDb!);
    }
    const local = await localScore(recipe);
    expect(report.paramsDigest).toBe(local.paramsDigest);
    expect(report.metric.all.int8).toEqual(local.int8);
    // GPTQ's top-1 on the 1,000 evaluation images (test/node/pipeline.test.ts; nearest: 0.884)
    expect(report.metric.int8).toBe(0.885);
    expect(report.level).toBe(local.level);
    const page = await (await api(`/submissions/${id}`)).text();
    const row = page.match(/<tr data-layer="\/features\/features.4\/Conv">[\s\S]*?<\/tr>/)?.[0];
    expect(row).toMatch(
      /GPTQ rounding: the weights&#39; output SQNR \d+\.\d -&gt; \d+\.\d dB on the calibration inputs, 8 channels changed/,
    );
  }, 600_000);
});
