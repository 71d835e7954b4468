import { describe, expect, it } from 'vitest';
import {
  emptyLayerErrorSums,
  finalizeLayerErrors,
  observeLayerError,
} from '../evaluate/layer-errors.ts';
import { tensor } from '../tensor/index.ts';
import { errorColor, scalePosition, textColorOn, UNDEFINED_COLOR } from './color.ts';
import { escapeXml, formatDb, formatMetric, formatPercent, formatSig } from './format.ts';
import { renderChannelDrilldown, renderHeatmapSvg, renderLegendSvg } from './heatmap.ts';
import { renderValidationHtml } from './html.ts';
import { exampleLayerErrors, exampleValidationReport } from './testing.ts';

const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);

/** Checks that every element of our own output is closed in order; returns the tag counts. */
function checkBalanced(markup: string): Map<string, number> {
  const stack: string[] = [];
  const counts = new Map<string, number>();
  const body = markup.replace(/^<!DOCTYPE html>/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    const tag = name!.toLowerCase();
    if (close) {
      const open = stack.pop();
      if (open !== tag) throw new Error(`</${tag}> closes <${open}>`);
    } else {
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
      if (!self && !VOID.has(tag)) stack.push(tag);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(' ')}`);
  // No stray angle brackets outside tags: all text was escaped.
  expect(body.replace(/<\/?[a-zA-Z][\w-]*[^<>]*>/g, '')).not.toMatch(/[<>]/);
  return counts;
}

/** Extracts `<title>` texts of `class="<cls>..."` cells, in order. */
function cellTitles(svg: string, cls: string): { classes: string; title: string }[] {
  return [
    ...svg.matchAll(new RegExp(`<rect class="(${cls}[^"]*)"[^>]*><title>([^<]*)</title>`, 'g')),
  ].map((m) => ({ classes: m[1]!, title: m[2]! }));
}

describe('format', () => {
  it('prints 3 significant digits consistently', () => {
    expect(formatSig(0.0421337)).toBe('0.0421');
    expect(formatSig(69.04)).toBe('69.0');
    expect(formatSig(1234.5)).toBe('1230');
    expect(formatSig(1.23456e-5)).toBe('1.23e-5');
    expect(formatSig(2.5e7)).toBe('2.50e7');
    expect(formatSig(0)).toBe('0');
    expect(formatSig(Number.NaN)).toBe('n/a');
    expect(formatPercent(0.05)).toBe('5.00%');
    expect(formatPercent(0.05, true)).toBe('5%');
    expect(formatPercent(null)).toBe('n/a');
    expect(formatDb(null, 0)).toBe('∞ dB');
    expect(formatDb(null, null)).toBe('n/a');
    expect(formatDb(27.6952, 0.04)).toBe('27.7 dB');
    expect(formatMetric(0.885)).toBe('0.885');
    expect(formatMetric(76.13)).toBe('76.13');
  });

  it('escapes markup characters', () => {
    expect(escapeXml(`<script>&"'`)).toBe('&lt;script&gt;&amp;&quot;&#39;');
  });
});

describe('colour scale', () => {
  it('is logarithmic and clamped, with grey for undefined errors', () => {
    expect(scalePosition(0)).toBe(0);
    expect(scalePosition(1e-4)).toBe(0);
    expect(scalePosition(1e-2)).toBeCloseTo(0.5, 12);
    expect(scalePosition(5)).toBe(1);
    expect(errorColor(null)).toBe(UNDEFINED_COLOR);
    expect(errorColor(0)).toBe('#ffffcc');
    expect(errorColor(1)).toBe('#800026');
    expect(textColorOn('#ffffcc')).toBe('#000000');
    expect(textColorOn('#800026')).toBe('#ffffff');
  });
});

describe('heatmap SVG', () => {
  const report = exampleLayerErrors();

  it('has one cell per layer, in order, highlighted exactly when above the threshold', () => {
    const svg = renderHeatmapSvg(report);
    checkBalanced(svg);
    const cells = cellTitles(svg, 'cell');
    expect(cells).toHaveLength(report.layers.length);
    report.layers.forEach((l, i) => {
      expect(cells[i]!.classes).toBe(l.aboveThreshold ? 'cell above' : 'cell');
      expect(
        cells[i]!.title.startsWith(
          `${escapeXml(l.name)}: relative error ${formatPercent(l.relativeError)}`,
        ),
      ).toBe(true);
      expect(cells[i]!.title).toContain(`SQNR ${formatDb(l.sqnrDb, l.relativeError)}`);
      expect(cells[i]!.title).toContain(`max |error| ${formatSig(l.maxAbsError)}`);
    });
    expect(report.flagged.length).toBeGreaterThan(0);
    expect(cells.filter((c) => c.classes === 'cell above')).toHaveLength(report.flagged.length);
    // The example's exact layer: 0%, ∞ dB.
    expect(cells.at(-1)!.title).toContain('relative error 0%, SQNR ∞ dB');
  });

  it('escapes a layer named <script>&"', () => {
    const svg = renderHeatmapSvg(report);
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;&amp;&quot;');
  });

  it('shows the metadata line', () => {
    const svg = renderHeatmapSvg(report, {
      metadata: { '/head/fc/Gemm': { opType: 'Gemm', keptFloatReason: 'too <sensitive>' } },
    });
    expect(svg).toContain('Gemm · kept in float: too &lt;sensitive&gt;');
  });

  it('drill-down: one details per layer, one channel cell per channel, titles carry the values', () => {
    const html = renderChannelDrilldown(report);
    const counts = checkBalanced(html);
    expect(counts.get('details')).toBe(report.layers.length);
    expect(counts.get('summary')).toBe(report.layers.length);
    const cells = cellTitles(html, 'ch');
    expect(cells).toHaveLength(report.layers.reduce((n, l) => n + l.perChannel.length, 0));
    let k = 0;
    for (const l of report.layers) {
      l.perChannel.forEach((ch, c) => {
        const cell = cells[k++]!;
        const above = ch.relativeError === null || ch.relativeError > report.threshold;
        expect(cell.classes).toBe(above ? 'ch above' : 'ch');
        expect(cell.title).toContain(
          `channel ${c}: relative error ${formatPercent(ch.relativeError)}`,
        );
      });
      expect(
        cells.filter(
          (x, i) =>
            i < k && x.title.startsWith(`${escapeXml(l.name)} channel`) && x.classes === 'ch above',
        ),
      ).toHaveLength(l.channelsAboveThreshold);
    }
    // Flagged layers open by default.
    expect((html.match(/<details class="layer above" open>/g) ?? []).length).toBe(
      report.flagged.length,
    );
  });

  it('legend marks the threshold', () => {
    const svg = renderLegendSvg(0.05);
    checkBalanced(svg);
    expect(svg).toContain('threshold 5%');
  });
});

describe('renderValidationHtml', () => {
  it('is one balanced, self-contained document with the summary figures', () => {
    const input = exampleValidationReport();
    const html = renderValidationHtml(input);
    const counts = checkBalanced(html);
    expect(html.startsWith('<!DOCTYPE html>\n<html lang="en">')).toBe(true);
    expect(counts.get('html')).toBe(1);
    expect(counts.get('body')).toBe(1);
    expect(counts.get('script') ?? 0).toBe(0);
    expect(html).not.toMatch(/\b(src|href)=/); // nothing external
    expect(html).not.toMatch(/url\(/);
    expect(html).toContain('<meta name="viewport"');
    for (const [k, v] of [
      ['Task', 'smoke-fmnist'],
      ['Target', 'ascend-310'],
      ['FP32 top-1', '0.885'],
      ['INT8 top-1', '0.881'],
      ['Loss (points)', '0.4'],
      ['Evaluation samples', '1000'],
    ]) {
      expect(html).toContain(`<tr><th scope="row">${k}</th><td>${v}</td></tr>`);
    }
    expect(html).toContain(
      `${input.layerErrors.flagged.length} of 8 layers</strong> exceed the 5%`,
    );
    expect(html).not.toContain('<script>&"');
    expect(renderValidationHtml(input)).toBe(html); // deterministic
  });

  it('escapes every caller-supplied text', () => {
    const spec = { name: '<script>&"', output: '<o>' };
    const s = emptyLayerErrorSums(spec);
    observeLayerError(
      s,
      spec,
      tensor('float32', [1, 2], new Float32Array([1, 2])),
      tensor('float32', [1, 2], new Float32Array([1, 3])),
    );
    const html = renderValidationHtml({
      title: 'T <b>',
      summary: {
        task: '<task>',
        target: 'a&b',
        metric: '"m"',
        fp32: 1,
        int8: 0.5,
        lossPoints: 50,
        samples: 2,
      },
      layerErrors: finalizeLayerErrors([s]),
      metadata: { '<script>&"': { opType: '<op>', calibration: "k'l" } },
      footer: '</footer>',
    });
    checkBalanced(html);
    expect(html).not.toMatch(/<(script|task|op|o|b)>/);
    expect(html).toContain('&lt;script&gt;&amp;&quot;');
    expect(html).toContain('&lt;op&gt;');
    expect(html).toContain('k&#39;l');
    expect(html).toContain('<footer>&lt;/footer&gt;</footer>');
  });
});
