/**
 * Scoring of one pipeline run, as docs/STANDARD.md defines it: the target's per-layer roofline
 * (speed-up, energy gain), the QQI with every factor, and the L1-L5 checks over the evidence the
 * run produced. Pure (no `node:` imports): the CLI and the service (workerd) call the same code.
 * Hashing uses `crypto.subtle`, present in Node 20 and in workerd.
 */
import type { MetricComparison } from '../evaluate/evaluate.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import { getTarget, isDynamic, type TimedTargetId } from '../formats/targets.ts';
import { importQdq } from '../import/qdq.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { decodeModel } from '../onnx/index.ts';
import type { PipelineResult } from '../pipeline/run.ts';
import { prepareModel } from '../quantize/prepare.ts';
import { parameterSets } from '../quantize/quantize.ts';
import {
  badgeText,
  type CheckResult,
  type Evidence,
  evidenceFromPipeline,
  type Level,
  levelEarned,
  runChecks,
  trusted,
} from './checks.ts';
import { checkFidelity, type FidelityReport, fidelityEvidence } from './fidelity.ts';
import { type PerfReport, perfModel } from './perf-model.ts';
import { type Qqi, qqi } from './qqi.ts';
import { inferShapes } from './shapes.ts';

/** Evidence produced outside the pipeline run itself (fidelity check, feedback, other targets). */
export type ExtraEvidence = Pick<Evidence, 'fidelity' | 'qat' | 'feedback' | 'crossHardware'>;

/** A measured (timed) speed-up of the INT8 model over FP32 on a real machine. */
export interface MeasuredSpeedup {
  /**
   * Target the timing ran on: `cpu-wasm` (onnxruntime-web's QDQ integer kernels) or
   * `cpu-wasm-dynamic` (its dynamic-quantization kernels).
   */
  target: TimedTargetId;
  /** Median FP32 / median INT8 latency. */
  speedup: number;
  fp32Ms: number;
  int8Ms: number;
  /** Timed repetitions per model and the batch size of each. */
  repeats: number;
  batch: number;
  /** Where it ran (e.g. CPU model, core count, load average). */
  machine: string;
}

/**
 * The float model whose layer names a run's layers carry: the task's model, or for an imported
 * quantization (recipe.imported) the float graph of the imported QDQ file (core/import), whose
 * nodes the framework named. Performance models, heatmaps and cross-hardware rows read it.
 */
export function layerSourceModel(
  result: Pick<PipelineResult, 'imported'>,
  model: Uint8Array,
  imported?: Uint8Array,
): ModelProto {
  if (!result.imported) return decodeModel(model);
  if (!imported)
    throw new Error('the run imported a quantized model: its bytes are needed (`imported`)');
  return importQdq(decodeModel(imported)).model;
}

/** Options of {@link scoreRun}. */
export interface ScoreRunOptions {
  /** The task's FP32 ONNX model (bytes). */
  model: Uint8Array;
  /**
   * The QDQ model of an imported quantization (recipe.imported): the performance model reads
   * its float graph, whose layer names the run's layers carry. Required for such runs.
   */
  imported?: Uint8Array;
  /** Size of the task's full evaluation split (manifest). */
  evaluationSplitSize: number;
  /** Id of this run (evidence strings cite it). */
  runId: string;
  /** A second, independent execution of the same recipe (L1.reproducible). */
  second?: PipelineResult;
  /** Id of the second run (default: `${runId}:shards=<its shard count>`). */
  secondRunId?: string;
  /** Evidence produced beside the run (fidelity, feedback rounds, cross-hardware losses). */
  evidence?: ExtraEvidence;
  /** A timed speed-up, reported beside the modelled one (never replaces it on modelled targets). */
  measured?: MeasuredSpeedup;
  /**
   * The task's calibration split: when given, the L3.fidelity check set (calibration samples)
   * runs the emulation against the reference kernels (core/score/fidelity.ts).
   */
  calibration?: BatchSource;
}

/** What {@link scoreRun} returns. */
export interface ScoredRun {
  runId: string;
  perf: PerfReport;
  qqi: Qqi;
  checks: CheckResult[];
  level: 0 | Level;
  badge: string;
  trusted: boolean;
  evidence: Evidence;
  /** Digest of every (scale, zero-point) set and int32 bias (see {@link paramsDigest}). */
  paramsDigest: string;
  measured?: MeasuredSpeedup;
  /** The L3.fidelity comparison (absent when not run or not applicable). */
  fidelity?: FidelityReport;
}

const hex = (buf: ArrayBuffer) =>
  [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * SHA-256 (hex) of every (scale, zero-point) set, bias (int32, or float on dynamic layers) and
 * integer weight tensor of a run.
 */
export async function paramsDigest(r: Pick<PipelineResult, 'layers'>): Promise<string> {
  const parts = await Promise.all(
    r.layers.map(
      async (l) =>
        JSON.stringify([
          l.name,
          l.act.scale,
          l.act.zeroPoint,
          [...l.weight.scales],
          [...l.weight.zeroPoints],
          [...l.bias],
          // a dynamic layer's float bias (what bias correction changes there); absent elsewhere
          ...(l.floatBias ? [[...l.floatBias]] : []),
        ]) +
        // The integer weights, since GPTQ rounding (format.weightRounding) chooses them from the
        // calibration samples too: the SHA-256 of their int32 bytes keeps the text small.
        hex(await crypto.subtle.digest('SHA-256', Int32Array.from(l.weight.q))),
    ),
  );
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(parts.join(''))));
}

/** Tier counts of a run (layers per high / medium / low; no tier counts as medium). */
export function tierCounts(r: Pick<PipelineResult, 'methods'>): Record<string, number> {
  const out: Record<string, number> = { high: 0, medium: 0, low: 0 };
  for (const m of Object.values(r.methods))
    out[m.tier ?? 'medium'] = (out[m.tier ?? 'medium'] ?? 0) + 1;
  return out;
}

/**
 * Scores a validated run: the per-layer roofline of the target (speed-up, energy gain), the QQI
 * with every factor, and the L1-L5 checks from this run's evidence.
 */
export async function scoreRun(result: PipelineResult, opts: ScoreRunOptions): Promise<ScoredRun> {
  if (!result.evaluation) throw new Error('scoreRun needs a validated run (evaluation missing)');
  const target = getTarget(result.target);
  const prepared = prepareModel(layerSourceModel(result, opts.model, opts.imported), target);
  const perf = perfModel(prepared.model, await inferShapes(prepared.model), target, {
    quantized: prepared.layers.filter((l) => result.layers.some((q) => q.name === l.name)),
  });
  const measuredHere = opts.measured && opts.measured.target === result.target;
  const q = qqi({
    comparison: result.evaluation.comparison,
    // A timed target (cpu-wasm) has no modelled speed-up: its measured ratio stands in.
    speedup: perf.speedup ?? (measuredHere ? opts.measured!.speedup : null),
    energyGain: perf.energyGain.value,
    ...(perf.speedup === null && measuredHere ? { speedupSource: 'measured' as const } : {}),
  });
  const digest = await paramsDigest(result);
  const second = opts.second;
  // The pipeline's fidelity phase made the report; older results are checked here.
  const fidelity =
    result.fidelity !== undefined
      ? result.fidelity
      : opts.calibration
        ? await checkFidelity(result, opts.calibration)
        : null;
  const evidence = evidenceFromPipeline(result, target, {
    runId: opts.runId,
    evaluationSplitSize: opts.evaluationSplitSize,
    ...(second
      ? {
          reproducibility: {
            secondRunId:
              opts.secondRunId ?? `${opts.runId}:shards=${second.phases[0]?.shards ?? 1}`,
            params: [digest, await paramsDigest(second)],
            metric: [
              JSON.stringify(result.evaluation.int8),
              JSON.stringify(second.evaluation?.int8),
            ],
          },
        }
      : {}),
    ...(fidelity ? { fidelity: fidelityEvidence(fidelity) } : {}),
    ...opts.evidence,
  });
  const checks = runChecks(evidence);
  const level = levelEarned(checks);
  return {
    runId: opts.runId,
    perf,
    qqi: q,
    checks,
    level,
    badge: badgeText(level, q.display),
    trusted: trusted(checks),
    evidence,
    paramsDigest: digest,
    ...(opts.measured ? { measured: opts.measured } : {}),
    ...(fidelity ? { fidelity } : {}),
  };
}

/** One quantized layer in a {@link RunReport}. */
export interface RunReportLayer {
  name: string;
  kind: string;
  tier: string | null;
  /** The activation calibration method; 'dynamic' on a dynamic target, 'imported' for imports. */
  method: string;
  percentile: number | null;
  /**
   * The layer's activation parameters. With method 'dynamic' these are the calibrated ones the
   * model does not use: it computes a scale and zero point from each input at run time.
   */
  activation: { scale: number; zeroPoint: number; qmin: number; qmax: number };
  weight: {
    granularity: 'per-tensor' | 'per-channel';
    channels: number;
    scaleMin: number;
    scaleMax: number;
    zeroPoints: number[];
  };
  /** Sensitivity measured for the layer (absent when the recipe disables it). */
  sqnrDb: number | null;
  /**
   * The method search's trials (the tier's method first): each method's one-layer output SQNR
   * and how much quieter than the tier's method it was (dB). Absent when the layer was not
   * searched, and in reports made before the search.
   */
  search?: { method: string; percentile: number | null; sqnrDb: number; gainDb: number | null }[];
  /**
   * GPTQ weight rounding (format.weightRounding 'gptq'): the output SQNR of the layer's weights
   * alone on the calibration inputs, rounded to nearest and as GPTQ chose them (null: no
   * rounding error at all). Absent when the weights were rounded to nearest.
   */
  rounding?: {
    method: 'gptq';
    nearestDb: number | null;
    gptqDb: number | null;
    channelsChanged: number;
  };
}

/** One row of the per-layer roofline in a {@link RunReport}. */
export interface RunReportPerfRow {
  node: string;
  opType: string;
  layer: string | null;
  macs: number;
  ops: number;
  int8: { precision: string; bytes: number; latencyS: number | null; bound: string | null };
  float: { precision: string; bytes: number; latencyS: number | null; bound: string | null };
  note: string | null;
}

/** A plain, JSON-serializable report of a scored run (what the service stores and shows). */
export interface RunReport {
  runId: string;
  task: string;
  target: string;
  recipe: string;
  metric: {
    name: string;
    fp32: number;
    int8: number;
    lossPoints: number;
    lossFraction: number;
    estimatedLossPoints: number | null;
    samples: number;
    all: { fp32: Record<string, number>; int8: Record<string, number> };
  };
  calibration: { samples: number; sampler: string; parameterSets: number };
  /**
   * An imported quantization (recipe.imported): the framework that made it, and per layer how
   * its parameters became the target's. Absent for calibrated runs.
   */
  imported?: PipelineResult['imported'];
  tiers: Record<string, number>;
  layers: RunReportLayer[];
  floatLayers: { name: string; opType: string; reason: string }[];
  perf: {
    modelled: boolean;
    floatPath: string;
    speedup: number | null;
    energyGain: { opEnergy: number | null; powerTime: number | null; used: string };
    totals: {
      macs: number;
      ops: number;
      int8: { bytes: number; latencyS: number | null; energyJ: number };
      float: { bytes: number; latencyS: number | null; energyJ: number };
    };
    rows: RunReportPerfRow[];
    notes: string[];
    measured: MeasuredSpeedup | null;
  };
  qqi: {
    value: number | null;
    display: string;
    text: string;
    loss: number;
    gain: number;
    speedup: number | null;
    speedupSource: string;
    energyGain: number | null;
    energySource: string;
    missing: string | null;
  };
  checks: {
    id: string;
    level: number;
    pass: boolean | 'not-run';
    value: number | string | boolean | null;
    threshold: string;
    evidence: string;
    why: string;
  }[];
  /** L3.fidelity: the emulation against the reference kernels (null: not run / not applicable). */
  fidelity: FidelityReport | null;
  level: number;
  badge: string;
  trusted: boolean;
  paramsDigest: string;
  phases: { phase: string; shards: number; seconds: number }[];
  /**
   * What the recipe asks for that does not apply to this model and data
   * (core/recipe/warnings.ts); absent in reports made before warnings existed.
   */
  warnings?: string[];
}

const cost = (c: {
  precision: string;
  bytes: number;
  latency: number | null;
  bound: string | null;
}) => ({
  precision: c.precision,
  bytes: c.bytes,
  latencyS: c.latency,
  bound: c.bound,
});

/** The run and its score as one plain JSON-serializable object. */
export function runReport(result: PipelineResult, scored: ScoredRun): RunReport {
  const ev = result.evaluation;
  if (!ev) throw new Error('runReport needs a validated run (evaluation missing)');
  const c: MetricComparison = ev.comparison;
  const sqnr = new Map((result.sensitivity ?? []).map((t) => [t.name, t.sqnrDb]));
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  const rounding = new Map(
    (result.rounding ?? []).map((r) => [
      r.layer,
      {
        method: 'gptq' as const,
        nearestDb: finite(r.nearestDb),
        gptqDb: finite(r.gptqDb),
        channelsChanged: r.channelsChanged,
      },
    ]),
  );
  const { perf, qqi: q } = scored;
  return {
    runId: scored.runId,
    task: result.task,
    target: result.target,
    recipe: result.recipe.name,
    metric: {
      name: c.metric,
      fp32: c.fp32,
      int8: c.int8,
      lossPoints: c.lossPoints,
      lossFraction: c.lossFraction,
      estimatedLossPoints: result.estimate?.lossPoints ?? null,
      samples: ev.samples,
      all: { fp32: { ...ev.fp32 }, int8: { ...ev.int8 } },
    },
    calibration: {
      samples: result.calibration.samples.length,
      sampler: result.calibration.sampler,
      parameterSets: parameterSets(result),
    },
    ...(result.imported ? { imported: result.imported } : {}),
    tiers: tierCounts(result),
    layers: result.layers.map((l) => {
      const m = result.methods[l.name];

      const scales = [...l.weight.scales];
      // A dynamic target's model computes activation scales per input: no method chose them.
      const dynamic = isDynamic(getTarget(result.target));
      return {
        name: l.name,
        kind: l.kind,
        tier: m?.tier ?? null,
        method: dynamic ? 'dynamic' : (m?.method ?? (result.imported ? 'imported' : 'unknown')),
        percentile: dynamic ? null : (m?.percentile ?? null),
        activation: {
          scale: l.act.scale,
          zeroPoint: l.act.zeroPoint,
          qmin: l.act.qmin,
          qmax: l.act.qmax,
        },
        weight: {
          granularity: scales.length > 1 ? 'per-channel' : 'per-tensor',
          channels: scales.length,
          scaleMin: Math.min(...scales),
          scaleMax: Math.max(...scales),
          zeroPoints: [...new Set(l.weight.zeroPoints)].sort((a, b) => a - b),
        },
        sqnrDb: sqnr.get(l.name) ?? null,
        ...(m?.search
          ? {
              search: m.search.map((t) => ({
                method: t.method,
                percentile: t.percentile ?? null,
                sqnrDb: t.sqnrDb,
                gainDb: t.gainDb ?? null,
              })),
            }
          : {}),
        ...(rounding.has(l.name) ? { rounding: rounding.get(l.name)! } : {}),
      };
    }),
    floatLayers: result.skipped.map((s) => ({ name: s.name, opType: s.opType, reason: s.reason })),
    perf: {
      modelled: perf.modelled,
      floatPath: perf.floatPath,
      speedup: perf.speedup,
      energyGain: {
        opEnergy: perf.energyGain.opEnergy,
        powerTime: perf.energyGain.powerTime,
        used: perf.energyGain.used,
      },
      totals: {
        macs: perf.totals.macs,
        ops: perf.totals.ops,
        int8: {
          bytes: perf.totals.int8.bytes,
          latencyS: perf.totals.int8.latency,
          energyJ: perf.totals.int8.energy.opEnergy,
        },
        float: {
          bytes: perf.totals.float.bytes,
          latencyS: perf.totals.float.latency,
          energyJ: perf.totals.float.energy.opEnergy,
        },
      },
      rows: perf.layers.map((r) => ({
        node: r.node,
        opType: r.opType,
        layer: r.layer ?? null,
        macs: r.macs,
        ops: r.ops,
        int8: cost(r.int8),
        float: cost(r.float),
        note: r.note ?? null,
      })),
      notes: [...perf.notes],
      measured: scored.measured ?? null,
    },
    qqi: {
      value: q.value,
      display: q.display,
      text: q.text,
      loss: q.loss,
      gain: q.gain,
      speedup: q.speedup,
      speedupSource: q.speedupSource,
      energyGain: q.energyGain,
      energySource: q.energySource,
      missing: q.missing ?? null,
    },
    checks: scored.checks.map((k) => ({
      id: k.id,
      level: k.level,
      pass: k.pass,
      value: k.value,
      threshold: k.threshold,
      evidence: k.evidence,
      why: k.why,
    })),
    fidelity: scored.fidelity
      ? { ...scored.fidelity, layers: scored.fidelity.layers.map((l) => ({ ...l })) }
      : null,
    level: scored.level,
    badge: scored.badge,
    trusted: scored.trusted,
    paramsDigest: scored.paramsDigest,
    phases: result.phases.map((p) => ({ ...p })),
    warnings: [...result.warnings],
  };
}

const short = (v: CheckResult['value']): string => {
  if (v === null) return '';
  if (typeof v === 'number') return String(Number(v.toPrecision(4)));
  const s = String(v);
  return s.length > 20 ? `${s.slice(0, 19)}…` : s;
};

/**
 * The compact certification checklist: one line per level (`+` pass, `x` fail, `-` not run, with
 * the measured value), then one line per check that did not pass, saying why.
 */
export function checklistLines(checks: readonly CheckResult[]): string[] {
  const mark = (c: CheckResult) => (c.pass === true ? '+' : c.pass === false ? 'x' : '-');
  const lines: string[] = [];
  for (const level of [1, 2, 3, 4, 5] as const) {
    const own = checks.filter((c) => c.level === level);
    const state = own.every((c) => c.pass === true)
      ? 'pass'
      : own.some((c) => c.pass === false)
        ? 'FAIL'
        : 'n/a ';
    lines.push(
      `  L${level} ${state}  ${own
        .map((c) => {
          const v =
            c.id === 'L3.format' ? (c.pass === true ? 'native' : 'not native') : short(c.value);
          return `${mark(c)} ${c.id.slice(3)}${v ? ` ${v}` : ''}`;
        })
        .join('   ')}`,
    );
  }
  for (const c of checks)
    if (c.pass !== true) lines.push(`    ${c.pass === false ? 'x' : '-'} ${c.id}: ${c.why}`);
  return lines;
}
