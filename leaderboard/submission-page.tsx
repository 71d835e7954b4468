/** @jsxImportSource hono/jsx */
/**
 * The submission page: summary, FP32 vs INT8 metrics, the certification checklist, the
 * cross-hardware table (or this target's modelled roofline), the per-layer error heatmap
 * (core/report/heatmap.ts) with the per-channel drill-down, sensitivity tiers and calibration
 * methods, the recipe, badge snippets, and live progress while the submission runs.
 */
import { raw } from 'hono/html';
import {
  type LayerMeta,
  renderChannelDrilldown,
  renderHeatmapSvg,
  renderLegendSvg,
} from '../core/report/heatmap.ts';
import type { CrossHardwareReport, CrossHardwareRow } from '../core/score/cross-hardware.ts';
import type { RunReport } from '../core/score/score-run.ts';
import type { StoredReport } from '../core/score/submission-report.ts';
import type { LeaderboardRow, SubmissionView } from '../db/queries.ts';
import {
  fmtDate,
  fmtInt,
  fmtMetric,
  fmtPoints,
  fmtQqi,
  fmtRatio,
  fmtSeconds,
  fmtTime,
  fmtValue,
} from './format.ts';
import { Level } from './leaderboard-page.tsx';

type Check = RunReport['checks'][number];

function Outcome({ pass }: { pass: Check['pass'] }) {
  if (pass === 'not-run') return <span class="notrun">— not run</span>;
  return pass ? <span class="pass">✓ pass</span> : <span class="fail">✗ fail</span>;
}

/** The checklist, one table per level. */
function Checklist({ checks, level }: { checks: Check[]; level: number }) {
  const levels = [...new Set(checks.map((c) => c.level))].sort((a, b) => a - b);
  return (
    <section id="checklist" aria-labelledby="h-checklist">
      <h2 id="h-checklist">Certification checklist</h2>
      <p>
        Level earned: <Level level={level} /> (the highest level whose checks, and those of every
        level below, all pass).
      </p>
      <div class="scroll">
        <table class="checks">
          <caption>Checks L1–L5 with the value measured, the threshold and the evidence</caption>
          <thead>
            <tr>
              <th scope="col">Check</th>
              <th scope="col">Outcome</th>
              <th scope="col">Value</th>
              <th scope="col">Threshold</th>
              <th scope="col">Evidence</th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          {levels.map((l) => (
            <tbody>
              <tr>
                <th scope="rowgroup" colspan={6}>
                  Level {l}
                </th>
              </tr>
              {checks
                .filter((c) => c.level === l)
                .map((c) => (
                  <tr
                    data-check={c.id}
                    data-outcome={c.pass === 'not-run' ? 'not-run' : c.pass ? 'pass' : 'fail'}
                  >
                    <th scope="row">
                      <code>{c.id}</code>
                    </th>
                    <td>
                      <Outcome pass={c.pass} />
                    </td>
                    <td class="value">{fmtValue(c.value)}</td>
                    <td class="threshold">{c.threshold}</td>
                    <td class="sub evidence">{c.evidence}</td>
                    <td class="sub why">{c.why}</td>
                  </tr>
                ))}
            </tbody>
          ))}
        </table>
      </div>
    </section>
  );
}

/**
 * The cross-hardware table when the stored report carries one (core/score/cross-hardware.ts
 * `CrossHardwareReport`, as `crossHardware` on the stored document, which the service's
 * cross-hardware runs fill in), else null.
 */
function crossRows(stored: StoredReport): CrossHardwareRow[] | null {
  type WithCross = { crossHardware?: CrossHardwareReport | null };
  const x = stored.crossHardware ?? (stored.report as unknown as WithCross).crossHardware;
  return x && Array.isArray(x.rows) && x.rows.length > 0 ? x.rows : null;
}

/** The robustness stress tests, when the recipe asked for them (recipe.validation.stress). */
function Stress({ stored }: { stored: StoredReport }) {
  const r = stored.stress;
  if (!r) return '';
  return (
    <section id="stress" aria-labelledby="h-stress">
      <h2 id="h-stress">Robustness stress tests</h2>
      <p>
        FP32 and INT8 on perturbed copies of the evaluation split (seeded per sample; perturbed
        values stay within the clean split's range). A perturbation is flagged when it adds more
        than {r.threshold_points} points to the clean loss of {fmtPoints(r.clean.loss_points)}, and
        marked "within noise" when the extra loss is under 1.96 standard errors (a jackknife over
        the samples).{' '}
        {r.pass ? 'None is flagged.' : `${r.rows.filter((x) => !x.pass).length} flagged.`}
      </p>
      <div class="scroll">
        <table>
          <caption>{r.metric} under each perturbation</caption>
          <thead>
            <tr>
              <th scope="col">Perturbation</th>
              <th scope="col" class="num">
                FP32
              </th>
              <th scope="col" class="num">
                INT8
              </th>
              <th scope="col" class="num">
                Loss (points)
              </th>
              <th scope="col" class="num">
                Beyond the clean loss (± s.e.)
              </th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {r.rows.map((x) => (
              <tr data-stress={x.id}>
                <th scope="row">
                  {x.id} <span class="sub">({x.label})</span>
                </th>
                <td class="num">{fmtMetric(x.fp32)}</td>
                <td class="num">{fmtMetric(x.int8)}</td>
                <td class="num">{fmtPoints(x.loss_points)}</td>
                <td class="num">
                  {fmtPoints(x.extra_loss_points)}
                  {x.extra_se_points !== undefined ? ` ± ${fmtPoints(x.extra_se_points)}` : ''}
                </td>
                <td>
                  {x.pass ? (
                    'pass'
                  ) : x.significant === false ? (
                    <>
                      <span class="flag">flagged</span> (within noise)
                    </>
                  ) : (
                    <span class="flag">flagged</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Hardware({ stored }: { stored: StoredReport }) {
  const report = stored.report;
  const rows = crossRows(stored);
  if (rows)
    return (
      <section id="hardware" aria-labelledby="h-hardware">
        <h2 id="h-hardware">Cross-hardware</h2>
        <div class="scroll">
          <table>
            <caption>The same recipe on every target, each with its own INT8 arithmetic</caption>
            <thead>
              <tr>
                <th scope="col">Target</th>
                <th scope="col">Executor</th>
                <th scope="col" class="num">
                  FP32
                </th>
                <th scope="col" class="num">
                  INT8
                </th>
                <th scope="col" class="num">
                  Loss (points)
                </th>
                <th scope="col" class="num">
                  Speed-up (modelled)
                </th>
                <th scope="col" class="num">
                  INT8 latency
                </th>
                <th scope="col" class="num">
                  Energy gain
                </th>
                <th scope="col">Notes</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr>
                  <th scope="row">
                    {r.name} <span class="sub">({r.target})</span>
                  </th>
                  <td>{r.executor}</td>
                  <td class="num">{fmtMetric(r.fp32)}</td>
                  <td class="num">{fmtMetric(r.int8)}</td>
                  <td class="num">
                    {fmtPoints(r.lossPoints)}
                    {r.withinL5 ? ' ✓ (≤ 0.5, counts for L5.cross)' : ''}
                  </td>
                  <td class="num">{fmtRatio(r.modelled?.speedup ?? null)}</td>
                  <td class="num">{fmtSeconds(r.modelled?.int8LatencyS ?? null)}</td>
                  <td class="num">{fmtRatio(r.modelled?.energyGain ?? null)}</td>
                  <td class="sub">{r.notes.join('; ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    );
  const perf = report.perf;
  return (
    <section id="hardware" aria-labelledby="h-hardware">
      <h2 id="h-hardware">Performance on {report.target}</h2>
      <p class="muted">
        This report has no cross-hardware table (the L5.cross evidence was not produced for this
        run). Below: the {perf.modelled ? 'modelled' : 'measured'} per-layer roofline of{' '}
        {report.target} (float path {perf.floatPath}), speed-up {fmtRatio(perf.speedup)}, energy
        gain {fmtRatio(report.qqi.energyGain)} ({perf.energyGain.used}).
      </p>
      <div class="scroll">
        <table>
          <caption>
            Per-node roofline: latency = max(ops / peak, bytes / bandwidth); totals INT8{' '}
            {fmtSeconds(perf.totals.int8.latencyS)}, float {fmtSeconds(perf.totals.float.latencyS)}
          </caption>
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">Op</th>
              <th scope="col" class="num">
                MACs
              </th>
              <th scope="col">INT8 model</th>
              <th scope="col" class="num">
                INT8 latency
              </th>
              <th scope="col">Float baseline</th>
              <th scope="col" class="num">
                Float latency
              </th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {perf.rows.map((r) => (
              <tr>
                <th scope="row">
                  <code>{r.node}</code>
                </th>
                <td>{r.opType}</td>
                <td class="num">{fmtInt(r.macs)}</td>
                <td>
                  {r.int8.precision}
                  {r.int8.bound ? `, ${r.int8.bound}-bound` : ''}
                </td>
                <td class="num">{fmtSeconds(r.int8.latencyS)}</td>
                <td>
                  {r.float.precision}
                  {r.float.bound ? `, ${r.float.bound}-bound` : ''}
                </td>
                <td class="num">{fmtSeconds(r.float.latencyS)}</td>
                <td class="sub">{r.note ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {perf.notes.length ? (
        <ul class="sub">
          {perf.notes.map((n) => (
            <li>{n}</li>
          ))}
        </ul>
      ) : (
        ''
      )}
    </section>
  );
}

/** `weights' SQNR 40.8 -> 50.4 dB on the calibration inputs, 8 channels changed`. */
function roundingText(r: NonNullable<RunReport['layers'][number]['rounding']>): string {
  const db = (v: number | null) => (v === null ? 'exact' : v.toFixed(1));
  return `the weights' output SQNR ${db(r.nearestDb)} -> ${db(r.gptqDb)} dB on the calibration inputs, ${r.channelsChanged} channel${r.channelsChanged === 1 ? '' : 's'} changed`;
}

function methodText(l: { method: string; percentile: number | null }): string {
  return l.percentile !== null ? `${l.method} ${l.percentile}` : l.method;
}

/** The method search's trials: `mse 50.8, max 47.6 (-3.1), percentile 99.99 48.9 (-1.9)`. */
function searchText(l: RunReport['layers'][number]): string {
  if (!l.search) return '—';
  return l.search
    .map(
      (t) =>
        `${methodText(t)} ${t.sqnrDb.toFixed(1)}${t.gainDb === null ? '' : ` (${t.gainDb >= 0 ? '+' : ''}${t.gainDb.toFixed(1)})`}`,
    )
    .join(', ');
}

function Heatmap({ stored }: { stored: StoredReport }) {
  const errors = stored.layerErrors;
  const r = stored.report;
  const metadata: Record<string, LayerMeta> = {};
  for (const [name, m] of Object.entries(stored.layerMeta))
    metadata[name] = {
      opType: m.opType,
      ...(m.keptFloatReason ? { keptFloatReason: m.keptFloatReason } : {}),
    };
  for (const l of r.layers)
    metadata[l.name] = {
      ...metadata[l.name],
      ...(l.tier ? { tier: l.tier } : {}),
      calibration: methodText(l),
    };
  return (
    <section id="heatmap" aria-labelledby="h-heatmap">
      <h2 id="h-heatmap">Per-layer error heatmap</h2>
      {errors ? (
        <>
          <p>
            Relative error ‖FP32 − INT8‖₂ / ‖FP32‖₂ of each quantized layer's output over{' '}
            {errors.samples} evaluation samples; outlined cells (▲) exceed{' '}
            {fmtValue(errors.threshold * 100)}%.{' '}
            {errors.flagged.length
              ? `${errors.flagged.length} of ${errors.layers.length} layers are above the threshold.`
              : `No layer is above the threshold (${errors.layers.length} layers).`}
          </p>
          <div class="scroll">{raw(renderHeatmapSvg(errors, { metadata }))}</div>
          <div class="scroll">{raw(renderLegendSvg(errors.threshold))}</div>
          <h3>Per-channel drill-down</h3>
          {raw(renderChannelDrilldown(errors, { metadata }))}
        </>
      ) : (
        <p>No per-layer errors were measured for this run (no quantized layer).</p>
      )}
    </section>
  );
}

function Tiers({ report }: { report: RunReport }) {
  return (
    <section id="tiers" aria-labelledby="h-tiers">
      <h2 id="h-tiers">Sensitivity tiers and calibration</h2>
      <p>
        Layers per tier: high {report.tiers.high ?? 0}, medium {report.tiers.medium ?? 0}, low{' '}
        {report.tiers.low ?? 0}. Calibration: {report.calibration.samples} samples (
        {report.calibration.sampler} sampler), {report.calibration.parameterSets} (scale,
        zero-point) sets. A layer keeps its tier's method unless the method search measured another
        one quieter at the model output by the recipe's margin, with the layer alone quantized.
      </p>
      <div class="scroll">
        <table>
          <caption>Quantized layers in graph order</caption>
          <thead>
            <tr>
              <th scope="col">Layer</th>
              <th scope="col">Kind</th>
              <th scope="col">Tier</th>
              <th scope="col">Calibration method</th>
              <th scope="col">Methods tried: one-layer SQNR dB (gain over the tier's)</th>
              <th scope="col" class="num">
                SQNR (dB)
              </th>
              <th scope="col" class="num">
                Activation scale
              </th>
              <th scope="col" class="num">
                Zero point
              </th>
              <th scope="col">Weights</th>
            </tr>
          </thead>
          <tbody>
            {report.layers.map((l) => (
              <tr data-layer={l.name}>
                <th scope="row">
                  <code>{l.name}</code>
                </th>
                <td>{l.kind}</td>
                <td>{l.tier ?? '—'}</td>
                <td>{methodText(l)}</td>
                <td>{searchText(l)}</td>
                <td class="num">{l.sqnrDb === null ? '—' : l.sqnrDb.toFixed(1)}</td>
                {l.method === 'dynamic' ? (
                  <td colspan={2}>per input, at run time</td>
                ) : (
                  <>
                    <td class="num">{fmtValue(l.activation.scale)}</td>
                    <td class="num">{l.activation.zeroPoint}</td>
                  </>
                )}
                <td>
                  {l.weight.granularity}, {l.weight.channels} channel
                  {l.weight.channels === 1 ? '' : 's'}
                  {l.rounding ? `; GPTQ rounding: ${roundingText(l.rounding)}` : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {report.floatLayers.length ? (
        <>
          <h3>Kept in float</h3>
          <ul>
            {report.floatLayers.map((f) => (
              <li>
                <code>{f.name}</code> ({f.opType}): {f.reason}
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p class="muted">No layer was kept in float.</p>
      )}
      {report.warnings?.length ? (
        <>
          <h3>Recipe warnings</h3>
          <p class="muted">Settings of the recipe that did not apply to this model and data.</p>
          <ul class="warnings">
            {report.warnings.map((w) => (
              <li>{w}</li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

function Metrics({ report }: { report: RunReport }) {
  const m = report.metric;
  const names = Object.keys(m.all.fp32);
  return (
    <section id="metrics" aria-labelledby="h-metrics">
      <h2 id="h-metrics">FP32 against INT8</h2>
      <div class="scroll">
        <table class="metrics">
          <caption>
            Measured by the service on {fmtInt(m.samples)} evaluation samples (primary metric{' '}
            {m.name})
          </caption>
          <thead>
            <tr>
              <th scope="col">Metric</th>
              <th scope="col" class="num">
                FP32
              </th>
              <th scope="col" class="num">
                INT8
              </th>
              <th scope="col" class="num">
                Loss (points)
              </th>
            </tr>
          </thead>
          <tbody>
            {names.map((n) => {
              const a = m.all.fp32[n]!;
              const b = m.all.int8[n] ?? null;
              return (
                <tr data-metric={n}>
                  <th scope="row">
                    {n}
                    {n === m.name ? ' (primary)' : ''}
                  </th>
                  <td class="num">{fmtMetric(a)}</td>
                  <td class="num">{b === null ? 'n/a' : fmtMetric(b)}</td>
                  <td class="num">
                    {n === m.name
                      ? fmtPoints(m.lossPoints)
                      : b === null
                        ? 'n/a'
                        : fmtPoints((a - b) * 100)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p>
        Loss estimated before evaluation from unlabelled calibration data:{' '}
        {m.estimatedLossPoints === null
          ? 'not estimated'
          : `${fmtPoints(m.estimatedLossPoints)} points`}
        .
      </p>
    </section>
  );
}

/** A QAT submission: the model's loss against the FP32 reference, beside PTQ of that model. */
function Qat({ stored }: { stored: StoredReport }) {
  const q = stored.qat;
  if (!q) return '';
  return (
    <section id="qat" aria-labelledby="h-qat">
      <h2 id="h-qat">Quantization-aware training</h2>
      <p>
        A QAT model (sha256 <code>{q.model.slice(0, 12)}</code>,{' '}
        {q.sameGraph.same ? 'the' : 'not the'} reference graph) scored with bias correction off,
        against the FP32 reference model and against post-training quantization of that model with
        the same recipe (run <code>{q.ptq.runId}</code>).
      </p>
      <div class="scroll">
        <table class="metrics">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" class="num">
                Metric
              </th>
              <th scope="col" class="num">
                Loss vs FP32 reference (points)
              </th>
            </tr>
          </thead>
          <tbody>
            <tr data-qat="reference">
              <th scope="row">FP32 reference</th>
              <td class="num">{fmtMetric(q.fp32Reference)}</td>
              <td class="num">0</td>
            </tr>
            <tr data-qat="ptq">
              <th scope="row">PTQ of the reference (INT8)</th>
              <td class="num">{fmtMetric(q.ptq.int8)}</td>
              <td class="num">{fmtPoints(q.ptq.lossPoints)}</td>
            </tr>
            <tr data-qat="qat">
              <th scope="row">QAT model (INT8)</th>
              <td class="num">{fmtMetric(q.int8)}</td>
              <td class="num">{fmtPoints(q.lossPoints)}</td>
            </tr>
            <tr data-qat="qat-fp32">
              <th scope="row">QAT model run in FP32</th>
              <td class="num">{fmtMetric(q.qatFp32)}</td>
              <td class="num">{fmtPoints((q.fp32Reference - q.qatFp32) * 100)}</td>
            </tr>
          </tbody>
        </table>
      </div>
      {q.aboveReference ? (
        <p class="note">
          <span class="flag">flagged</span> The QAT model scores above its FP32 reference.
        </p>
      ) : (
        ''
      )}
    </section>
  );
}

/**
 * An imported quantization (recipe.imported): who made it, and per layer how its scales became
 * the target's (exact, or re-fitted where the target's grid cannot hold the framework's).
 */
function Imported({ stored }: { stored: StoredReport }) {
  const imp = stored.report.imported;
  const model = stored.recipe.imported?.model;
  if (!imp || !model) return '';
  const exact = (k: 'activation' | 'weight') =>
    imp.layers.filter((l) => l[k].mapping === 'exact').length;
  return (
    <section id="imported" aria-labelledby="h-imported">
      <h2 id="h-imported">Imported quantization</h2>
      <p>
        {imp.format === 'dynamic'
          ? 'A model quantized dynamically (activation scales computed per input at run time)'
          : imp.format === 'qoperator'
            ? 'An operator-style (QOperator) model quantized'
            : 'A QDQ model quantized'}{' '}
        by <strong>{imp.producer || 'an unnamed producer'}</strong> (sha256{' '}
        <code>{model.slice(0, 12)}</code>), scored with its own{' '}
        {imp.format === 'dynamic' ? 'weights' : 'scales'} on {stored.report.target}: no calibration
        ran here. Activations mapped exactly on {exact('activation')} of {imp.layers.length} layers,
        weights on {exact('weight')}; the rest were re-fitted to the target's scheme.
      </p>
      <div class="scroll">
        <table>
          <caption>Each layer's parameters on the target</caption>
          <thead>
            <tr>
              <th scope="col">Layer</th>
              <th scope="col">Activation</th>
              <th scope="col" class="num">
                Scale
              </th>
              <th scope="col" class="num">
                Zero point
              </th>
              <th scope="col">Weights</th>
              <th scope="col">Notes</th>
            </tr>
          </thead>
          <tbody>
            {imp.layers.map((l) => (
              <tr data-layer={l.name}>
                <th scope="row">{l.name}</th>
                <td>{l.activation.foreign === 'dynamic' ? 'dynamic' : l.activation.mapping}</td>
                {'target' in l.activation ? (
                  <>
                    <td class="num">{l.activation.target.scale.toPrecision(4)}</td>
                    <td class="num">{l.activation.target.zeroPoint}</td>
                  </>
                ) : (
                  <td colspan={2}>per input, at run time</td>
                )}
                <td>
                  {l.weight.foreign} {l.weight.mapping}
                </td>
                <td>{[l.activation.note, l.weight.note].filter(Boolean).join('; ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Badges({ id, origin }: { id: string; origin: string }) {
  const svg = `${origin}/badge/${encodeURIComponent(id)}.svg`;
  const page = `${origin}/submissions/${encodeURIComponent(id)}`;
  const md = `[![cann-quant certification](${svg})](${page})`;
  const html = `<a href="${page}"><img src="${svg}" alt="cann-quant certification"></a>`;
  const shields = `https://img.shields.io/endpoint?url=${encodeURIComponent(`${origin}/badge/${id}.json`)}`;
  return (
    <section id="badge" aria-labelledby="h-badge">
      <h2 id="h-badge">Badge</h2>
      <p>
        <img
          src={`/badge/${encodeURIComponent(id)}.svg`}
          alt="Certification badge of this submission"
        />{' '}
        <a href={`/badge/${encodeURIComponent(id)}.json`}>shields.io endpoint JSON</a>
      </p>
      {[
        { key: 'md', label: 'Markdown', text: md },
        { key: 'html', label: 'HTML', text: html },
        { key: 'shields', label: 'shields.io endpoint URL', text: shields },
      ].map((s) => (
        <div class="snippet">
          <label for={`snippet-${s.key}`}>{s.label}</label>
          <textarea id={`snippet-${s.key}`} readonly rows={2}>
            {s.text}
          </textarea>
          <button
            type="button"
            class="secondary"
            data-copy={`snippet-${s.key}`}
            data-status={`copied-${s.key}`}
          >
            Copy {s.label}
          </button>{' '}
          <span id={`copied-${s.key}`} class="status" role="status" aria-live="polite" />
        </div>
      ))}
    </section>
  );
}

function Progress({ view }: { view: SubmissionView }) {
  return (
    <section id="progress" aria-labelledby="h-progress">
      <h2 id="h-progress">Progress</h2>
      <p>
        Status: <strong data-status-text>{view.status}</strong>. The primary run and an independent
        reproduction with another shard count (the L1.reproducible evidence) run in parallel; this
        page updates itself and shows the report once the submission is scored.
      </p>
      <div class="scroll">
        <table
          class="progress"
          data-poll={`/api/v1/submissions/${encodeURIComponent(view.id)}`}
          data-status={view.status}
        >
          <caption>Shards done per phase</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Phase</th>
              <th scope="col" class="num">
                Shards done
              </th>
              <th scope="col">Progress</th>
            </tr>
          </thead>
          <tbody>
            {view.runs.flatMap((r) =>
              r.phases.map((p) => (
                <tr data-progress={`${r.id}/${p.phase}`}>
                  <td>
                    {r.role} ({r.shards} shards)
                  </td>
                  <td>{p.phase}</td>
                  <td class="num">
                    {p.done} / {p.total}
                  </td>
                  <td>
                    <progress max={p.total} value={p.done} aria-label={`${r.role} ${p.phase}`}>
                      {p.done} / {p.total}
                    </progress>
                  </td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      </div>
      <p id="progress-live" class="sub" role="status" aria-live="polite" />
    </section>
  );
}

/** Summary table rows of a scored result. */
function Summary({
  view,
  result,
  stored,
}: {
  view: SubmissionView;
  result: Omit<LeaderboardRow, 'rank'> | null;
  stored: StoredReport | null;
}) {
  const q = stored?.report.qqi;
  return (
    <table class="kv summary">
      <caption class="muted">Summary</caption>
      <tbody>
        <tr>
          <th scope="row">Status</th>
          <td data-field="status">{view.status}</td>
        </tr>
        <tr>
          <th scope="row">Task</th>
          <td>
            <a href={`/tasks/${encodeURIComponent(view.task)}`}>{view.task}</a>
          </td>
        </tr>
        <tr>
          <th scope="row">Target</th>
          <td>{view.target}</td>
        </tr>
        <tr>
          <th scope="row">Submitter</th>
          <td>{view.submitter}</td>
        </tr>
        <tr>
          <th scope="row">Submitted</th>
          <td>{fmtTime(view.createdAt)}</td>
        </tr>
        {result ? (
          <>
            <tr>
              <th scope="row">Level</th>
              <td data-field="level">
                <Level level={result.level} />
              </td>
            </tr>
            <tr>
              <th scope="row">QQI</th>
              <td data-field="qqi">
                <strong>{fmtQqi(result.qqi)}</strong>
                {q ? <div class="sub">{q.text}</div> : ''}
                {q?.missing ? <div class="sub">{q.missing}</div> : ''}
              </td>
            </tr>
            <tr>
              <th scope="row">Loss</th>
              <td>
                {fmtPoints(result.lossPoints)} points of {result.metric} ({fmtMetric(result.fp32)} →{' '}
                {fmtMetric(result.int8)})
              </td>
            </tr>
            <tr>
              <th scope="row">Speed-up / energy gain</th>
              <td>
                {fmtRatio(result.speedup)} / {fmtRatio(result.energyGain)}
                {q ? ` (${q.speedupSource}; ${q.energySource})` : ''}
              </td>
            </tr>
            <tr>
              <th scope="row">Scored</th>
              <td>{fmtDate(result.scoredAt)}</td>
            </tr>
            <tr>
              <th scope="row">Trusted (L5.cross)</th>
              <td>{result.trusted ? 'yes' : 'no'}</td>
            </tr>
          </>
        ) : (
          ''
        )}
        <tr>
          <th scope="row">Recipe hash</th>
          <td>
            <code>{view.recipeHash}</code>
          </td>
        </tr>
        {stored?.reproduction ? (
          <tr>
            <th scope="row">Reproduction</th>
            <td>
              run <code>{stored.reproduction.runId}</code> with {stored.reproduction.shards} shards
            </td>
          </tr>
        ) : (
          ''
        )}
      </tbody>
    </table>
  );
}

/** The submission page body. */
export function SubmissionPage(props: {
  view: SubmissionView;
  stored: StoredReport | null;
  recipe: unknown;
  origin: string;
}) {
  const { view, stored } = props;
  const result = view.result;
  const api = `/api/v1/submissions/${encodeURIComponent(view.id)}`;
  return (
    <>
      <p class="muted">
        <a href="/">Leaderboard</a> ›{' '}
        <a
          href={`/?task=${encodeURIComponent(view.task)}&target=${encodeURIComponent(view.target)}`}
        >
          {view.task} on {view.target}
        </a>
      </p>
      <h1>{view.recipe}</h1>
      {result?.underReview ? (
        <p class="note" id="review">
          <span class="flag">under review</span> {result.reviewReason}
        </p>
      ) : (
        ''
      )}
      {view.status === 'failed' ? (
        <p class="note" role="alert">
          This submission failed: {view.error ?? 'no reason recorded'}
        </p>
      ) : (
        ''
      )}
      <Summary view={view} result={result} stored={stored} />
      <p class="exports">
        Exports: <a href={api}>status JSON</a>
        {result ? (
          <>
            , <a href={`${api}/report`}>full report JSON</a>
          </>
        ) : (
          ''
        )}
        .
      </p>
      {view.status === 'queued' || view.status === 'running' ? <Progress view={view} /> : ''}
      {stored ? (
        <>
          <Metrics report={stored.report} />
          <Qat stored={stored} />
          <Imported stored={stored} />
          <Checklist checks={stored.report.checks} level={stored.report.level} />
          <Hardware stored={stored} />
          <Stress stored={stored} />
          <Heatmap stored={stored} />
          <Tiers report={stored.report} />
        </>
      ) : result ? (
        <p class="note">The stored report of this result could not be read.</p>
      ) : (
        ''
      )}
      <section id="recipe" aria-labelledby="h-recipe">
        <h2 id="h-recipe">Recipe</h2>
        <pre>
          <code>{JSON.stringify(stored?.recipe ?? props.recipe, null, 2)}</code>
        </pre>
      </section>
      {result ? <Badges id={view.id} origin={props.origin} /> : ''}
    </>
  );
}
