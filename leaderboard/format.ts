/**
 * How the pages print the figures the API returns. Nothing here computes a figure: QQI goes
 * through core/score/qqi.ts `sig3` (the one formatter of QQI everywhere), the rest is rounding for
 * display.
 */
import { sig3 } from '../core/score/qqi.ts';

/** QQI as the standard prints it (3 significant digits), `n/a` when there is none. */
export const fmtQqi = (q: number | null): string => (q === null ? 'n/a' : sig3(q));

/** A metric value (0..1) with 4 decimals. */
export const fmtMetric = (x: number): string => x.toFixed(4);

/** Loss in points with 2 decimals; a negative loss is a gain. */
export const fmtPoints = (x: number | null): string =>
  x === null ? 'n/a' : `${x === 0 ? '0.00' : x.toFixed(2)}`;

/** A ratio (speed-up, energy gain): `×1.06`, or `n/a`. */
export const fmtRatio = (x: number | null): string => (x === null ? 'n/a' : `×${sig3(x)}`);

/** A date (epoch ms) as YYYY-MM-DD (UTC). */
export const fmtDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** A timestamp (epoch ms) as YYYY-MM-DD HH:MM UTC. */
export const fmtTime = (ms: number): string =>
  `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** Seconds with an SI prefix (roofline latencies are microseconds). */
export function fmtSeconds(s: number | null): string {
  if (s === null) return 'n/a';
  if (s === 0) return '0 s';
  const a = Math.abs(s);
  if (a >= 1) return `${sig3(s)} s`;
  if (a >= 1e-3) return `${sig3(s * 1e3)} ms`;
  if (a >= 1e-6) return `${sig3(s * 1e6)} µs`;
  return `${sig3(s * 1e9)} ns`;
}

/** An integer with thousands separators. */
export const fmtInt = (n: number): string => n.toLocaleString('en-US');

/** A check value (number, string, boolean or null) as text. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : sig3(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
