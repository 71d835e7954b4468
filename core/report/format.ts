/**
 * Text helpers for the reports: escaping and number formatting. Every figure a report shows goes
 * through these, so the same value always prints the same way.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML/SVG element content and quoted attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/**
 * A number with `digits` significant digits (default 3), trailing zeros kept (`69.0`) unless
 * `trim`: plain notation for magnitudes in [1e-3, 1e5), otherwise exponent notation
 * (`1.23e-5`). Non-finite values print as `n/a`; 0 as `0`.
 * @example formatSig(0.0421337) // '0.0421'
 */
export function formatSig(x: number, digits = 3, trim = false): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) {
    const p = x.toPrecision(digits);
    // toPrecision switches to exponent notation once the integer part has more digits.
    if (trim || p.includes('e')) return String(Number(p));
    return p;
  }
  const e = x.toExponential(digits - 1);
  return (trim ? e.replace(/\.?0+e/, 'e') : e).replace('e+', 'e');
}

/**
 * A relative error as a percentage with 3 significant digits; `null` (undefined) as `n/a`.
 * `trim` drops trailing zeros (for settings such as the threshold: `5%`, not `5.00%`).
 */
export function formatPercent(rel: number | null, trim = false): string {
  return rel === null ? 'n/a' : `${formatSig(rel * 100, 3, trim)}%`;
}

/**
 * SQNR in dB with 3 significant digits. The report data use `null` for a non-finite SQNR; the
 * relative error tells which: 0 means no error at all (∞ dB), `null` an all-zero reference.
 */
export function formatDb(sqnrDb: number | null, relativeError: number | null): string {
  if (sqnrDb !== null) return `${formatSig(sqnrDb)} dB`;
  return relativeError === 0 ? '∞ dB' : 'n/a';
}

/** A task metric (accuracy, mAP, F1, loss in points): up to 6 significant digits, trimmed. */
export function formatMetric(x: number): string {
  return formatSig(x, 6, true);
}
