/** @jsxImportSource hono/jsx */
/**
 * The public pages and badges of the service, mounted by functions/index.ts after the API:
 *   /                 leaderboard (filters and sort in the URL), QQI-vs-loss scatter
 *   /tasks, /tasks/:id  benchmark tasks
 *   /challenges       the community challenges (W4A8, cross-framework, dynamic)
 *   /submissions/:id  a submission's report (or its live progress)
 *   /standard         docs/STANDARD.md
 *   /badge/:id.svg, /badge/:id.json  certification badge (SVG; shields.io endpoint JSON)
 * Every figure shown comes from db/queries.ts (what the JSON API returns) or the stored report.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { TARGETS, type TargetId } from '../core/formats/targets.ts';
import {
  getReport,
  getSubmission,
  getTaskRow,
  leaderboard,
  listTasks,
  openDb,
  submissionRecipe,
} from '../db/queries.ts';
import standardMd from '../docs/STANDARD.md';
import type { Env } from '../functions/env.ts';
import { taskRisk } from '../functions/service/risk.ts';
import {
  type BadgeSpec,
  badgeEndpoint,
  badgeSvg,
  NOT_FOUND_BADGE,
  resultBadge,
  statusBadge,
} from './badge.ts';
import { CHALLENGES, ChallengesPage } from './challenges-page.tsx';
import { COPY_SCRIPT, PROGRESS_SCRIPT } from './client.ts';
import { documentHtml, Layout } from './layout.tsx';
import { boardQuery, LeaderboardPage, parseBoardParams } from './leaderboard-page.tsx';
import { renderMarkdown } from './markdown.ts';
import { NotFoundPage, StandardPage, TaskPage, TasksPage } from './pages.tsx';
import { SubmissionPage } from './submission-page.tsx';

type C = Context<{ Bindings: Env }>;

/** Cache lifetimes (seconds). Scored results do not change; pending ones do. */
export const CACHE = { scored: 300, pending: 15, notFound: 60, pages: 30 } as const;

function page(c: C, title: string, body: unknown, opts: { status?: 404; script?: string } = {}) {
  const html = documentHtml(
    <Layout title={title} {...(opts.script ? { script: opts.script } : {})}>
      {body as never}
    </Layout>,
  );
  return c.html(html, opts.status ?? 200);
}

function notFound(c: C, what: string) {
  return page(c, 'Not found', <NotFoundPage what={what} />, { status: 404 });
}

let standardHtml: string | null = null;

export const pages = new Hono<{ Bindings: Env }>();

pages.get('/', async (c) => {
  const db = openDb(c.env.DB);
  const p = parseBoardParams(new URL(c.req.url).searchParams);
  const [rows, tasks] = await Promise.all([leaderboard(db, boardQuery(p)), listTasks(db)]);
  const targets = Object.values(TARGETS).map((t) => ({ id: t.id, name: t.name }));
  return page(
    c,
    'Leaderboard',
    <LeaderboardPage rows={rows} p={p} tasks={tasks.map((t) => t.id)} targets={targets} />,
  );
});

pages.get('/challenges', async (c) => {
  const db = openDb(c.env.DB);
  const open = CHALLENGES.filter((x) => x.board);
  const boards = await Promise.all(
    open.map((x) =>
      leaderboard(db, {
        sort: 'qqi',
        limit: 20,
        ...(x.board!.source ? { source: x.board!.source } : {}),
        ...(x.board!.targets ? { targets: x.board!.targets } : {}),
      }),
    ),
  );
  const standings = Object.fromEntries(open.map((x, i) => [x.id, boards[i]!]));
  return page(c, 'Challenges', <ChallengesPage standings={standings} />);
});

pages.get('/tasks', async (c) => {
  const tasks = await listTasks(openDb(c.env.DB));
  return page(c, 'Tasks', <TasksPage tasks={tasks} />);
});

pages.get('/tasks/:id', async (c) => {
  const db = openDb(c.env.DB);
  const id = c.req.param('id');
  const task = await getTaskRow(db, id);
  if (!task) return notFound(c, `There is no task "${id}".`);
  const [top, risk] = await Promise.all([
    leaderboard(db, { task: id, sort: 'qqi', limit: 10 }),
    // the page stands without it: a model that is not stored, or does not decode, omits the table
    taskRisk(c.env, id, Object.keys(TARGETS) as TargetId[]).catch(() => undefined),
  ]);
  return page(c, task.title, <TaskPage task={task} top={top} risk={risk ?? undefined} />);
});

pages.get('/submissions/:id', async (c) => {
  const db = openDb(c.env.DB);
  const id = c.req.param('id');
  const view = await getSubmission(db, id);
  if (!view) return notFound(c, `There is no submission "${id}".`);
  const [stored, recipe] = await Promise.all([
    view.result ? getReport(db, c.env.BLOBS, id) : Promise.resolve(null),
    submissionRecipe(db, id),
  ]);
  const running = view.status === 'queued' || view.status === 'running';
  const res = page(
    c,
    `${view.recipe} (${view.task} on ${view.target})`,
    <SubmissionPage
      view={view}
      stored={stored}
      recipe={recipe}
      origin={new URL(c.req.url).origin}
    />,
    { script: running ? `${COPY_SCRIPT}\n${PROGRESS_SCRIPT}` : COPY_SCRIPT },
  );
  return res;
});

pages.get('/standard', (c) => {
  standardHtml ??= renderMarkdown(standardMd);
  return page(c, 'The standard', <StandardPage html={standardHtml} />);
});

/** The badge of a submission id: what it shows and how long it may be cached. */
async function badgeFor(
  c: C,
  id: string,
): Promise<{ badge: BadgeSpec; status: 200 | 404; maxAge: number }> {
  const view = await getSubmission(openDb(c.env.DB), id);
  if (!view) return { badge: NOT_FOUND_BADGE, status: 404, maxAge: CACHE.notFound };
  if (view.result)
    return {
      badge: resultBadge(view.result.level, view.result.qqi),
      status: 200,
      maxAge: CACHE.scored,
    };
  return {
    badge: statusBadge(view.status),
    status: 200,
    maxAge: view.status === 'failed' ? CACHE.scored : CACHE.pending,
  };
}

pages.get('/badge/:file{[^/]+\\.(?:svg|json)}', async (c) => {
  const file = c.req.param('file');
  const json = file.endsWith('.json');
  const id = file.slice(0, file.lastIndexOf('.'));
  const { badge, status, maxAge } = await badgeFor(c, id);
  c.header('Cache-Control', `public, max-age=${maxAge}`);
  c.header('Access-Control-Allow-Origin', '*');
  if (json) return c.json(badgeEndpoint(badge, maxAge), status);
  return c.body(badgeSvg(badge), status, { 'Content-Type': 'image/svg+xml; charset=utf-8' });
});

/** The site icon (browsers ask for it even on the badge SVG); a level-coloured square. */
const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1a237e"/><text x="8" y="12" font-size="10" text-anchor="middle" fill="#fff" font-family="sans-serif">Q</text></svg>`;

pages.get('/favicon.ico', (c) =>
  c.body(ICON, 200, {
    'Content-Type': 'image/svg+xml',
    'Cache-Control': 'public, max-age=86400',
  }),
);
