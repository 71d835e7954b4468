/**
 * The pages and badges over the fixture rows (test/fixtures/service: stored reports of real
 * smoke-fmnist runs, loaded as the service's finalize writes them). Storage is shared with other
 * test files (isolate: false), so assertions look at the fixture's own rows only.
 */
import { env, exports } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sig3 } from '../core/score/qqi.ts';
import type { StoredReport } from '../core/score/submission-report.ts';
import reportsJson from '../test/fixtures/service/reports.json';
import {
  FAILED_ERROR,
  FAILED_ID,
  RUNNING_ID,
  reportBlob,
  seedStatements,
  unseedStatements,
} from '../test/fixtures/service/seed.ts';
import manifest from '../zoo/smoke-fmnist/task.json';
import { GREY, LEVEL_COLORS } from './badge.ts';
import { pages } from './routes.tsx';

const reports = reportsJson as unknown as StoredReport[];
const byTarget = (t: string, template: string) =>
  reports.find((r) => r.report.target === t && r.recipe.name.startsWith(template))!;
const vision310 = byTarget('ascend310', 'industrial-vision');
const naive310 = byTarget('ascend310', 'naive-baseline');
const visionT4 = byTarget('nvidia-t4', 'industrial-vision');

const get = (path: string) => pages.request(`http://local.test${path}`, {}, env);
const html = async (path: string, status = 200) => {
  const res = await get(path);
  expect(res.status, path).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/text\/html/);
  return res.text();
};
/** The `<tr data-id=...>` of a submission in a leaderboard page, or null. */
const rowOf = (page: string, id: string) =>
  page.match(new RegExp(`<tr data-id="${id}">[\\s\\S]*?</tr>`))?.[0] ?? null;
const esc = (t: string) =>
  t
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
const cell = (row: string, col: string) =>
  row.match(new RegExp(`data-col="${col}">([^<]*)<`))?.[1] ?? null;

/** Whether the task row was there before (another test file's); if not, it is removed after. */
let hadTask = false;
/** The task's model blob key when this file stored the model there (removed after). */
let storedModel: string | undefined;

beforeAll(async () => {
  hadTask =
    (await env.DB.prepare('SELECT 1 FROM tasks WHERE id = ?').bind(manifest.id).first()) !== null;
  const statements = await seedStatements(reports, manifest);
  await env.DB.batch(statements.map((s) => env.DB.prepare(s)));
  for (const r of reports) {
    const { key, body } = await reportBlob(r);
    await env.BLOBS.put(key, body);
  }
  // the task page's risk table reads the model: the real smoke-fmnist model from the seed server
  const row = await env.DB.prepare('SELECT model_key FROM tasks WHERE id = ?')
    .bind(manifest.id)
    .first<{ model_key: string }>();
  if (row && (await env.BLOBS.head(row.model_key)) === null) {
    const res = await fetch(`${env.SEED_URL}/tasks/${manifest.id}`);
    const { registration } = (await res.json()) as { registration: { modelKey: string } };
    const model = await fetch(`${env.SEED_URL}/${registration.modelKey}`);
    await env.BLOBS.put(row.model_key, await model.arrayBuffer());
    storedModel = row.model_key;
  }
}, 300_000);

afterAll(async () => {
  await env.DB.batch(unseedStatements(reports).map((s) => env.DB.prepare(s)));
  for (const r of reports) await env.BLOBS.delete((await reportBlob(r)).key);
  if (!hadTask) await env.DB.prepare('DELETE FROM tasks WHERE id = ?').bind(manifest.id).run();
  if (storedModel) await env.BLOBS.delete(storedModel);
});

describe('fixture', () => {
  it('holds three real runs with distinct levels and QQIs', () => {
    expect(reports.map((r) => r.report.level)).toEqual([3, 1, 3]);
    expect(visionT4.report.qqi.display).toBe('1.37');
    expect(vision310.report.metric.fp32).toBe(0.885);
  });
});

describe('leaderboard page', () => {
  it('ranks by QQI by default, with every column from the data', async () => {
    const page = await html('/');
    const ids = [visionT4, naive310, vision310].map((r) => r.submission.id);
    const pos = ids.map((id) => page.indexOf(`data-id="${id}"`));
    expect(pos.every((p) => p > 0)).toBe(true);
    // QQI desc; the two 1.11 results tie and are ordered by loss (naive's -0.2 before 0.2).
    expect([...pos].sort((a, b) => a - b)).toEqual(pos);
    for (const r of reports) {
      const row = rowOf(page, r.submission.id)!;
      expect(cell(row, 'qqi')).toBe(sig3(r.report.qqi.value!));
      expect(cell(row, 'loss')).toBe(r.report.metric.lossPoints.toFixed(2));
      expect(row).toContain(`>L${r.report.level}<`);
      expect(row).toContain(r.recipe.name);
      expect(row).toContain(r.submission.submitter);
      expect(row).toContain(`×${sig3(r.report.qqi.speedup!)}`);
      expect(row).toContain(`×${sig3(r.report.qqi.energyGain!)}`);
      expect(row).toContain('>50<'); // calibration samples
      expect(row.includes('under review')).toBe(r.reviewReason !== null);
      if (r.reviewReason) expect(row).toContain(`title="${esc(r.reviewReason)}"`);
    }
    expect(page).toContain(
      '<th scope="col" class="num" aria-sort="descending"><a href="/?sort=qqi"',
    );
    expect(page).toContain('href="/api/v1/leaderboard?sort=qqi&amp;format=csv"');
  });

  it('keeps filters and sort in the URL (form state, sort links, exports)', async () => {
    const page = await html('/?target=nvidia-t4&sort=loss');
    expect(rowOf(page, visionT4.submission.id)).not.toBeNull();
    expect(rowOf(page, vision310.submission.id)).toBeNull();
    expect(rowOf(page, naive310.submission.id)).toBeNull();
    expect(page).toMatch(/<option value="nvidia-t4" selected="">/);
    expect(page).toMatch(/<option value="loss" selected="">/);
    expect(page).toContain('aria-sort="ascending"><a href="/?target=nvidia-t4&amp;sort=loss"');
    expect(page).toContain('href="/?target=nvidia-t4&amp;sort=qqi"');
    expect(page).toContain('href="/?target=nvidia-t4&amp;sort=speedup"');
    expect(page).toContain('href="/api/v1/leaderboard?target=nvidia-t4&amp;sort=loss"');
    expect(page).toContain(
      'href="/api/v1/leaderboard?target=nvidia-t4&amp;sort=loss&amp;format=csv"',
    );
  });

  it('sorts by loss, filters by level and minimum QQI', async () => {
    const byLoss = await html('/?task=smoke-fmnist&sort=loss');
    const pos = [naive310, visionT4, vision310].map((r) =>
      byLoss.indexOf(`data-id="${r.submission.id}"`),
    );
    expect(pos.every((p) => p > 0)).toBe(true);
    expect([...pos].sort((a, b) => a - b)).toEqual(pos);
    const l2 = await html('/?level=2');
    expect(rowOf(l2, visionT4.submission.id)).not.toBeNull();
    expect(rowOf(l2, vision310.submission.id)).not.toBeNull();
    expect(rowOf(l2, naive310.submission.id)).toBeNull();
    const q = await html('/?min_qqi=1.2');
    expect(rowOf(q, visionT4.submission.id)).not.toBeNull();
    expect(rowOf(q, naive310.submission.id)).toBeNull();
    expect(q).toContain('value="1.2"');
    // Invalid parameters are dropped, not errors.
    const bad = await html('/?sort=nope&level=9&min_qqi=x');
    expect(bad).toContain('aria-sort="descending"><a href="/?sort=qqi"');
  });

  it('draws the QQI-vs-loss scatter with the Pareto front from the same rows', async () => {
    const page = await html('/?task=smoke-fmnist&target=ascend310');
    const svg = page.slice(page.indexOf('<figure class="scatter">'));
    // Among the two ascend310 results (same QQI 1.11), naive has the lower loss: it alone is on the front.
    expect(svg).toMatch(new RegExp(`class="point front" data-id="${naive310.submission.id}"`));
    expect(svg).toMatch(new RegExp(`class="point" data-id="${vision310.submission.id}"`));
    expect(svg).toContain(
      `QQI 1.11, loss ${naive310.report.metric.lossPoints.toFixed(2)} points (Pareto front)`,
    );
  });
});

describe('submission page', () => {
  it('shows summary, metrics, checklist, heatmap, tiers, recipe and badge snippets', async () => {
    const r = visionT4;
    const id = r.submission.id;
    const page = await html(`/submissions/${id}`);
    expect(page).toContain(`<h1>${r.recipe.name}</h1>`);
    expect(page).toContain(esc(r.report.qqi.text));
    expect(page).toContain(
      `${r.report.metric.fp32.toFixed(4)} → ${r.report.metric.int8.toFixed(4)}`,
    );
    for (const c of r.report.checks) {
      const outcome = c.pass === 'not-run' ? 'not-run' : c.pass ? 'pass' : 'fail';
      expect(page).toContain(`<tr data-check="${c.id}" data-outcome="${outcome}">`);
    }
    expect(page).toContain(r.report.checks.find((c) => c.id === 'L1.runs')!.evidence);
    // Heatmap (core/report/heatmap.ts) with one row per measured layer, legend, drill-down.
    expect(page).toContain('<svg xmlns="http://www.w3.org/2000/svg" class="heatmap"');
    expect(page.match(/<rect class="cell/g)).toHaveLength(r.layerErrors!.layers.length);
    expect(page).toContain('class="legend"');
    expect(page.match(/<details class="layer/g)).toHaveLength(r.layerErrors!.layers.length);
    for (const l of r.report.layers) {
      expect(page).toContain(`<tr data-layer="${l.name}">`);
      expect(page).toContain(
        `<td>${l.tier}</td><td>${l.percentile === null ? l.method : `${l.method} ${l.percentile}`}</td>`,
      );
    }
    // No cross-hardware table in this report: the modelled roofline rows instead.
    expect(page).toContain(`Performance on ${r.report.target}`);
    expect(
      page.match(
        /<code>\/[^<]*<\/code><\/th><td>(Conv|Gemm|Relu|MaxPool|Flatten|GlobalAveragePool|[A-Za-z]+)<\/td>/g,
      )?.length,
    ).toBeGreaterThanOrEqual(r.report.perf.rows.length);
    expect(page).toContain('&quot;sampler&quot;: &quot;coverage&quot;');
    expect(page).toContain(
      `[![cann-quant certification](http://local.test/badge/${id}.svg)](http://local.test/submissions/${id})`,
    );
    expect(page).toContain('data-copy="snippet-md"');
    expect(page).toContain(`href="/api/v1/submissions/${id}/report"`);
    expect(page).not.toContain('data-poll');
  });

  it('flags a result under review with its reason, as the results row says', async () => {
    // None of the fixture's real runs is flagged (core/score/submission-report.ts: INT8 above
    // FP32 by > 0.5 points, or a failed L1 check). The flag is what the row says, so the test
    // sets it on one row, as a reviewer would, and restores it afterwards.
    const id = naive310.submission.id;
    expect(naive310.reviewReason).toBeNull();
    const clean = await html(`/submissions/${id}`);
    expect(clean).not.toContain('under review');
    const reason = 'flagged by a reviewer for this test';
    const set = env.DB.prepare(
      'UPDATE results SET under_review = ?, review_reason = ? WHERE submission_id = ?',
    );
    await set.bind(1, reason, id).run();
    try {
      const page = await html(`/submissions/${id}`);
      expect(page).toContain(`<span class="flag">under review</span> ${reason}`);
      const row = rowOf(await html('/?task=smoke-fmnist'), id)!;
      expect(row).toContain(`title="${reason}"`);
      expect(row).toContain('under review');
    } finally {
      await set.bind(0, null, id).run();
    }
  });

  it("lists the recipe's warnings when the report has any", async () => {
    // The fixture's runs had no warnings to give; the test stores one report
    // with a warning under its own key, as finalize would have, and restores it afterwards.
    const id = naive310.submission.id;
    expect(await html(`/submissions/${id}`)).not.toContain('Recipe warnings');
    const { key, body } = await reportBlob(naive310);
    const warning =
      "sensitivity.critical '/classifier/Gem' matches no quantizable layer (layers: /features/features.0/Conv)";
    await env.BLOBS.put(
      key,
      JSON.stringify({ ...naive310, report: { ...naive310.report, warnings: [warning] } }),
    );
    try {
      const page = await html(`/submissions/${id}`);
      expect(page).toContain('<h3>Recipe warnings</h3>');
      expect(page).toContain(`<ul class="warnings"><li>${esc(warning)}</li></ul>`);
    } finally {
      await env.BLOBS.put(key, body);
    }
  });

  it('shows live progress of a running submission, polling the API', async () => {
    const page = await html(`/submissions/${RUNNING_ID}`);
    expect(page).toContain(`data-poll="/api/v1/submissions/${RUNNING_ID}"`);
    expect(page).toContain(`data-progress="${RUNNING_ID}.primary/ranges"`);
    expect(page).toMatch(
      /<td class="num">1<!-- -->? \/ <!-- -->?2<\/td>|<td class="num">1 \/ 2<\/td>/,
    );
    expect(page).toContain('fetch(url');
    expect(page).not.toContain('id="badge"');
  });

  it('shows why a failed submission failed, with a red "failed" badge', async () => {
    const page = await html(`/submissions/${FAILED_ID}`);
    expect(page).toContain(
      `<p class="note" role="alert">This submission failed: ${esc(FAILED_ERROR)}</p>`,
    );
    expect(page).not.toContain('data-poll');
    const json = await get(`/badge/${FAILED_ID}.json`);
    expect(json.status).toBe(200);
    expect(await json.json()).toMatchObject({ message: 'failed', color: LEVEL_COLORS[0] });
  });

  it('answers an unknown submission with a 404 page', async () => {
    const page = await html('/submissions/sub_does_not_exist', 404);
    expect(page).toContain('<h1>Not found</h1>');
    expect(page).toContain('sub_does_not_exist');
  });
});

describe('badges', () => {
  it('SVG and shields JSON show the level and QQI of the data, coloured by level', async () => {
    for (const r of reports) {
      const id = r.submission.id;
      const [label, message] = r.report.badge.split(' | ');
      const svg = await get(`/badge/${id}.svg`);
      expect(svg.status).toBe(200);
      expect(svg.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
      expect(svg.headers.get('cache-control')).toBe('public, max-age=300');
      const text = await svg.text();
      expect(text).toMatch(/^<svg/);
      expect(text).toContain(`>${message}</text>`);
      expect(text).toContain(`>${label}</text>`);
      expect(text).toContain(`fill="#${LEVEL_COLORS[r.report.level]}"`);
      const json = await get(`/badge/${id}.json`);
      expect(json.status).toBe(200);
      expect(json.headers.get('cache-control')).toBe('public, max-age=300');
      expect(await json.json()).toEqual({
        schemaVersion: 1,
        label,
        message: `L${r.report.level} · QQI ${r.report.qqi.display}`,
        color: LEVEL_COLORS[r.report.level],
        cacheSeconds: 300,
      });
    }
  });

  it('an unknown id gives a grey "not found" badge with 404', async () => {
    const svg = await get('/badge/sub_nope.svg');
    expect(svg.status).toBe(404);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    const text = await svg.text();
    expect(text).toContain('>not found</text>');
    expect(text).toContain(`fill="#${GREY}"`);
    const json = await get('/badge/sub_nope.json');
    expect(json.status).toBe(404);
    expect(await json.json()).toMatchObject({
      schemaVersion: 1,
      message: 'not found',
      color: GREY,
    });
  });

  it('a running submission gives a grey "running" badge, cached briefly', async () => {
    const json = await get(`/badge/${RUNNING_ID}.json`);
    expect(json.status).toBe(200);
    expect(json.headers.get('cache-control')).toBe('public, max-age=15');
    expect(await json.json()).toMatchObject({ message: 'running', color: GREY });
  });
});

describe('task pages and the standard', () => {
  it('lists tasks and shows a task with its reference and calibration rules', async () => {
    expect(await html('/tasks')).toContain('href="/tasks/smoke-fmnist"');
    const page = await html('/tasks/smoke-fmnist');
    expect(page).toContain(manifest.title);
    expect(page).toContain('<th scope="row">FP32 top1</th><td>0.8850</td>');
    expect(page).toContain(manifest.splits.calibration.source);
    expect(page).toContain(visionT4.submission.id);
    await html('/tasks/no-such-task', 404);
  });

  it("shows the risk predictor's table per target (core/risk on the stored model)", async () => {
    const page = await html('/tasks/smoke-fmnist');
    expect(page).toContain('INT8 risk by target, from the model alone');
    const row = (t: string) =>
      page.match(new RegExp(`<tr data-target="${t}">[\\s\\S]*?</tr>`))?.[0] ?? '';
    // 35.717... dB and 13.39... dB: the same doubles as core/risk/risk.test.ts
    expect(row('ascend310')).toContain('<td class="num">35.7</td>');
    expect(row('ascend310')).toContain('<td>low</td>');
    expect(row('ascend310p-w4a8')).toContain('<td class="num">13.4</td>');
    expect(row('ascend310p-w4a8')).toContain('<td>high</td>');
    expect(page).toContain('href="/api/v1/tasks/smoke-fmnist/risk?target=all"');
  });

  it('renders docs/STANDARD.md with linkable headings', async () => {
    const page = await html('/standard');
    expect(page).toContain('<h1 id="the-cann-quant-standard">The cann-quant standard</h1>');
    expect(page).toContain('id="1-quantization-quality-index"');
    expect(page).toContain('<table>');
  });
});

describe('through the Worker entry', () => {
  it('serves the leaderboard at / next to the API', async () => {
    const res = await exports.default.fetch('http://local.test/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<h1>Leaderboard</h1>');
  });
});
