/**
 * The per-layer / per-channel quantization-error heatmap, as SVG and HTML strings (pure: no DOM,
 * no `node:`; usable in Node, workerd and browsers).
 *
 * - {@link renderHeatmapSvg}: one row per layer, in the order of the report (graph order), a
 *   coloured cell for the layer's relative error (log scale, see color.ts), cells above the
 *   threshold outlined and marked, text columns for SQNR, max |error| and flagged channels.
 * - {@link renderChannelDrilldown}: per layer a `<details>` (no script needed) with a strip of
 *   channel cells, same colours and outline rule, and the worst channels as text.
 * - {@link renderLegendSvg}: the colour bar with the threshold marked.
 *
 * Every cell has a `<title>` (tooltip and accessible name) carrying its figures; figures are
 * printed with 3 significant digits (format.ts); all text is escaped.
 */
import type { ChannelError, LayerError, LayerErrorReport } from '../evaluate/layer-errors.ts';
import {
  DEFAULT_ERROR_SCALE,
  type ErrorScale,
  errorColor,
  paletteColor,
  textColorOn,
  UNDEFINED_COLOR,
} from './color.ts';
import { escapeXml, formatDb, formatPercent, formatSig } from './format.ts';

/** Optional per-layer facts shown next to the figures. */
export interface LayerMeta {
  /** ONNX op type, e.g. 'Conv'. */
  opType?: string;
  /** Precision tier, e.g. 'int8' or 'A'. */
  tier?: string;
  /** Calibration method, e.g. 'kl' or 'percentile 99.99'. */
  calibration?: string;
  /** Why the layer was kept in float (when it was). */
  keptFloatReason?: string;
}

/** Options shared by the renderers. */
export interface HeatmapOptions {
  /** Metadata by layer name. */
  metadata?: Readonly<Record<string, LayerMeta>>;
  /** Colour scale (default 1e-4 .. 1). */
  scale?: ErrorScale;
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"';
const OUTLINE = '#1a237e';

const isAbove = (rel: number | null, threshold: number) => rel === null || rel > threshold;

function metaOf(options: HeatmapOptions, name: string): LayerMeta | undefined {
  const m = options.metadata;
  return m !== undefined && Object.hasOwn(m, name) ? m[name] : undefined;
}

/** One line of metadata text, e.g. `Conv · tier int8 · calib kl`. */
export function metaLine(meta: LayerMeta | undefined): string {
  if (meta === undefined) return '';
  const parts: string[] = [];
  if (meta.opType) parts.push(meta.opType);
  if (meta.tier) parts.push(`tier ${meta.tier}`);
  if (meta.calibration) parts.push(`calib ${meta.calibration}`);
  if (meta.keptFloatReason) parts.push(`kept in float: ${meta.keptFloatReason}`);
  return parts.join(' · ');
}

/** Shortens `text` to `max` characters with an ellipsis. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The tooltip text of a layer cell. */
export function layerTitle(layer: LayerError, threshold: number): string {
  const above = layer.aboveThreshold
    ? ` (above the ${formatPercent(threshold, true)} threshold)`
    : '';
  const parts = [
    `${layer.name}: relative error ${formatPercent(layer.relativeError)}${above}`,
    `SQNR ${formatDb(layer.sqnrDb, layer.relativeError)}`,
    `max |error| ${formatSig(layer.maxAbsError)}`,
    `${layer.channelsAboveThreshold} of ${layer.perChannel.length} channels above ${formatPercent(threshold, true)}`,
  ];
  if (layer.nonFinite > 0) parts.push(`${layer.nonFinite} non-finite values`);
  return parts.join(', ');
}

/** The tooltip text of a channel cell. */
export function channelTitle(
  layer: LayerError,
  index: number,
  ch: ChannelError,
  threshold: number,
): string {
  const above = isAbove(ch.relativeError, threshold)
    ? ` (above the ${formatPercent(threshold, true)} threshold)`
    : '';
  return `${layer.name} channel ${index}: relative error ${formatPercent(ch.relativeError)}${above}, SQNR ${formatDb(ch.sqnrDb, ch.relativeError)}, max |error| ${formatSig(ch.maxAbsError)}`;
}

/**
 * The per-layer heatmap as an `<svg>` element string: a header row, then one row per layer with
 * index, name (and metadata line), the relative-error cell (`class="cell"`, plus `above` when
 * flagged), SQNR, max |error| and flagged channels.
 */
export function renderHeatmapSvg(report: LayerErrorReport, options: HeatmapOptions = {}): string {
  const scale = options.scale ?? DEFAULT_ERROR_SCALE;
  const t = report.threshold;
  const rowH = 40;
  const top = 30;
  const width = 660;
  const x = { idx: 4, name: 34, cell: 300, sqnr: 422, max: 504, ch: 588 };
  const height = top + report.layers.length * rowH + 6;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="group" aria-labelledby="hm-title" ${FONT} font-size="13">`,
    `<title id="hm-title">Relative quantization error per layer (log colour scale; outlined cells exceed ${escapeXml(formatPercent(t, true))})</title>`,
    `<g class="header" font-weight="600" fill="#333">`,
    `<text x="${x.idx}" y="18">#</text><text x="${x.name}" y="18">Layer</text>`,
    `<text x="${x.cell}" y="18">Rel. error</text><text x="${x.sqnr}" y="18">SQNR</text>`,
    `<text x="${x.max}" y="18">Max |err|</text><text x="${x.ch}" y="18">Ch. &gt; ${escapeXml(formatPercent(t, true))}</text>`,
    `</g>`,
  );
  report.layers.forEach((layer, i) => {
    const y = top + i * rowH;
    const fill = errorColor(layer.relativeError, scale);
    const above = layer.aboveThreshold;
    const meta = metaLine(metaOf(options, layer.name));
    const mid = y + rowH / 2;
    out.push(
      `<g class="row${above ? ' above' : ''}">`,
      i % 2 === 1 ? `<rect x="0" y="${y}" width="${width}" height="${rowH}" fill="#f6f6f6"/>` : '',
      `<text x="${x.idx}" y="${mid + 4}" fill="#666">${i + 1}</text>`,
      `<text x="${x.name}" y="${meta ? mid - 3 : mid + 4}" fill="#111">${escapeXml(clip(layer.name, 36))}</text>`,
      meta
        ? `<text x="${x.name}" y="${mid + 12}" fill="#666" font-size="10.5">${escapeXml(clip(meta, 44))}</text>`
        : '',
      `<rect class="cell${above ? ' above' : ''}" x="${x.cell}" y="${y + 5}" width="110" height="${rowH - 10}" rx="3" fill="${fill}"${above ? ` stroke="${OUTLINE}" stroke-width="3"` : ' stroke="#bbb" stroke-width="1"'}><title>${escapeXml(layerTitle(layer, t))}</title></rect>`,
      `<text x="${x.cell + 55}" y="${mid + 4}" text-anchor="middle" fill="${textColorOn(fill)}" font-weight="${above ? 700 : 400}" aria-hidden="true">${escapeXml(formatPercent(layer.relativeError))}${above ? ' ▲' : ''}</text>`,
      `<text x="${x.sqnr}" y="${mid + 4}">${escapeXml(formatDb(layer.sqnrDb, layer.relativeError))}</text>`,
      `<text x="${x.max}" y="${mid + 4}">${escapeXml(formatSig(layer.maxAbsError))}</text>`,
      `<text x="${x.ch}" y="${mid + 4}">${layer.channelsAboveThreshold}/${layer.perChannel.length}</text>`,
      `</g>`,
    );
  });
  out.push('</svg>');
  return out.filter((s) => s !== '').join('\n');
}

/** The channel strip of one layer as an `<svg>` string (cells `class="ch"`, `above` flagged). */
export function renderChannelStripSvg(
  layer: LayerError,
  threshold: number,
  options: HeatmapOptions = {},
): string {
  const scale = options.scale ?? DEFAULT_ERROR_SCALE;
  const perRow = 32;
  const cell = 16;
  const gap = 2;
  const left = 40;
  const n = layer.perChannel.length;
  const rows = Math.max(1, Math.ceil(n / perRow));
  const width = left + perRow * (cell + gap) + 4;
  const height = rows * (cell + gap) + 4;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="strip" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="group" aria-label="${escapeXml(`Channels of ${layer.name}`)}" ${FONT} font-size="10">`,
  ];
  for (let r = 0; r < rows; r++) {
    out.push(
      `<text x="${left - 6}" y="${2 + r * (cell + gap) + 12}" text-anchor="end" fill="#666">${r * perRow}</text>`,
    );
  }
  layer.perChannel.forEach((ch, c) => {
    const above = isAbove(ch.relativeError, threshold);
    const cx = left + (c % perRow) * (cell + gap);
    const cy = 2 + Math.floor(c / perRow) * (cell + gap);
    const fill = errorColor(ch.relativeError, scale);
    out.push(
      `<rect class="ch${above ? ' above' : ''}" x="${cx + (above ? 1 : 0)}" y="${cy + (above ? 1 : 0)}" width="${above ? cell - 2 : cell}" height="${above ? cell - 2 : cell}" fill="${fill}"${above ? ` stroke="${OUTLINE}" stroke-width="2"` : ' stroke="#ccc" stroke-width="0.5"'}><title>${escapeXml(channelTitle(layer, c, ch, threshold))}</title></rect>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Channels sorted by decreasing relative error (undefined first), at most `k`. */
export function worstChannels(layer: LayerError, k: number): { index: number; ch: ChannelError }[] {
  const key = (c: ChannelError) => (c.relativeError === null ? Infinity : c.relativeError);
  return layer.perChannel
    .map((ch, index) => ({ index, ch }))
    .sort((a, b) => key(b.ch) - key(a.ch) || a.index - b.index)
    .slice(0, k);
}

/**
 * The per-channel drill-down: one `<details>` per layer (open for flagged layers), whose
 * `<summary>` gives the layer's figures and whose body holds the channel strip and the worst
 * channels as text.
 */
export function renderChannelDrilldown(
  report: LayerErrorReport,
  options: HeatmapOptions = {},
): string {
  const t = report.threshold;
  return report.layers
    .map((layer, i) => {
      const meta = metaLine(metaOf(options, layer.name));
      const worst = worstChannels(layer, 5)
        .filter((w) => w.ch.relativeError !== 0)
        .map(
          (w) =>
            `<li>channel ${w.index}: ${
              w.ch.relativeError === null
                ? 'relative error n/a (reference is all zero)'
                : `${escapeXml(formatPercent(w.ch.relativeError))}, SQNR ${escapeXml(formatDb(w.ch.sqnrDb, w.ch.relativeError))}`
            }, max |error| ${escapeXml(formatSig(w.ch.maxAbsError))}</li>`,
        );
      return [
        `<details class="layer${layer.aboveThreshold ? ' above' : ''}"${layer.aboveThreshold ? ' open' : ''}>`,
        `<summary><span class="idx">${i + 1}</span> <span class="name">${escapeXml(layer.name)}</span> <span class="badge" style="background:${errorColor(layer.relativeError, options.scale)};color:${textColorOn(errorColor(layer.relativeError, options.scale))}">${escapeXml(formatPercent(layer.relativeError))}${layer.aboveThreshold ? ' ▲' : ''}</span> <span class="sub">${layer.channelsAboveThreshold} of ${layer.perChannel.length} channels above ${escapeXml(formatPercent(t, true))}</span></summary>`,
        `<div class="body">`,
        meta ? `<p class="meta">${escapeXml(meta)}</p>` : '',
        `<p class="meta">output <code>${escapeXml(layer.output)}</code>, channel axis ${layer.channelAxis}, ${layer.elements} values over ${layer.samples} samples${layer.nonFinite > 0 ? `, <strong>${layer.nonFinite} non-finite</strong>` : ''}</p>`,
        `<div class="scroll">${renderChannelStripSvg(layer, t, options)}</div>`,
        worst.length > 0
          ? `<p class="meta">Worst channels:</p><ol class="worst">${worst.join('')}</ol>`
          : '<p class="meta">No channel has any error.</p>',
        `</div>`,
        `</details>`,
      ]
        .filter((s) => s !== '')
        .join('\n');
    })
    .join('\n');
}

/** The colour legend: the log scale bar with decade ticks, the threshold and the cell styles. */
export function renderLegendSvg(
  threshold: number,
  scale: ErrorScale = DEFAULT_ERROR_SCALE,
): string {
  const left = 22;
  const barW = 400;
  const steps = 80;
  const lo = Math.log10(scale.min);
  const hi = Math.log10(scale.max);
  const pos = (v: number) => left + ((Math.log10(v) - lo) / (hi - lo)) * barW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="legend" viewBox="0 0 450 112" width="450" height="112" role="img" aria-labelledby="legend-title" ${FONT} font-size="11">`,
    `<title id="legend-title">Colour scale: relative error from ${escapeXml(formatPercent(scale.min, true))} (light) to ${escapeXml(formatPercent(scale.max, true))} (dark), log scale; threshold ${escapeXml(formatPercent(threshold, true))}</title>`,
    `<text x="${left}" y="11" fill="#555">relative error ‖ref − int8‖₂ / ‖ref‖₂ (log scale)</text>`,
  ];
  const barY = 18;
  for (let s = 0; s < steps; s++) {
    out.push(
      `<rect x="${(left + (s * barW) / steps).toFixed(2)}" y="${barY}" width="${(barW / steps + 0.4).toFixed(2)}" height="18" fill="${paletteColor((s + 0.5) / steps)}"/>`,
    );
  }
  out.push(`<rect x="${left}" y="${barY}" width="${barW}" height="18" fill="none" stroke="#999"/>`);
  for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
    const px = pos(10 ** d);
    out.push(
      `<line x1="${px}" y1="${barY + 18}" x2="${px}" y2="${barY + 23}" stroke="#333"/>`,
      `<text x="${px}" y="${barY + 35}" text-anchor="middle">${escapeXml(formatPercent(10 ** d, true))}</text>`,
    );
  }
  if (threshold > scale.min && threshold < scale.max) {
    const px = pos(threshold);
    out.push(
      `<line x1="${px}" y1="${barY - 4}" x2="${px}" y2="${barY + 23}" stroke="${OUTLINE}" stroke-width="2.5"/>`,
      `<text x="${px}" y="${barY + 48}" text-anchor="middle" fill="${OUTLINE}" font-weight="700">threshold ${escapeXml(formatPercent(threshold, true))}</text>`,
    );
  }
  const sy = 86;
  const swatch = (x: number, fill: string, outlined: boolean, label: string) =>
    `<rect x="${x}" y="${sy}" width="22" height="16" fill="${fill}" stroke="${outlined ? OUTLINE : '#bbb'}" stroke-width="${outlined ? 3 : 1}"/><text x="${x + 28}" y="${sy + 12}">${escapeXml(label)}</text>`;
  out.push(
    swatch(left, paletteColor(0.85), true, 'above threshold ▲'),
    swatch(left + 145, paletteColor(0), false, `≤ ${formatPercent(scale.min, true)} or exact`),
    swatch(left + 290, UNDEFINED_COLOR, true, 'n/a: reference 0'),
    '</svg>',
  );
  return out.join('\n');
}
