/**
 * The leaderboard's fixture (test/fixtures/service/reports.json) is the output of real runs: this
 * regenerates it (make-report.ts: smoke-fmnist on three recipes/targets, 2 and 3 shards each,
 * buildSubmissionReport) and checks the committed file is byte for byte what the code produces
 * today, so that the page and badge tests never run on stale numbers. When scoring changes on
 * purpose, regenerate with `npx tsx test/fixtures/service/make-report.ts` and commit the file.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FIXTURE_FILE, fixtureText, makeReports } from '../fixtures/service/make-report.ts';

describe('leaderboard fixture', () => {
  it('is what the pipeline and the scorer produce today', async () => {
    const reports = await makeReports();
    expect(reports.map((r) => [r.report.target, r.report.recipe, r.report.level])).toEqual([
      ['ascend310', 'industrial-vision:smoke-fmnist:ascend310', reports[0]!.report.level],
      ['ascend310', 'naive-baseline:smoke-fmnist:ascend310', reports[1]!.report.level],
      ['nvidia-t4', 'industrial-vision:smoke-fmnist:nvidia-t4', reports[2]!.report.level],
    ]);
    const committed = await readFile(FIXTURE_FILE, 'utf8');
    const fresh = fixtureText(reports);
    if (fresh !== committed) {
      // Name the first differing report and field before the byte comparison fails.
      const old = JSON.parse(committed) as typeof reports;
      for (const [i, r] of reports.entries())
        expect(JSON.parse(JSON.stringify(r)), `report ${i} (${r.submission.id})`).toEqual(old[i]);
    }
    expect(fresh).toBe(committed);
  }, 300_000);
});
