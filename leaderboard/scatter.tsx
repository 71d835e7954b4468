/** @jsxImportSource hono/jsx */
/**
 * The QQI-vs-loss scatter of the leaderboard with its Pareto front, drawn as SVG from the rows
 * the leaderboard API returns (`qqi`, `lossPoints`): no other number appears on it.
 */
import type { LeaderboardRow } from '../db/queries.ts';
import { fmtPoints, fmtQqi } from './format.ts';

/** A plotted point. */
export interface ScatterPoint {
  id: string;
  label: string;
  loss: number;
  qqi: number;
}

/**
 * The Pareto front: points no other point beats on both axes (QQI at least as high and loss at
 * most as low, one of them strictly), ordered by increasing loss.
 */
export function paretoFront<T extends { loss: number; qqi: number }>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.loss - b.loss || b.qqi - a.qqi);
  const front: T[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (p.qqi > best) {
      front.push(p);
      best = p.qqi;
    }
  }
  return front;
}

/** Round tick steps (1, 2, 5 × 10^k) covering [lo, hi] with about `n` ticks. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

function domain(values: number[], pad: number): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    lo -= pad;
    hi += pad;
  }
  const m = (hi - lo) * 0.08;
  return [lo - m, hi + m];
}

/** The points a leaderboard can plot (rows with a QQI). */
export function scatterPoints(rows: readonly LeaderboardRow[]): ScatterPoint[] {
  return rows
    .filter((r) => r.qqi !== null)
    .map((r) => ({
      id: r.submissionId,
      label: `${r.recipe} by ${r.submitter} (${r.target})`,
      loss: r.lossPoints,
      qqi: r.qqi as number,
    }));
}

/** The scatter as an SVG element with a caption listing the front. */
export function Scatter({ rows }: { rows: readonly LeaderboardRow[] }) {
  const pts = scatterPoints(rows);
  const missing = rows.length - pts.length;
  if (pts.length === 0)
    return <p>No result with a QQI to plot{missing ? ` (${missing} without a QQI)` : ''}.</p>;
  const front = paretoFront(pts);
  const onFront = new Set(front.map((p) => p.id));
  const W = 640;
  const H = 320;
  const m = { l: 56, r: 16, t: 14, b: 46 };
  const [x0, x1] = domain(
    pts.map((p) => p.loss),
    0.5,
  );
  const [y0, y1] = domain(
    pts.map((p) => p.qqi),
    0.1,
  );
  const sx = (v: number) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (v: number) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const xt = ticks(x0, x1);
  const yt = ticks(y0, y1);
  const path = front.map(
    (p, i) => `${i ? 'L' : 'M'}${sx(p.loss).toFixed(1)},${sy(p.qqi).toFixed(1)}`,
  );
  return (
    <figure class="scatter">
      <div class="scroll">
        <svg
          xmlns="http://www.w3.org/2000/svg"
          viewBox={`0 0 ${W} ${H}`}
          width={W}
          height={H}
          role="img"
          aria-labelledby="scatter-title"
          font-family="system-ui, sans-serif"
          font-size="12"
        >
          <title id="scatter-title">
            QQI against accuracy loss for {pts.length} results; {front.length} on the Pareto front
          </title>
          <rect
            x={m.l}
            y={m.t}
            width={W - m.l - m.r}
            height={H - m.t - m.b}
            fill="#fafafa"
            stroke="#bbb"
          />
          {xt.map((v) => (
            <g>
              <line x1={sx(v)} x2={sx(v)} y1={m.t} y2={H - m.b} stroke="#e3e3e3" />
              <text x={sx(v)} y={H - m.b + 16} text-anchor="middle" fill="#333">
                {fmtPoints(v)}
              </text>
            </g>
          ))}
          {yt.map((v) => (
            <g>
              <line x1={m.l} x2={W - m.r} y1={sy(v)} y2={sy(v)} stroke="#e3e3e3" />
              <text x={m.l - 6} y={sy(v) + 4} text-anchor="end" fill="#333">
                {fmtQqi(v)}
              </text>
            </g>
          ))}
          <text x={(m.l + W - m.r) / 2} y={H - 8} text-anchor="middle" fill="#111">
            accuracy loss (points; lower is better)
          </text>
          <text
            x={14}
            y={(m.t + H - m.b) / 2}
            text-anchor="middle"
            fill="#111"
            transform={`rotate(-90 14 ${(m.t + H - m.b) / 2})`}
          >
            QQI (higher is better)
          </text>
          <path
            class="pareto"
            d={path.join(' ')}
            fill="none"
            stroke="#1a237e"
            stroke-width="2"
            stroke-dasharray="6 4"
          />
          {pts.map((p) => (
            <a href={`/submissions/${encodeURIComponent(p.id)}`}>
              <circle
                class={onFront.has(p.id) ? 'point front' : 'point'}
                data-id={p.id}
                cx={sx(p.loss).toFixed(1)}
                cy={sy(p.qqi).toFixed(1)}
                r={onFront.has(p.id) ? 7 : 5}
                fill={onFront.has(p.id) ? '#1a237e' : '#fff'}
                stroke="#1a237e"
                stroke-width="2"
              >
                <title>
                  {p.label}: QQI {fmtQqi(p.qqi)}, loss {fmtPoints(p.loss)} points
                  {onFront.has(p.id) ? ' (Pareto front)' : ''}
                </title>
              </circle>
            </a>
          ))}
        </svg>
      </div>
      <figcaption>
        Filled points are on the Pareto front (no other result has both a higher QQI and a lower
        loss): {front.map((p) => p.label).join('; ')}.
        {missing ? ` ${missing} result(s) without a QQI are not plotted.` : ''}
      </figcaption>
    </figure>
  );
}
