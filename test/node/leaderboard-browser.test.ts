/**
 * End to end in a real browser: Debian's chromium (scripts/setup.sh installs it) driven by
 * playwright-core against the local service (`wrangler dev`, local D1/R2 in a fresh --persist-to
 * directory) seeded with the leaderboard fixture (stored reports of real smoke-fmnist runs,
 * test/fixtures/service). Opens the leaderboard, sorts by QQI, filters by target, follows a
 * submission, sees the heatmap and the checklist, copies a badge snippet, loads the badge, and
 * fails on any console error. Screenshots go to test/artifacts/leaderboard/ (gitignored).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredReport } from '../../core/score/submission-report.ts';
import manifest from '../../zoo/smoke-fmnist/task.json';
import reportsJson from '../fixtures/service/reports.json';
import { RUNNING_ID, reportBlob, seedStatements } from '../fixtures/service/seed.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = new URL('../..', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test/artifacts/leaderboard');
const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');
const reports = reportsJson as unknown as StoredReport[];
const env = { ...process.env, CI: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' };
const run = promisify(execFile);

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function wrangler(args: string[]): Promise<void> {
  await run(WRANGLER, args, { cwd: ROOT, env, timeout: 60_000, maxBuffer: 16 << 20 });
}

let dir = '';
let server: ChildProcess | null = null;
let serverLog = '';
let base = '';
let context: BrowserContext | null = null;

/** Waits until GET url answers 200 (or throws with the server's log). */
async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (server?.exitCode !== null) throw new Error(`wrangler dev exited:\n${serverLog}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} did not answer within ${ms} ms:\n${serverLog}`);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run \`npm run setup\` (installs Debian's chromium)`);
  await mkdir(ARTIFACTS, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'cann-quant-e2e-'));
  const persist = join(dir, 'state');
  // Local D1: migrations, then the fixture rows; local R2: the stored reports.
  await wrangler(['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist]);
  const sql = join(dir, 'seed.sql');
  await writeFile(sql, (await seedStatements(reports, manifest)).join('\n'));
  await wrangler(['d1', 'execute', 'DB', '--local', '--persist-to', persist, '--file', sql]);
  for (const r of reports) {
    const { key, body } = await reportBlob(r);
    const file = join(dir, `${r.submission.id}.json`);
    await writeFile(file, body);
    await wrangler(
      ['r2', 'object', 'put', `cann-quant-blobs/${key}`, '--file', file, '--local'].concat([
        '--persist-to',
        persist,
        '--content-type',
        'application/json',
      ]),
    );
  }
  const port = await freePort();
  const inspector = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(
    WRANGLER,
    ['dev', '--local', '--ip', '127.0.0.1', '--port', String(port)]
      .concat(['--inspector-port', String(inspector), '--persist-to', persist])
      .concat(['--show-interactive-dev-session=false', '--log-level', 'warn']),
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  server.stdout?.on('data', (d) => {
    serverLog += d;
  });
  server.stderr?.on('data', (d) => {
    serverLog += d;
  });
  await waitFor(`${base}/badge/${reports[0]!.submission.id}.json`, 120_000);
  context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 900 },
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
}, 240_000);

afterAll(async () => {
  await context?.close();
  if (server?.pid && server.exitCode === null) {
    process.kill(-server.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A page that records console errors and uncaught exceptions. */
async function openPage(errors: string[]): Promise<Page> {
  const page = await context!.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  return page;
}

/** Elements wider than the viewport outside a scroll box (wide tables scroll in their own box). */
function tooWide(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('body *'))
      .filter((e) => !e.closest('.scroll') && e.getBoundingClientRect().right > innerWidth + 1)
      .map((e) => `${location.pathname} ${e.tagName.toLowerCase()}.${e.className}`),
  );
}

/** Submission ids of the leaderboard table, in row order, with their QQI cells. */
async function tableRows(page: Page): Promise<{ id: string; qqi: number }[]> {
  return page.$$eval('table.board tbody tr', (trs) =>
    trs.map((tr) => ({
      id: (tr as HTMLElement).dataset.id ?? '',
      qqi: Number(tr.querySelector('[data-col="qqi"]')?.textContent),
    })),
  );
}

describe('leaderboard in headless Chromium', () => {
  it('sort, filter, follow a submission, heatmap, checklist, copy and load the badge', async () => {
    const errors: string[] = [];
    const page = await openPage(errors);
    const t4 = reports.find((r) => r.report.target === 'nvidia-t4')!;

    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    expect(await page.textContent('h1')).toBe('Leaderboard');
    expect((await tableRows(page)).map((r) => r.id).sort()).toEqual(
      reports.map((r) => r.submission.id).sort(),
    );
    await page.screenshot({ path: join(ARTIFACTS, 'leaderboard.png'), fullPage: true });

    // Sort by loss, then back to QQI through the column headers: the order follows the QQI.
    await page.click('a[data-sort="loss"]');
    await page.waitForURL(/sort=loss/);
    await page.click('a[data-sort="qqi"]');
    await page.waitForURL(/sort=qqi/);
    const byQqi = await tableRows(page);
    expect(byQqi[0]!.id).toBe(t4.submission.id);
    expect(byQqi.map((r) => r.qqi)).toEqual([...byQqi.map((r) => r.qqi)].sort((a, b) => b - a));
    expect(await page.getAttribute('th[aria-sort]', 'aria-sort')).toBe('descending');

    // Filter by target with the form: the URL carries the view.
    await page.selectOption('#f-target', 'nvidia-t4');
    await page.click('form.filters button[type="submit"]');
    await page.waitForURL(/target=nvidia-t4/);
    expect(new URL(page.url()).searchParams.get('sort')).toBe('qqi');
    expect((await tableRows(page)).map((r) => r.id)).toEqual([t4.submission.id]);
    expect(await page.getAttribute('a[href*="format=csv"]', 'href')).toContain('target=nvidia-t4');

    // Follow the submission.
    await page.click(`tr[data-id="${t4.submission.id}"] a[href^="/submissions/"]`);
    await page.waitForURL(new RegExp(`/submissions/${t4.submission.id}$`));
    expect(await page.textContent('h1')).toBe(t4.recipe.name);
    expect(await page.textContent('[data-field="qqi"] strong')).toBe(t4.report.qqi.display);

    // Heatmap: one cell per measured layer, visible; the drill-down opens.
    const heatmap = page.locator('svg.heatmap');
    await heatmap.scrollIntoViewIfNeeded();
    expect(await heatmap.isVisible()).toBe(true);
    expect(await page.locator('svg.heatmap rect.cell').count()).toBe(t4.layerErrors!.layers.length);
    await page.locator('details.layer summary').first().click();
    expect(await page.locator('details.layer').first().getAttribute('open')).not.toBeNull();
    expect(await page.locator('details.layer svg.strip').first().isVisible()).toBe(true);

    // Checklist: every check with its outcome.
    for (const c of t4.report.checks) {
      const row = page.locator(`tr[data-check="${c.id}"]`);
      expect(await row.isVisible()).toBe(true);
      const outcome = c.pass === 'not-run' ? 'not run' : c.pass ? 'pass' : 'fail';
      expect(await row.locator('td').first().textContent()).toContain(outcome);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'submission.png'), fullPage: true });
    await heatmap.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'submission-heatmap.png') });

    // Copy the Markdown badge snippet.
    await page.click('button[data-copy="snippet-md"]');
    await expect.poll(() => page.textContent('#copied-md')).toBe('Copied to the clipboard.');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const svgUrl = `${base}/badge/${t4.submission.id}.svg`;
    expect(copied).toBe(
      `[![cann-quant certification](${svgUrl})](${base}/submissions/${t4.submission.id})`,
    );

    // The badge image on the page loaded, and the badge itself.
    expect(
      await page.$eval('#badge img', (img) => (img as HTMLImageElement).naturalWidth),
    ).toBeGreaterThan(50);
    const badge = await page.goto(svgUrl);
    expect(badge?.status()).toBe(200);
    expect(badge?.headers()['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(await badge?.text()).toContain(`>${t4.report.badge.split(' | ')[1]}</text>`);
    await page.screenshot({ path: join(ARTIFACTS, 'badge.png') });

    // A phone-sized view of the leaderboard and of the standard.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/?task=smoke-fmnist`);
    await page.screenshot({ path: join(ARTIFACTS, 'leaderboard-phone.png'), fullPage: true });
    expect(await tooWide(page)).toEqual([]);
    expect((await page.goto(`${base}/standard`))?.status()).toBe(200);
    await page.screenshot({ path: join(ARTIFACTS, 'standard-phone.png') });
    expect((await page.goto(`${base}/tasks/smoke-fmnist`))?.status()).toBe(200);
    await page.screenshot({ path: join(ARTIFACTS, 'task-phone.png'), fullPage: true });
    expect(await tooWide(page)).toEqual([]);
    await page.goto(`${base}/submissions/${t4.submission.id}`);
    await page.screenshot({ path: join(ARTIFACTS, 'submission-phone.png') });
    expect(await tooWide(page)).toEqual([]);
    await page.close();

    expect(errors).toEqual([]);
  }, 120_000);

  it('an unknown submission is a 404 page; a running one follows its progress live', async () => {
    const notFound = await fetch(`${base}/submissions/sub_nope`);
    expect(notFound.status).toBe(404);
    expect(await notFound.text()).toContain('<h1>Not found</h1>');
    const badge = await fetch(`${base}/badge/sub_nope.svg`);
    expect(badge.status).toBe(404);
    expect(await badge.text()).toContain('>not found</text>');

    // Live progress: the page polls GET /api/v1/submissions/:id. The answers are scripted here
    // (one more shard done, then a new phase, then 'scored') to check that the table follows them
    // and that the page reloads once the status changes.
    const errors: string[] = [];
    const page = await openPage(errors);
    const view = (rangesDone: number, status: string) => ({
      id: RUNNING_ID,
      status,
      runs: [
        {
          id: `${RUNNING_ID}.primary`,
          role: 'primary',
          shards: 2,
          status: 'running',
          error: null,
          phases: [
            { phase: 'sample', done: 2, total: 2 },
            { phase: 'ranges', done: rangesDone, total: 2 },
            ...(rangesDone === 2 ? [{ phase: 'histograms', done: 0, total: 2 }] : []),
          ],
        },
      ],
    });
    let answer = view(2, 'running');
    let polls = 0;
    await page.route(`**/api/v1/submissions/${RUNNING_ID}`, (route) => {
      polls++;
      return route.fulfill({ json: answer });
    });
    await page.goto(`${base}/submissions/${RUNNING_ID}`);
    // The server-rendered table shows what the real API answers for this submission.
    const api = (await (await fetch(`${base}/api/v1/submissions/${RUNNING_ID}`)).json()) as {
      status: string;
      runs: { id: string; phases: { phase: string; done: number; total: number }[] }[];
    };
    expect(api.status).toBe('running');
    expect(api.runs.flatMap((r) => r.phases)).toHaveLength(4);
    for (const r of api.runs)
      for (const ph of r.phases)
        expect(await page.textContent(`tr[data-progress="${r.id}/${ph.phase}"] td.num`)).toBe(
          `${ph.done} / ${ph.total}`,
        );
    const ranges = page.locator(`tr[data-progress="${RUNNING_ID}.primary/ranges"]`);
    expect(await ranges.locator('td.num').textContent()).toBe('1 / 2');
    expect(await ranges.locator('progress').getAttribute('value')).toBe('1');
    await expect
      .poll(() => ranges.locator('td.num').textContent(), { timeout: 10_000 })
      .toBe('2 / 2');
    const histograms = page.locator(`tr[data-progress="${RUNNING_ID}.primary/histograms"] td.num`);
    expect(await histograms.textContent()).toBe('0 / 2');
    expect(await page.textContent('#progress-live')).toContain('status running');
    answer = view(2, 'scored');
    await page.waitForEvent('load', { timeout: 10_000 });
    expect(polls).toBeGreaterThanOrEqual(2);
    await page.unrouteAll();
    await page.close();
    expect(errors).toEqual([]);
  }, 60_000);
});
