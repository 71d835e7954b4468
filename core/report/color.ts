/**
 * Colour scale of the error heatmap: relative error on a log10 scale, mapped onto a sequential
 * light-to-dark palette (ColorBrewer YlOrRd, readable in greyscale and by most colour-blind
 * readers since it varies in lightness). Values outside the domain are clamped; 0 takes the
 * lightest colour; an undefined error (null) is grey.
 */

/** Log-scale domain of the colour map. */
export interface ErrorScale {
  /** Smallest relative error with its own colour (default 1e-4 = 0.01%). */
  min: number;
  /** Largest (default 1 = 100%). */
  max: number;
}

export const DEFAULT_ERROR_SCALE: ErrorScale = { min: 1e-4, max: 1 };

/** Fill of cells whose relative error is undefined (zero reference, nonzero error). */
export const UNDEFINED_COLOR = '#9e9e9e';

const STOPS: readonly (readonly [number, number, number])[] = [
  [0xff, 0xff, 0xcc],
  [0xff, 0xed, 0xa0],
  [0xfe, 0xd9, 0x76],
  [0xfe, 0xb2, 0x4c],
  [0xfd, 0x8d, 0x3c],
  [0xfc, 0x4e, 0x2a],
  [0xe3, 0x1a, 0x1c],
  [0xbd, 0x00, 0x26],
  [0x80, 0x00, 0x26],
];

/** Position of `rel` on the scale, in [0, 1]. */
export function scalePosition(rel: number, scale: ErrorScale = DEFAULT_ERROR_SCALE): number {
  if (!(rel > scale.min)) return 0;
  if (rel >= scale.max) return 1;
  return (
    (Math.log10(rel) - Math.log10(scale.min)) / (Math.log10(scale.max) - Math.log10(scale.min))
  );
}

const hex = (v: number) => Math.round(v).toString(16).padStart(2, '0');

/** Palette colour at position `t` in [0, 1], as `#rrggbb`. */
export function paletteColor(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = STOPS[i]!;
  const b = STOPS[i + 1]!;
  return `#${hex(a[0] + (b[0] - a[0]) * f)}${hex(a[1] + (b[1] - a[1]) * f)}${hex(a[2] + (b[2] - a[2]) * f)}`;
}

/** Fill colour for a relative error (`null`: undefined, grey). */
export function errorColor(rel: number | null, scale: ErrorScale = DEFAULT_ERROR_SCALE): string {
  return rel === null ? UNDEFINED_COLOR : paletteColor(scalePosition(rel, scale));
}

/** Black or white, whichever reads better on `#rrggbb` (WCAG relative luminance). */
export function textColorOn(fill: string): string {
  const lin = (i: number) => {
    const c = Number.parseInt(fill.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const l = 0.2126 * lin(1) + 0.7152 * lin(3) + 0.0722 * lin(5);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? '#000000' : '#ffffff';
}
