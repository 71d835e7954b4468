/**
 * The validation report page: ONE self-contained HTML document (inline CSS and SVG, no external
 * resources, no script), readable on a phone. Pure string rendering: same input, same bytes.
 */
import type { LayerErrorReport } from '../evaluate/layer-errors.ts';
import type { ErrorScale } from './color.ts';
import { escapeXml, formatMetric, formatPercent } from './format.ts';
import {
  type LayerMeta,
  renderChannelDrilldown,
  renderHeatmapSvg,
  renderLegendSvg,
} from './heatmap.ts';

/** The accuracy summary, taken as given (nothing is recomputed). */
export interface ValidationSummary {
  /** Task id, e.g. 'smoke-fmnist'. */
  task: string;
  /** Target id, e.g. 'ascend-310'. */
  target: string;
  /** Metric name, e.g. 'top-1'. */
  metric: string;
  fp32: number;
  int8: number;
  /** Accuracy loss in points, as computed by the caller. */
  lossPoints: number;
  /** Evaluation samples behind fp32/int8. */
  samples: number;
}

/** Everything the page shows. */
export interface ValidationReport {
  /** Page title (default: `INT8 validation: <task> on <target>`). */
  title?: string;
  summary: ValidationSummary;
  layerErrors: LayerErrorReport;
  /** Per-layer metadata by layer name (op type, tier, calibration, kept-in-float reason). */
  metadata?: Readonly<Record<string, LayerMeta>>;
  /** Colour scale of the heatmap (default 1e-4 .. 1). */
  scale?: ErrorScale;
  /** A free-text line for the footer, e.g. a generation timestamp supplied by the caller. */
  footer?: string;
}

const CSS = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#fff}
main{max-width:760px;margin:0 auto;padding:16px}
h1{font-size:1.35em;margin:.2em 0 .6em}
h2{font-size:1.1em;margin:1.4em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table.summary{border-collapse:collapse;width:100%;max-width:520px}
table.summary th,table.summary td{text-align:left;padding:5px 8px;border-bottom:1px solid #eee}
table.summary td{font-variant-numeric:tabular-nums}
table.summary th{font-weight:600;color:#444;width:45%}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
svg{display:block;height:auto;max-width:100%}
svg.heatmap{min-width:560px}
.flagged{background:#fff4e5;border-left:4px solid #1a237e;padding:8px 12px;margin:.6em 0}
.ok{background:#eef7ee;border-left:4px solid #2e7d32;padding:8px 12px;margin:.6em 0}
details.layer{border:1px solid #ddd;border-radius:6px;margin:6px 0;padding:0}
details.layer.above{border-color:#1a237e;border-width:2px}
details.layer summary{cursor:pointer;padding:8px 10px;list-style-position:inside}
details.layer .body{padding:0 10px 8px}
.idx{color:#666;font-variant-numeric:tabular-nums}
.name{font-weight:600;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 6px;border-radius:3px;border:1px solid #bbb;font-variant-numeric:tabular-nums}
.sub,.meta{color:#555;font-size:.9em}
.meta{margin:.3em 0}
ol.worst{margin:.2em 0;padding-left:1.6em;font-size:.9em}
code{font-size:.9em;overflow-wrap:anywhere}
footer{margin-top:2em;color:#777;font-size:.85em}
`;

/** Renders the full page. All text is escaped; figures are the ones in `report`, formatted. */
export function renderValidationHtml(report: ValidationReport): string {
  const s = report.summary;
  const errors = report.layerErrors;
  const options = {
    ...(report.metadata === undefined ? {} : { metadata: report.metadata }),
    ...(report.scale === undefined ? {} : { scale: report.scale }),
  };
  const title = report.title ?? `INT8 validation: ${s.task} on ${s.target}`;
  const threshold = formatPercent(errors.threshold, true);
  const row = (k: string, v: string) => `<tr><th scope="row">${k}</th><td>${v}</td></tr>`;
  const flagged = errors.flagged;
  const flagNote =
    flagged.length > 0
      ? `<p class="flagged"><strong>${flagged.length} of ${errors.layers.length} layers</strong> exceed the ${escapeXml(threshold)} relative-error threshold: ${flagged.map((n) => `<code>${escapeXml(n)}</code>`).join(', ')}.</p>`
      : `<p class="ok">No layer exceeds the ${escapeXml(threshold)} relative-error threshold (${errors.layers.length} layers).</p>`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${escapeXml(title)}</h1>`,
    '<section>',
    '<h2>Summary</h2>',
    '<table class="summary"><tbody>',
    row('Task', escapeXml(s.task)),
    row('Target', escapeXml(s.target)),
    row(`FP32 ${escapeXml(s.metric)}`, escapeXml(formatMetric(s.fp32))),
    row(`INT8 ${escapeXml(s.metric)}`, escapeXml(formatMetric(s.int8))),
    row('Loss (points)', escapeXml(formatMetric(s.lossPoints))),
    row('Evaluation samples', String(s.samples)),
    row('Layer-error samples', String(errors.samples)),
    row('Error threshold', escapeXml(threshold)),
    '</tbody></table>',
    '</section>',
    '<section>',
    '<h2>Per-layer quantization error</h2>',
    flagNote,
    `<p class="meta">Rows are layers in graph order. Colour: relative error ‖ref − int8‖₂ / ‖ref‖₂ of the layer output on a log scale; outlined cells marked ▲ exceed ${escapeXml(threshold)}. SQNR = 10·log10(Σ ref² / Σ (ref − int8)²). Figures have 3 significant digits; hover or long-press a cell for its details.</p>`,
    `<div class="scroll">${renderLegendSvg(errors.threshold, report.scale)}</div>`,
    `<div class="scroll">${renderHeatmapSvg(errors, options)}</div>`,
    '</section>',
    '<section>',
    '<h2>Per-channel drill-down</h2>',
    '<p class="meta">Open a layer to see one cell per output channel (same colours and outline rule). Flagged layers are open.</p>',
    renderChannelDrilldown(errors, options),
    '</section>',
    report.footer === undefined ? '' : `<footer>${escapeXml(report.footer)}</footer>`,
    '</main>',
    '</body>',
    '</html>',
    '',
  ]
    .filter((l, i, a) => l !== '' || i === a.length - 1)
    .join('\n');
}
