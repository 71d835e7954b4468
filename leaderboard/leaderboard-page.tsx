/** @jsxImportSource hono/jsx */
/** The leaderboard page: filters and sort kept in the URL, the ranked table, the scatter. */
import {
  LEADERBOARD_SORTS,
  type LeaderboardQuery,
  type LeaderboardRow,
  type LeaderboardSort,
} from '../db/queries.ts';
import { fmtDate, fmtInt, fmtPoints, fmtQqi, fmtRatio } from './format.ts';
import { Scatter } from './scatter.tsx';

/** The leaderboard's URL parameters (the names /api/v1/leaderboard takes), validated: invalid values are dropped. */
export interface BoardParams {
  task?: string;
  target?: string;
  level?: number;
  minQqi?: number;
  sort: LeaderboardSort;
}

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/** Reads the leaderboard parameters from a URL's query string. */
export function parseBoardParams(q: URLSearchParams): BoardParams {
  const out: BoardParams = { sort: 'qqi' };
  const task = q.get('task');
  if (task && ID.test(task)) out.task = task;
  const target = q.get('target');
  if (target && ID.test(target)) out.target = target;
  const level = Number(q.get('level') ?? '');
  if (q.get('level') && Number.isInteger(level) && level >= 0 && level <= 5) out.level = level;
  const minQqi = Number(q.get('min_qqi') ?? '');
  if (q.get('min_qqi') && Number.isFinite(minQqi)) out.minQqi = minQqi;
  const sort = q.get('sort');
  if (sort && (LEADERBOARD_SORTS as readonly string[]).includes(sort))
    out.sort = sort as LeaderboardSort;
  return out;
}

/** The query for db/queries.ts `leaderboard`. */
export function boardQuery(p: BoardParams): LeaderboardQuery {
  return {
    ...(p.task ? { task: p.task } : {}),
    ...(p.target ? { target: p.target } : {}),
    ...(p.level !== undefined ? { level: p.level } : {}),
    ...(p.minQqi !== undefined ? { minQqi: p.minQqi } : {}),
    sort: p.sort,
  };
}

/** The query string of a view (unset filters left out, sort always given, stable order). */
export function boardSearch(p: BoardParams, extra: Record<string, string> = {}): string {
  const s = new URLSearchParams();
  if (p.task) s.set('task', p.task);
  if (p.target) s.set('target', p.target);
  if (p.level !== undefined) s.set('level', String(p.level));
  if (p.minQqi !== undefined) s.set('min_qqi', String(p.minQqi));
  s.set('sort', p.sort);
  for (const [k, v] of Object.entries(extra)) s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
}

const SORT_LABEL: Record<LeaderboardSort, string> = {
  qqi: 'QQI',
  loss: 'Loss (pts)',
  speedup: 'Speed-up',
  energy: 'Energy gain',
  level: 'Level',
  date: 'Date',
};

function SortHeader({ p, sort, num }: { p: BoardParams; sort: LeaderboardSort; num?: boolean }) {
  const active = p.sort === sort;
  return (
    <th
      scope="col"
      class={num ? 'num' : undefined}
      aria-sort={active ? (sort === 'loss' ? 'ascending' : 'descending') : undefined}
    >
      <a
        href={`/${boardSearch({ ...p, sort })}`}
        data-sort={sort}
        aria-current={active ? 'true' : undefined}
      >
        {SORT_LABEL[sort]}
        {active ? (sort === 'loss' ? ' ▲' : ' ▼') : ''}
      </a>
    </th>
  );
}

/** A level chip. */
export function Level({ level }: { level: number }) {
  return <span class={`level l${level}`}>L{level}</span>;
}

/** The leaderboard page body. */
export function LeaderboardPage(props: {
  rows: LeaderboardRow[];
  p: BoardParams;
  tasks: string[];
  targets: { id: string; name: string }[];
}) {
  const { rows, p } = props;
  const api = `/api/v1/leaderboard${boardSearch(p)}`;
  const csv = `/api/v1/leaderboard${boardSearch(p, { format: 'csv' })}`;
  const scope = [p.task ?? 'all tasks', p.target ?? 'all targets'].join(' on ');
  return (
    <>
      <h1>Leaderboard</h1>
      <p class="muted">
        INT8 recipes re-executed by the service and ranked by the Quantization Quality Index (QQI =
        (1 − loss) × speed-up × energy gain, <a href="/standard">the standard</a>).
      </p>
      <form class="filters" method="get" action="/" aria-label="Filter the leaderboard">
        <label>
          Task
          <select name="task" id="f-task">
            <option value="">All tasks</option>
            {props.tasks.map((t) => (
              <option value={t} selected={p.task === t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Target
          <select name="target" id="f-target">
            <option value="">All targets</option>
            {props.targets.map((t) => (
              <option value={t.id} selected={p.target === t.id}>
                {t.name} ({t.id})
              </option>
            ))}
          </select>
        </label>
        <label>
          Minimum level
          <select name="level" id="f-level">
            <option value="">Any</option>
            {[1, 2, 3, 4, 5].map((l) => (
              <option value={String(l)} selected={p.level === l}>
                L{l}
              </option>
            ))}
          </select>
        </label>
        <label>
          Minimum QQI
          <input
            type="number"
            name="min_qqi"
            id="f-minqqi"
            step="any"
            min="0"
            inputmode="decimal"
            value={p.minQqi !== undefined ? String(p.minQqi) : ''}
          />
        </label>
        <label>
          Sort by
          <select name="sort" id="f-sort">
            {LEADERBOARD_SORTS.map((s) => (
              <option value={s} selected={p.sort === s}>
                {SORT_LABEL[s]}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Apply</button>
        <a href="/">Reset</a>
      </form>
      <p class="exports">
        This view as <a href={api}>JSON</a> or <a href={csv}>CSV</a>.
      </p>
      <div class="scroll">
        <table class="board">
          <caption>
            {rows.length} result{rows.length === 1 ? '' : 's'} for {scope}, sorted by{' '}
            {SORT_LABEL[p.sort]}
          </caption>
          <thead>
            <tr>
              <th scope="col" class="num">
                Rank
              </th>
              <th scope="col">Recipe</th>
              <SortHeader p={p} sort="level" />
              <SortHeader p={p} sort="qqi" num />
              <SortHeader p={p} sort="loss" num />
              <SortHeader p={p} sort="speedup" num />
              <SortHeader p={p} sort="energy" num />
              <th scope="col">Submitter</th>
              {p.task ? '' : <th scope="col">Task</th>}
              {p.target ? '' : <th scope="col">Target</th>}
              <th scope="col" class="num">
                Calibration samples
              </th>
              <SortHeader p={p} sort="date" />
              <th scope="col">Review</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr data-id={r.submissionId}>
                <td class="num">{r.rank}</td>
                <td class="recipe">
                  <a href={`/submissions/${encodeURIComponent(r.submissionId)}`}>{r.recipe}</a>
                  {r.importedFrom ? (
                    <span
                      class="tag"
                      data-imported={r.importedFrom}
                      title={`quantized by ${r.importedFrom}, scored with its own scales (no calibration here)`}
                    >
                      {' '}
                      imported · {r.importedFrom}
                    </span>
                  ) : (
                    ''
                  )}
                </td>
                <td>
                  <Level level={r.level} />
                </td>
                <td class="num" data-col="qqi">
                  {fmtQqi(r.qqi)}
                </td>
                <td class="num" data-col="loss">
                  {fmtPoints(r.lossPoints)}
                </td>
                <td class="num">{fmtRatio(r.speedup)}</td>
                <td class="num">{fmtRatio(r.energyGain)}</td>
                <td>{r.submitter}</td>
                {p.task ? (
                  ''
                ) : (
                  <td>
                    <a href={`/tasks/${encodeURIComponent(r.task)}`}>{r.task}</a>
                  </td>
                )}
                {p.target ? '' : <td>{r.target}</td>}
                <td class="num">{fmtInt(r.calibrationSamples)}</td>
                <td>
                  <time datetime={new Date(r.scoredAt).toISOString()}>{fmtDate(r.scoredAt)}</time>
                </td>
                <td>
                  {r.underReview ? (
                    <a
                      class="flag"
                      href={`/submissions/${encodeURIComponent(r.submissionId)}#review`}
                      title={r.reviewReason ?? ''}
                    >
                      under review
                    </a>
                  ) : (
                    ''
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows.length === 0 ? <p>No scored result matches these filters.</p> : ''}
      <h2>QQI against loss</h2>
      <Scatter rows={rows} />
    </>
  );
}
