/**
 * Cross-hardware validation (docs/STANDARD.md, L5.cross): one recipe evaluated on every target,
 * each with its own integer arithmetic (the target's emulator, or onnxruntime's QDQ kernels on
 * cpu-wasm), beside the target's modelled latency, throughput, power and energy. Pure: the CLI
 * runs the pipelines and hands the results over; the service can do the same.
 */
import { getTarget, isDynamic, type Target, type TargetId } from '../formats/targets.ts';
import type { PipelineResult } from '../pipeline/run.ts';
import { prepareModel } from '../quantize/prepare.ts';
import type { Recipe } from '../recipe/schema.ts';
import { type Evidence, THRESHOLDS } from './checks.ts';
import { type PerfReport, perfModel } from './perf-model.ts';
import { sig3 } from './qqi.ts';
import { layerSourceModel, type MeasuredSpeedup } from './score-run.ts';
import { inferShapes } from './shapes.ts';

/**
 * The targets of the standard's cross-hardware validation, in the order reports show them (other
 * targets, e.g. W4A8 variants, can be asked for explicitly).
 */
export const CROSS_TARGETS: readonly TargetId[] = [
  'ascend310',
  'ascend310p',
  'nvidia-t4',
  'snapdragon',
  'cpu-wasm',
];

/**
 * The other targets a run is validated on: the standard's five, except its own. A run that
 * imported a dynamically quantized file has none: the five take calibrated activation scales,
 * which that file does not have (core/import/layers.ts, importKindRefusal).
 */
export function crossTargetsFor(
  primary: Pick<PipelineResult, 'target' | 'imported'>,
  targets: readonly TargetId[] = CROSS_TARGETS,
): TargetId[] {
  if (primary.imported?.format === 'dynamic')
    return targets.filter((t) => isDynamic(getTarget(t)) && t !== primary.target);
  return targets.filter((t) => t !== primary.target);
}

/**
 * The recipe for another target. On a target whose INT8 model runs on onnxruntime's own QDQ
 * kernels (cpu-wasm) the methods the reference run chose per layer (tiers included) become
 * per-layer overrides and the sensitivity phase is skipped: the row shows the reference run's
 * calibration choices on ORT's kernels, not choices re-measured there (a run that targets
 * cpu-wasm itself measures sensitivity on those kernels). Elsewhere only the target changes
 * (sensitivity is re-measured with that target's arithmetic).
 */
export function recipeForTarget(
  recipe: Recipe,
  target: TargetId,
  reference?: Pick<PipelineResult, 'methods'>,
): Recipe {
  if (getTarget(target).executor !== 'ort-qdq' || !recipe.sensitivity.enabled || !reference)
    return {
      ...recipe,
      target,
      ...(getTarget(target).executor === 'ort-qdq'
        ? { sensitivity: { ...recipe.sensitivity, enabled: false } }
        : {}),
    };
  const layers: Recipe['layers'] = { ...recipe.layers };
  for (const [name, m] of Object.entries(reference.methods))
    layers[name] = {
      ...layers[name],
      method: m.method,
      ...(m.percentile !== undefined ? { percentile: m.percentile } : {}),
      ...(m.tier ? { tier: m.tier as 'high' | 'medium' | 'low' } : {}),
    };
  return { ...recipe, target, layers, sensitivity: { ...recipe.sensitivity, enabled: false } };
}

/** One target's row. */
export interface CrossHardwareRow {
  target: TargetId;
  name: string;
  runId: string;
  /** What computed the INT8 outputs. */
  executor: Target['executor'];
  /** The arithmetic applied: activation / weight scheme, quant and dequant. */
  arithmetic: string;
  metric: string;
  fp32: number;
  int8: number;
  lossPoints: number;
  /** loss <= THRESHOLDS.l5LossPoints. */
  withinL5: boolean;
  floatLayers: number;
  /** The roofline model at batch 1 (null on timed targets). */
  modelled: {
    floatPath: Target['floatPath'];
    int8LatencyS: number;
    floatLatencyS: number;
    speedup: number;
    /** Inferences per second at batch 1 (1 / INT8 latency). */
    throughput: number;
    /** The target's one power figure (W), with its confidence. */
    powerW: number;
    powerConfidence: string;
    /** INT8 energy per inference: op-energy (QQI) and power x time. */
    energyJ: { opEnergy: number; powerTime: number };
    energyGain: number;
  } | null;
  measured: MeasuredSpeedup | null;
  /** Why a modelled figure is missing, or why the loss misses L5. */
  notes: string[];
}

/** The table and the evidence it gives L5.cross. */
export interface CrossHardwareReport {
  task: string;
  recipe: string;
  rows: CrossHardwareRow[];
  /** Targets with loss <= 0.5 points. */
  passing: TargetId[];
  l5: { pass: boolean; threshold: string };
}

const describeArithmetic = (t: Target) =>
  `act ${t.activations.type} ${t.activations.symmetric ? 'sym' : 'asym'}, w ${t.weights.type} ${t.weights.symmetric ? 'sym' : 'asym'} ${t.weights.granularity}, quant ${t.quant}, dequant ${t.dequant}`;

/** The modelled columns of a row, from the target's performance model. */
function modelledColumns(perf: PerfReport, t: Target): CrossHardwareRow['modelled'] {
  const { int8, float } = perf.totals;
  if (!perf.modelled || perf.speedup === null || int8.latency === null || float.latency === null)
    return null;
  return {
    floatPath: t.floatPath,
    int8LatencyS: int8.latency,
    floatLatencyS: float.latency,
    speedup: perf.speedup,
    throughput: 1 / int8.latency,
    powerW: t.peak.power.value,
    powerConfidence: t.peak.power.confidence,
    energyJ: { opEnergy: int8.energy.opEnergy, powerTime: int8.energy.powerTime ?? 0 },
    energyGain: perf.energyGain.value ?? 0,
  };
}

/**
 * Builds the table from one validated run per target (any order; rows follow CROSS_TARGETS).
 * `model` is the task's FP32 model (`imported`: the QDQ file of an imported quantization);
 * `measured` the timed cpu-wasm speed-up, if any.
 */
export async function crossHardware(
  runs: readonly { run: PipelineResult; runId: string }[],
  model: Uint8Array,
  opts: { measured?: MeasuredSpeedup; imported?: Uint8Array } = {},
): Promise<CrossHardwareReport> {
  const fp32 = layerSourceModel(runs[0]?.run ?? {}, model, opts.imported);
  const rows: CrossHardwareRow[] = [];
  const order = [
    ...CROSS_TARGETS,
    ...runs.map((r) => r.run.target).filter((t) => !CROSS_TARGETS.includes(t)),
  ];
  for (const id of order) {
    const entry = runs.find((r) => r.run.target === id);
    if (!entry) continue;
    const { run, runId } = entry;
    const c = run.evaluation?.comparison;
    if (!c) throw new Error(`crossHardware: the ${id} run was not validated`);
    const t = getTarget(id);
    const prepared = prepareModel(fp32, t);
    const perf = perfModel(prepared.model, await inferShapes(prepared.model), t, {
      quantized: prepared.layers.filter((l) => run.layers.some((q) => q.name === l.name)),
    });
    const withinL5 = c.lossPoints <= THRESHOLDS.l5LossPoints;
    const notes: string[] = [];
    if (!perf.modelled) notes.push('timed, not modelled: no latency, power or energy figures');
    if (!withinL5)
      notes.push(
        `loss ${sig3(c.lossPoints)} points > ${THRESHOLDS.l5LossPoints} with this target's arithmetic`,
      );
    if (run.skipped.length > 0) notes.push(`${run.skipped.length} weighted layers stay float`);
    rows.push({
      target: id,
      name: t.name,
      runId,
      executor: t.executor,
      arithmetic: describeArithmetic(t),
      metric: c.metric,
      fp32: c.fp32,
      int8: c.int8,
      lossPoints: c.lossPoints,
      withinL5,
      floatLayers: run.skipped.length,
      modelled: modelledColumns(perf, t),
      measured: id === 'cpu-wasm' ? (opts.measured ?? null) : null,
      notes,
    });
  }
  const first = runs[0]?.run;
  const passing = rows.filter((r) => r.withinL5).map((r) => r.target);
  return {
    task: first?.task ?? '',
    recipe: first?.recipe.name ?? '',
    rows,
    passing,
    l5: {
      pass: passing.length >= THRESHOLDS.l5MinTargets,
      threshold: `>= ${THRESHOLDS.l5MinTargets} targets with loss <= ${THRESHOLDS.l5LossPoints} points`,
    },
  };
}

/** The evidence L5.cross reads (loss per target, citing each run). */
export function crossHardwareEvidence(
  report: CrossHardwareReport,
): NonNullable<Evidence['crossHardware']> {
  return Object.fromEntries(
    report.rows.map((r) => [r.target, { runId: r.runId, lossPoints: r.lossPoints }]),
  );
}

const us = (s: number) => `${sig3(s * 1e6)} us`;

/** The report as a fixed-width text table. */
export function crossHardwareTable(report: CrossHardwareReport): string {
  const head = [
    'target',
    'INT8 metric',
    'loss pts',
    'L5',
    'INT8 latency',
    'speed-up',
    'throughput/s',
    'power W',
    'energy/inf',
    'energy gain',
  ];
  const body = report.rows.map((r) => {
    const m = r.modelled;
    return [
      r.target,
      r.int8.toFixed(4),
      r.lossPoints.toFixed(2),
      r.withinL5 ? 'ok' : 'no',
      m ? us(m.int8LatencyS) : 'timed',
      m ? sig3(m.speedup) : r.measured ? `${sig3(r.measured.speedup)} meas.` : 'n/a',
      m ? sig3(m.throughput) : 'n/a',
      m ? `${m.powerW} (${m.powerConfidence})` : 'n/a',
      m ? `${sig3(m.energyJ.opEnergy * 1e6)} uJ` : 'n/a',
      m ? sig3(m.energyGain) : 'n/a',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const first = report.rows[0];
  return [
    `cross-hardware: ${report.recipe}  task ${report.task}  ${first ? `${first.metric} FP32 ${first.fp32.toFixed(4)}` : ''}`,
    line(head),
    ...body.map(line),
    `L5.cross ${report.l5.pass ? 'pass' : 'FAIL'}: ${report.passing.length} of ${report.rows.length} targets within ${THRESHOLDS.l5LossPoints} points (${report.passing.join(', ') || 'none'})`,
    ...report.rows.flatMap((r) => r.notes.map((n) => `  ${r.target}: ${n}`)),
  ].join('\n');
}
