/**
 * Certification badges: the SVG (badgen, pure string code that runs in workerd) and the
 * shields.io endpoint JSON, from one description so both say the same thing. The text is
 * core/score/checks.ts `badgeText` (label `quantization`, message `L<level> · QQI <qqi>`).
 */
import { badgen } from 'badgen';
import { badgeText } from '../core/score/checks.ts';
import { fmtQqi } from './format.ts';

/** Colour per level earned (hex without '#': both badgen and shields accept it). */
export const LEVEL_COLORS: readonly string[] = [
  'e05d44', // L0: nothing earned
  'fe7d37', // L1
  'dfb317', // L2
  'a4a61d', // L3
  '97ca00', // L4
  '44cc11', // L5
];

/** Grey of the "not found" and "pending" badges. */
export const GREY = '9f9f9f';

/** What a badge shows. */
export interface BadgeSpec {
  label: string;
  message: string;
  color: string;
}

/** The badge of a scored result. */
export function resultBadge(level: number, qqi: number | null): BadgeSpec {
  const text = badgeText(Math.max(0, Math.min(5, level)) as 0 | 1, fmtQqi(qqi));
  const [label, message] = text.split(' | ') as [string, string];
  return { label, message, color: LEVEL_COLORS[Math.max(0, Math.min(5, level))]! };
}

/** The badge of a submission that is not scored (queued, running or failed). */
export function statusBadge(status: string): BadgeSpec {
  return { label: 'quantization', message: status, color: status === 'failed' ? 'e05d44' : GREY };
}

/** The badge of an unknown id. */
export const NOT_FOUND_BADGE: BadgeSpec = {
  label: 'quantization',
  message: 'not found',
  color: GREY,
};

/** The badge as SVG. */
export function badgeSvg(b: BadgeSpec): string {
  return badgen({ label: b.label, status: b.message, color: b.color as 'grey' });
}

/** The badge in the shields.io endpoint schema (https://shields.io/badges/endpoint-badge). */
export function badgeEndpoint(b: BadgeSpec, cacheSeconds: number) {
  return {
    schemaVersion: 1 as const,
    label: b.label,
    message: b.message,
    color: b.color,
    cacheSeconds: Math.max(300, cacheSeconds),
  };
}
