/**
 * The maturity checks L1-L5 of the standard (docs/STANDARD.md), as pure functions over the
 * {@link Evidence} a run produced. Every check gives its id, level, pass / fail / 'not-run',
 * the measured value, the threshold, the evidence it read and why it passed or not. Levels are
 * cumulative: Ln needs every check of L1..Ln to pass.
 */
import type { MetricComparison } from '../evaluate/evaluate.ts';
import {
  type DequantArithmetic,
  isDynamic,
  type Target,
  type TargetId,
  type TensorScheme,
} from '../formats/targets.ts';
import type { PipelineResult } from '../pipeline/run.ts';

/** The integer scheme a run used or a target runs natively. */
export interface SchemeDescription {
  activations: TensorScheme;
  weights: TensorScheme;
  bias: Target['bias'];
  dequant: DequantArithmetic;
}

/** A digest pair of two independent executions of one recipe. */
export interface Reproducibility {
  /** The second execution's run id. */
  secondRunId: string;
  /** Digest of every (scale, zero-point) set, first and second run. */
  params: [string, string];
  /** Digest (or exact value) of the metric, first and second run. */
  metric: [string, string];
}

/** Progressive QAT evidence (a QAT submission: the service, or `cann-quant train`). */
export interface QatEvidence {
  stages: { tiers: ('low' | 'medium' | 'high')[]; simulatedArithmetic: boolean }[];
  /** The stage log (or its storage key). */
  stageLog: string;
  /** Same nodes and shapes as the reference model. */
  sameGraph: boolean;
  lossPoints: number;
  ptqLossPoints: number;
}

/** One feedback round (the pipeline produces none yet). */
export interface FeedbackRound {
  worstLayer: string;
  /** The worst layer was found from the deployment (emulator) report. */
  fromDeploymentReport: boolean;
  calibrationChanged: boolean;
  requantized: boolean;
  /** Measured recovery in points (may be negative). */
  recoveryPoints: number | null;
  storedInKnowledgeBase: boolean;
}

/** What a run produced that the checks read. Only what the service ran counts. */
export interface Evidence {
  runId: string;
  task: string;
  target: TargetId;
  recipe: string;
  /** Validation: FP32 vs INT8 over the evaluation split on the target's emulator. */
  evaluation?: {
    comparison: MetricComparison;
    samples: number;
    /** Size of the task's full evaluation split. */
    splitSize: number;
    executor: Target['executor'];
  };
  calibration: { samples: number; split: string; sampler: string };
  /** Calibration method per quantized layer. */
  methods: Record<string, { method: string; percentile?: number; tier?: string }>;
  /** Per-layer sensitivity: absent when it was not measured. */
  sensitivity?: { measuredByService: boolean; usedForTiers: boolean; layers: number };
  /** The loss predicted at calibration time, in points. */
  estimate?: { lossPoints: number; samples: number };
  scheme: { used: SchemeDescription; native: SchemeDescription };
  /** The correction was applied to the scored model. */
  biasCorrection: boolean;
  /**
   * `biasCorrection: 'auto'` recipes: the correction was computed and kept only if it lowered
   * the estimated loss; both estimates (points).
   */
  biasCorrectionAuto?: { applied: boolean; corrected: number; uncorrected: number };
  /** Bit-exactness of the emulation against the reference kernels on the check set. */
  fidelity?: { bitExact: boolean; checkSet: string; mismatches: number };
  reproducibility?: Reproducibility;
  qat?: QatEvidence;
  feedback?: { rounds: FeedbackRound[] };
  /** Loss per target of the same recipe (this target included or not). */
  crossHardware?: Partial<Record<TargetId, { runId: string; lossPoints: number }>>;
}

export type CheckId =
  | 'L1.runs'
  | 'L1.loss'
  | 'L1.reproducible'
  | 'L2.sensitivity'
  | 'L2.samples'
  | 'L2.estimate'
  | 'L3.format'
  | 'L3.bias'
  | 'L3.fidelity'
  | 'L3.loss'
  | 'L4.stages'
  | 'L4.architecture'
  | 'L4.gain'
  | 'L5.feedback'
  | 'L5.cross';

export type Level = 1 | 2 | 3 | 4 | 5;

/** One check's outcome. */
export interface CheckResult {
  id: CheckId;
  level: Level;
  /** 'not-run': the evidence needed does not exist (counts as not passed). */
  pass: boolean | 'not-run';
  value: number | string | boolean | null;
  threshold: string;
  /** Which run / phase / artefact the value comes from. */
  evidence: string;
  why: string;
}

/** Thresholds of the standard (points = percentage points of the task metric). */
export const THRESHOLDS = {
  l1LossPoints: 1.0,
  l2MaxSamples: 100,
  l2EstimatePoints: 0.3,
  l2MinMethods: 2,
  l3LossPoints: 0.5,
  l4MinStages: 3,
  l4LossPoints: 0.3,
  l5MinTargets: 3,
  l5LossPoints: 0.5,
} as const;

const pts = (x: number) => `${Math.round(x * 1e4) / 1e4} points`;
const round9 = (x: number) => Math.round(x * 1e9) / 1e9;

type Partial5 = Omit<CheckResult, 'id' | 'level'>;
const notRun = (threshold: string, why: string): Partial5 => ({
  pass: 'not-run',
  value: null,
  threshold,
  evidence: 'none',
  why,
});

function schemeText(s: SchemeDescription): string {
  const t = (x: TensorScheme) =>
    `${x.type} ${x.symmetric ? 'symmetric' : 'asymmetric'} ${x.granularity}`;
  return `activations ${t(s.activations)}; weights ${t(s.weights)}; bias ${s.bias}; dequant ${s.dequant}`;
}

const TIER_ORDER = { low: 0, medium: 1, high: 2 } as const;

/** The checks of one level each, in the standard's order. */
const CHECKS: Record<CheckId, (e: Evidence) => Partial5> = {
  'L1.runs': (e) => {
    const threshold = 'INT8 model executed on the target emulator over the full evaluation split';
    if (!e.evaluation) return notRun(threshold, 'the validation phase did not run');
    const { samples, splitSize, executor } = e.evaluation;
    const pass = samples === splitSize && samples > 0;
    return {
      pass,
      value: samples,
      threshold: `${splitSize} samples (full split)`,
      evidence: `run ${e.runId}: validate phase, ${samples} samples on ${executor} (${e.target})`,
      why: pass
        ? `all ${splitSize} evaluation samples ran on the ${e.target} emulator`
        : `${samples} of ${splitSize} evaluation samples ran`,
    };
  },
  'L1.loss': (e) => lossCheck(e, THRESHOLDS.l1LossPoints),
  'L1.reproducible': (e) => {
    const threshold = 'identical scale/zero-point sets and identical metric in a second run';
    const r = e.reproducibility;
    if (!r) return notRun(threshold, 'no second, independent execution of the recipe is recorded');
    const params = r.params[0] === r.params[1];
    const metric = r.metric[0] === r.metric[1];
    return {
      pass: params && metric,
      value:
        params && metric
          ? 'identical'
          : `${params ? '' : 'parameters '}${metric ? '' : 'metric '}differ`.trim(),
      threshold,
      evidence: `runs ${e.runId} and ${r.secondRunId}: parameter digests ${r.params.join(' / ')}, metric ${r.metric.join(' / ')}`,
      why:
        params && metric
          ? 'both runs produced the same parameters and metric'
          : 'the second run differs',
    };
  },
  'L2.sensitivity': (e) => {
    const methods = new Set(
      Object.values(e.methods).map((m) =>
        m.method === 'percentile' ? `percentile ${m.percentile ?? ''}`.trim() : m.method,
      ),
    );
    const s = e.sensitivity;
    const measured = s?.measuredByService === true && s.usedForTiers;
    const pass = measured && methods.size >= THRESHOLDS.l2MinMethods;
    return {
      pass,
      value: methods.size,
      threshold: `sensitivity measured by the service and used for tiers; >= ${THRESHOLDS.l2MinMethods} calibration methods across layers`,
      evidence: `run ${e.runId}: sensitivity phase (${s ? `${s.layers} layers` : 'not run'}); methods ${[...methods].join(', ') || 'none'}`,
      why: !s
        ? 'per-layer sensitivity was not measured'
        : !measured
          ? 'sensitivity was declared or not used to assign tiers'
          : pass
            ? `measured over ${s.layers} layers; ${methods.size} methods in use`
            : methods.has('dynamic')
              ? `measured over ${s.layers} layers, but no calibration method is in use: the target quantizes activations per input at run time`
              : `only ${methods.size} calibration method in use`,
    };
  },
  'L2.samples': (e) => {
    const { samples, split } = e.calibration;
    if (e.calibration.sampler === 'imported')
      return {
        pass: false,
        value: 0,
        threshold: `<= ${THRESHOLDS.l2MaxSamples} samples from the calibration split`,
        evidence: `run ${e.runId}: no sample phase (recipe.imported)`,
        why: "the scales were imported from another framework's quantization: no calibration ran here",
      };
    const pass = samples <= THRESHOLDS.l2MaxSamples && split === 'calibration';
    return {
      pass,
      value: samples,
      threshold: `<= ${THRESHOLDS.l2MaxSamples} samples from the calibration split`,
      evidence: `run ${e.runId}: sample phase (${e.calibration.sampler} sampler, ${split} split)`,
      why: pass
        ? `${samples} calibration samples`
        : split !== 'calibration'
          ? `samples came from the ${split} split`
          : `${samples} samples is more than ${THRESHOLDS.l2MaxSamples}`,
    };
  },
  'L2.estimate': (e) => {
    const threshold = `|estimated - measured| <= ${THRESHOLDS.l2EstimatePoints} points`;
    if (!e.estimate) return notRun(threshold, 'no loss was estimated at calibration time');
    if (!e.evaluation) return notRun(threshold, 'no measured loss (validation did not run)');
    const diff = round9(Math.abs(e.estimate.lossPoints - e.evaluation.comparison.lossPoints));
    const pass = diff <= THRESHOLDS.l2EstimatePoints;
    return {
      pass,
      value: diff,
      threshold,
      evidence: `run ${e.runId}: estimate phase ${pts(e.estimate.lossPoints)} (${e.estimate.samples} unlabelled samples) vs validate phase ${pts(e.evaluation.comparison.lossPoints)}`,
      why: `the estimate was off by ${pts(diff)}`,
    };
  },
  'L3.format': (e) => {
    const used = schemeText(e.scheme.used);
    const native = schemeText(e.scheme.native);
    const pass = used === native;
    return {
      pass,
      value: used,
      threshold: native,
      evidence: `run ${e.runId}: recipe format on target ${e.target}`,
      why: pass ? "the target's native scheme was used" : 'the scheme differs from the native one',
    };
  },
  'L3.bias': (e) => {
    // A QAT model's biases were trained under the target's simulated arithmetic: that is the
    // correction, and the post-training one is left off on purpose (core/recipe/qat.ts).
    const trained = e.qat?.stages.some((s) => s.simulatedArithmetic) ?? false;
    // 'auto': the correction was computed and judged on the unlabelled calibration split; left
    // off, it would have raised the estimated loss (docs/STANDARD.md, L3).
    const auto = e.biasCorrectionAuto;
    const pass = e.biasCorrection || trained || auto !== undefined;
    const estimates = auto
      ? `estimated loss ${auto.corrected.toFixed(3)} points corrected, ${auto.uncorrected.toFixed(3)} uncorrected`
      : '';
    return {
      pass,
      value: trained
        ? 'qat'
        : auto
          ? `auto: ${auto.applied ? 'applied' : 'left off'}`
          : e.biasCorrection,
      threshold:
        'bias correction applied (auto: computed and kept where it lowers the estimated loss)',
      evidence: trained
        ? `run ${e.runId}: QAT stage log`
        : `run ${e.runId}: bias phase${auto ? ', estimate phases' : ''}`,
      why: trained
        ? "biases trained by QAT under the target's simulated arithmetic (post-training correction not applied on top)"
        : auto
          ? auto.applied
            ? `bias correction applied: ${estimates}`
            : `bias correction computed and left off: ${estimates}`
          : e.biasCorrection
            ? 'bias correction ran'
            : e.calibration.sampler === 'imported'
              ? 'an imported quantization is scored as the framework made it: no bias correction here'
              : 'the recipe disabled bias correction',
    };
  },
  'L3.fidelity': (e) => {
    const threshold = 'emulation bit-identical to the reference kernels on the check set';
    const f = e.fidelity;
    if (!f)
      return notRun(
        threshold,
        e.evaluation?.executor === 'ort-qdq'
          ? "the target runs onnxruntime's own QDQ kernels: there is no emulation to compare with reference kernels"
          : 'no bit-exactness check against the reference kernels was run',
      );
    const pass = f.bitExact && f.mismatches === 0;
    return {
      pass,
      value: f.mismatches,
      threshold: '0 mismatching elements',
      evidence: `run ${e.runId}: fidelity check on ${f.checkSet}`,
      why: pass ? 'bit-identical' : `${f.mismatches} elements differ`,
    };
  },
  'L3.loss': (e) => lossCheck(e, THRESHOLDS.l3LossPoints),
  'L4.stages': (e) => {
    const threshold = `>= ${THRESHOLDS.l4MinStages} QAT stages ordered by tier, target arithmetic simulated, stage log kept`;
    const q = e.qat;
    if (!q)
      return notRun(
        threshold,
        'QAT did not run: no QAT model was submitted (recipe.qat, cann-quant train)',
      );
    const ordered = q.stages.every((s, i) => {
      if (i === 0) return true;
      const prev = new Set(q.stages[i - 1]!.tiers);
      const maxPrev = Math.max(...[...prev].map((t) => TIER_ORDER[t]));
      const added = s.tiers.filter((t) => !prev.has(t));
      return (
        [...prev].every((t) => s.tiers.includes(t)) && added.every((t) => TIER_ORDER[t] > maxPrev)
      );
    });
    const simulated = q.stages.every((s) => s.simulatedArithmetic);
    const pass =
      q.stages.length >= THRESHOLDS.l4MinStages && ordered && simulated && q.stageLog !== '';
    return {
      pass,
      value: q.stages.length,
      threshold,
      evidence: `run ${e.runId}: QAT stage log ${q.stageLog || '(missing)'}`,
      why: pass
        ? `${q.stages.length} stages, low -> high sensitivity, arithmetic simulated`
        : !ordered
          ? 'stages are not ordered by sensitivity tier'
          : !simulated
            ? "a stage did not simulate the target's arithmetic"
            : `only ${q.stages.length} stages or no stage log`,
    };
  },
  'L4.architecture': (e) => {
    const threshold = "the reference model's graph (same nodes and shapes)";
    if (!e.qat) return notRun(threshold, 'QAT did not run');
    return {
      pass: e.qat.sameGraph,
      value: e.qat.sameGraph,
      threshold,
      evidence: `run ${e.runId}: QAT model graph vs the reference`,
      why: e.qat.sameGraph ? 'same nodes and shapes' : 'the graph changed',
    };
  },
  'L4.gain': (e) => {
    const threshold = `QAT loss < PTQ loss and <= ${THRESHOLDS.l4LossPoints} points`;
    if (!e.qat) return notRun(threshold, 'QAT did not run');
    const { lossPoints, ptqLossPoints } = e.qat;
    const pass = lossPoints < ptqLossPoints && lossPoints <= THRESHOLDS.l4LossPoints;
    return {
      pass,
      value: lossPoints,
      threshold,
      evidence: `run ${e.runId}: QAT loss ${pts(lossPoints)} vs PTQ ${pts(ptqLossPoints)}`,
      why: pass ? 'QAT recovered accuracy' : 'QAT loss is not low enough',
    };
  },
  'L5.feedback': (e) => {
    const threshold =
      '>= 1 round: worst layer from the deployment report, calibration changed, re-quantized, recovery measured and stored';
    const f = e.feedback;
    if (!f || f.rounds.length === 0)
      return notRun(threshold, 'no feedback round ran (no deployment report is fed back yet)');
    const good = f.rounds.filter(
      (r) =>
        r.fromDeploymentReport &&
        r.calibrationChanged &&
        r.requantized &&
        r.recoveryPoints !== null &&
        r.storedInKnowledgeBase,
    );
    return {
      pass: good.length >= 1,
      value: good.length,
      threshold,
      evidence: `run ${e.runId}: feedback rounds on ${f.rounds.map((r) => r.worstLayer).join(', ')}`,
      why: good.length >= 1 ? `${good.length} complete round(s)` : 'no round completed every step',
    };
  },
  'L5.cross': (e) => {
    const threshold = `>= ${THRESHOLDS.l5MinTargets} targets, each with loss <= ${THRESHOLDS.l5LossPoints} points`;
    const results: Partial<Record<TargetId, { runId: string; lossPoints: number }>> = {
      ...(e.evaluation
        ? { [e.target]: { runId: e.runId, lossPoints: e.evaluation.comparison.lossPoints } }
        : {}),
      ...(e.crossHardware ?? {}),
    };
    const entries = Object.entries(results) as [TargetId, { runId: string; lossPoints: number }][];
    if (entries.length <= 1 && !e.crossHardware)
      return notRun(threshold, 'no cross-hardware validation was run');
    const ok = entries.filter(([, r]) => r.lossPoints <= THRESHOLDS.l5LossPoints);
    return {
      pass: ok.length >= THRESHOLDS.l5MinTargets,
      value: ok.length,
      threshold,
      evidence: entries.map(([t, r]) => `${t}: ${pts(r.lossPoints)} (run ${r.runId})`).join('; '),
      why: `${ok.length} of ${entries.length} targets within ${THRESHOLDS.l5LossPoints} points`,
    };
  },
};

function lossCheck(e: Evidence, max: number): Partial5 {
  const threshold = `loss <= ${max} points`;
  if (!e.evaluation) return notRun(threshold, 'the validation phase did not run');
  const c = e.evaluation.comparison;
  const pass = c.lossPoints <= max;
  return {
    pass,
    value: c.lossPoints,
    threshold,
    evidence: `run ${e.runId}: validate phase, ${c.metric} FP32 ${c.fp32} vs INT8 ${c.int8}`,
    why: `${c.lossPoints < 0 ? `gain of ${pts(-c.lossPoints)}` : `loss of ${pts(c.lossPoints)}`} ${pass ? '<=' : '>'} ${max}`,
  };
}

/** Every check of the standard, in order, over one run's evidence. */
export function runChecks(e: Evidence): CheckResult[] {
  return (Object.keys(CHECKS) as CheckId[]).map((id) => ({
    id,
    level: Number(id[1]) as Level,
    ...CHECKS[id](e),
  }));
}

/** One check by id. */
export function runCheck(id: CheckId, e: Evidence): CheckResult {
  return { id, level: Number(id[1]) as Level, ...CHECKS[id](e) };
}

/** Highest level n such that every check of L1..Ln passed (0 when an L1 check did not). */
export function levelEarned(checks: readonly CheckResult[]): 0 | Level {
  let earned: 0 | Level = 0;
  for (const level of [1, 2, 3, 4, 5] as const) {
    const own = checks.filter((c) => c.level === level);
    if (own.length === 0 || own.some((c) => c.pass !== true)) break;
    earned = level;
  }
  return earned;
}

/** The "trusted quantization" mark: L5.cross passes. */
export function trusted(checks: readonly CheckResult[]): boolean {
  return checks.some((c) => c.id === 'L5.cross' && c.pass === true);
}

/** Badge text, e.g. "quantization | L3 · QQI 3.84". */
export function badgeText(level: 0 | Level, qqiDisplay: string): string {
  return `quantization | L${level} · QQI ${qqiDisplay}`;
}

/** The native scheme of a target. */
export function nativeScheme(t: Target): SchemeDescription {
  return { activations: t.activations, weights: t.weights, bias: t.bias, dequant: t.dequant };
}

/** The scheme a recipe's format section selects on a target (what the quantizer applies). */
export function usedScheme(
  t: Target,
  format: {
    weights: 'per-channel' | 'per-tensor';
    activations: 'target' | 'symmetric' | 'asymmetric';
  },
): SchemeDescription {
  return {
    // DynamicQuantizeLinear is uint8 asymmetric: a dynamic target has no symmetry to choose
    activations:
      format.activations === 'target' || isDynamic(t)
        ? t.activations
        : { ...t.activations, symmetric: format.activations === 'symmetric' },
    weights:
      format.weights === 'per-tensor' ? { ...t.weights, granularity: 'per-tensor' } : t.weights,
    bias: t.bias,
    dequant: t.dequant,
  };
}

/**
 * Evidence from a pipeline run. What the pipeline does not produce (fidelity, a second run,
 * QAT, feedback, other targets) is passed in `extra` or stays absent (its checks 'not-run').
 */
export function evidenceFromPipeline(
  result: Pick<
    PipelineResult,
    | 'task'
    | 'recipe'
    | 'calibration'
    | 'methods'
    | 'sensitivity'
    | 'estimate'
    | 'evaluation'
    | 'biasCorrection'
  >,
  target: Target,
  extra: {
    runId: string;
    /** Size of the task's evaluation split (manifest); default: the samples evaluated. */
    evaluationSplitSize?: number;
  } & Pick<Evidence, 'fidelity' | 'reproducibility' | 'qat' | 'feedback' | 'crossHardware'>,
): Evidence {
  const { runId, evaluationSplitSize, ...rest } = extra;
  const ev = result.evaluation;
  return {
    runId,
    task: result.task,
    target: target.id,
    recipe: result.recipe.name,
    ...(ev
      ? {
          evaluation: {
            comparison: ev.comparison,
            samples: ev.samples,
            splitSize: evaluationSplitSize ?? ev.samples,
            executor: target.executor,
          },
        }
      : {}),
    calibration: {
      samples: result.calibration.samples.length,
      split: 'calibration',
      sampler: result.calibration.sampler,
    },
    // A dynamic target's activation ranges come from each input at run time, not from a method.
    methods: isDynamic(target)
      ? Object.fromEntries(
          Object.entries(result.methods).map(([k, m]) => [
            k,
            { method: 'dynamic', ...(m.tier ? { tier: m.tier } : {}) },
          ]),
        )
      : result.methods,
    ...(result.sensitivity
      ? {
          sensitivity: {
            measuredByService: true,
            usedForTiers: true,
            layers: result.sensitivity.length,
          },
        }
      : {}),
    ...(result.estimate
      ? { estimate: { lossPoints: result.estimate.lossPoints, samples: result.estimate.samples } }
      : {}),
    scheme: { used: usedScheme(target, result.recipe.format), native: nativeScheme(target) },
    biasCorrection: result.biasCorrection?.applied ?? result.recipe.format.biasCorrection === true,
    ...(result.biasCorrection?.estimatedLossPoints
      ? {
          biasCorrectionAuto: {
            applied: result.biasCorrection.applied,
            ...result.biasCorrection.estimatedLossPoints,
          },
        }
      : {}),
    ...rest,
  };
}
