/**
 * The report of a scored submission: one function shared by the service's reduce
 * (functions/service/runs.ts `finalize`) and Node (`cann-quant score`, test fixtures), so that a
 * recipe scored by the service and locally gives the same document.
 */
import { spreadIndices } from '../calibrate/sampler.ts';
import { compareMetric } from '../evaluate/evaluate.ts';
import { type LayerErrorReport, measureLayerErrors } from '../evaluate/layer-errors.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import type { StressReport } from '../evaluate/stress.ts';
import type { PipelineResult } from '../pipeline/run.ts';
import type { Recipe } from '../recipe/schema.ts';
import { type CrossHardwareReport, crossHardwareEvidence } from './cross-hardware.ts';
import {
  layerSourceModel,
  type RunReport,
  runReport,
  type ScoredRun,
  scoreRun,
} from './score-run.ts';

/** Evaluation samples behind a submission's per-layer error heatmap. */
export const HEATMAP_SAMPLES = 200;

/** INT8 more than this many points above its FP32 reference puts a result under review. */
export const REVIEW_GAIN_POINTS = 0.5;

/** The report of a scored submission as stored (R2 in the service). */
export interface StoredReport {
  submission: { id: string; submitter: string; createdAt: number; recipeHash: string };
  /** The validated recipe (defaults filled). */
  recipe: Recipe;
  /** The independent second execution behind L1.reproducible. */
  reproduction: { runId: string; shards: number } | null;
  report: RunReport;
  /**
   * Per-layer output error of the INT8 emulation against FP32 over a spread of
   * {@link HEATMAP_SAMPLES} evaluation samples (inputs only); render with core/report/heatmap.ts.
   */
  layerErrors: LayerErrorReport | null;
  /** Per-layer op type, and why a layer stayed in float (heatmap labels). */
  layerMeta: Record<string, { opType: string; keptFloatReason?: string }>;
  /** Why the result is flagged for review (null: not flagged). */
  reviewReason: string | null;
  /** The same recipe on every cross-hardware target (null: not run). */
  crossHardware: CrossHardwareReport | null;
  /**
   * Robustness stress tests of the primary run (recipe.validation.stress; null: not asked for;
   * absent in reports stored before they existed).
   */
  stress?: StressReport | null;
  /**
   * A QAT submission (recipe.qat): the primary run scored the QAT model, and its loss is
   * measured against the FP32 reference model (the task's own), which a PTQ run of the same
   * recipe on that model also measured. Null for ordinary submissions.
   */
  qat: {
    model: string;
    /** The QAT model's own FP32 metric (not the reference: its weights aim at INT8). */
    qatFp32: number;
    fp32Reference: number;
    int8: number;
    lossPoints: number;
    ptq: { runId: string; int8: number; lossPoints: number };
    sameGraph: { same: boolean; why?: string };
    aboveReference: boolean;
  } | null;
}

/** The PTQ comparison of a QAT submission (see {@link StoredReport.qat}). */
export interface QatInputs {
  /** The same recipe without `qat`, run on the task's FP32 model. */
  ptq: { runId: string; result: PipelineResult };
  /** The QAT model against the reference graph (L4.architecture). */
  sameGraph: { same: boolean; why?: string };
}

/** What {@link buildSubmissionReport} needs. */
export interface SubmissionReportInputs {
  submission: StoredReport['submission'];
  /** The task's FP32 model bytes. */
  model: Uint8Array;
  evaluationSplitSize: number;
  calibration: BatchSource;
  evaluation: BatchSource;
  primary: { runId: string; result: PipelineResult };
  reproduction?: { runId: string; shards: number; result: PipelineResult };
  /** The recipe on the other targets (core/score/cross-hardware.ts): table and L5.cross evidence. */
  crossHardware?: CrossHardwareReport;
  /** Present for a QAT submission: `model` is then the QAT model's bytes. */
  qat?: QatInputs;
  /** The QDQ file of an imported quantization (recipe.imported). */
  imported?: Uint8Array;
}

/**
 * A QAT run measured against the FP32 reference model: the FP32 metrics (and so the loss) are
 * the PTQ run's, on the task's model; the INT8 metrics are the QAT model's.
 */
function againstReference(result: PipelineResult, ptq: PipelineResult): PipelineResult {
  const e = result.evaluation!;
  const ref = ptq.evaluation!;
  return {
    ...result,
    evaluation: {
      ...e,
      fp32: ref.fp32,
      comparison: compareMetric(e.comparison.metric, ref.fp32, e.int8),
    },
  };
}

/** Scores the primary run (the reproduction as L1.reproducible evidence) and builds the report. */
export async function buildSubmissionReport(
  i: SubmissionReportInputs,
): Promise<{ stored: StoredReport; scored: ScoredRun }> {
  const result = i.qat ? againstReference(i.primary.result, i.qat.ptq.result) : i.primary.result;
  const second =
    i.reproduction && i.qat
      ? againstReference(i.reproduction.result, i.qat.ptq.result)
      : i.reproduction?.result;
  const recipeQat = i.primary.result.recipe.qat;
  const ptqComparison = i.qat?.ptq.result.evaluation?.comparison;
  const qatEvidence =
    i.qat && ptqComparison && recipeQat
      ? {
          stages: recipeQat.stages,
          stageLog:
            recipeQat.stages.length > 0
              ? `recipe.qat.stages (${recipeQat.stages.length} stages, reported with the submission)`
              : '',
          sameGraph: i.qat.sameGraph.same,
          lossPoints: result.evaluation!.comparison.lossPoints,
          ptqLossPoints: ptqComparison.lossPoints,
        }
      : undefined;
  const scored = await scoreRun(result, {
    model: i.model,
    ...(i.imported ? { imported: i.imported } : {}),
    evaluationSplitSize: i.evaluationSplitSize,
    runId: i.primary.runId,
    ...(i.reproduction && second ? { second, secondRunId: i.reproduction.runId } : {}),
    calibration: i.calibration,
    evidence: {
      ...(i.crossHardware ? { crossHardware: crossHardwareEvidence(i.crossHardware) } : {}),
      ...(qatEvidence ? { qat: qatEvidence } : {}),
    },
  });
  const report = runReport(result, scored);
  const layerErrors =
    result.layers.length > 0
      ? await measureLayerErrors(
          layerSourceModel(result, i.model, i.imported),
          result.emulation,
          result.layers.map((l) => ({ name: l.name, output: l.output })),
          i.evaluation,
          { indices: spreadIndices(i.evaluation.size, HEATMAP_SAMPLES) },
          {
            session: {
              graphOptimizationLevel: result.emulation === result.qdq ? 'all' : 'disabled',
            },
          },
        )
      : null;
  const layerMeta = Object.fromEntries([
    ...result.layers.map((l) => [l.name, { opType: l.kind }] as const),
    ...result.skipped.map(
      (l) => [l.name, { opType: l.opType, keptFloatReason: l.reason }] as const,
    ),
  ]);
  const c = result.evaluation!.comparison;
  const aboveReference = i.qat !== undefined && c.int8 > c.fp32;
  const reviewReason = aboveReference
    ? `the QAT model's INT8 ${c.metric} ${c.int8} is above the FP32 reference model's ${c.fp32}`
    : c.lossPoints < -REVIEW_GAIN_POINTS
      ? `INT8 ${c.metric} is ${(-c.lossPoints).toFixed(2)} points above the FP32 reference`
      : scored.checks.some((k) => k.level === 1 && k.pass === false)
        ? `L1 failed: ${scored.checks
            .filter((k) => k.level === 1 && k.pass === false)
            .map((k) => k.id)
            .join(', ')}`
        : null;
  return {
    scored,
    stored: {
      submission: i.submission,
      recipe: result.recipe,
      reproduction: i.reproduction
        ? { runId: i.reproduction.runId, shards: i.reproduction.shards }
        : null,
      report,
      layerErrors,
      layerMeta,
      reviewReason,
      crossHardware: i.crossHardware ?? null,
      stress: i.primary.result.stress ?? null,
      qat:
        i.qat && recipeQat && ptqComparison
          ? {
              model: recipeQat.model,
              qatFp32: i.primary.result.evaluation!.comparison.fp32,
              fp32Reference: c.fp32,
              int8: c.int8,
              lossPoints: c.lossPoints,
              ptq: {
                runId: i.qat.ptq.runId,
                int8: ptqComparison.int8,
                lossPoints: ptqComparison.lossPoints,
              },
              sameGraph: i.qat.sameGraph,
              aboveReference,
            }
          : null,
    },
  };
}
