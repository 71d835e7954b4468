/**
 * The feedback loop (docs/STANDARD.md, L5.feedback): from a validated run, find the layers whose
 * own quantization costs most on the deployment arithmetic (each layer alone quantized with the
 * run's own parameters, on the target's emulator, measured at the model output), propose a
 * change (another calibration method, a wider clip, keep in fp16), re-quantize and re-validate
 * with the change as per-layer recipe overrides, and keep it only if the measured loss drops.
 * Every try is recorded in a {@link KnowledgeBase}, which is consulted first for similar layers.
 *
 * Pure: the caller supplies how a recipe is run (the pipeline, validated) and the calibration
 * split; the CLI and the service plug in their own.
 */

import { spreadIndices } from '../calibrate/sampler.ts';
import { measureSensitivity } from '../calibrate/sensitivity.ts';
import type { MetricComparison } from '../evaluate/evaluate.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import { getTarget } from '../formats/targets.ts';
import { decodeModel } from '../onnx/index.ts';
import type { PipelineResult } from '../pipeline/run.ts';
import { prepareModel } from '../quantize/prepare.ts';
import type { Recipe } from '../recipe/schema.ts';
import type { FeedbackRound } from '../score/checks.ts';
import type { TensorData } from '../tensor/index.ts';
import type {
  KnowledgeBase,
  KnowledgeEntry,
  LayerSignature,
  Suggestion,
} from './knowledge-base.ts';

/** One layer's own cost: the model with only this layer quantized vs the target's float path. */
export interface LayerDeviation {
  name: string;
  sqnrDb: number;
  agreement: number | null;
}

/** "max", "mse", "percentile 99.99". */
export function methodLabel(m: { method: string; percentile?: number } | undefined): string {
  if (!m) return 'unknown';
  return m.method === 'percentile' ? `percentile ${m.percentile ?? ''}`.trim() : m.method;
}

/**
 * Default suggestions for a layer calibrated with `m`, in the order tried: another method (MSE
 * clip search, KL with smoothing), a wider clip, and last keeping the layer in float.
 */
export function defaultSuggestions(m: { method: string; percentile?: number }): Suggestion[] {
  const mse: Suggestion = { label: 'mse', override: { method: 'mse' } };
  const kls: Suggestion = { label: 'kl-smooth', override: { method: 'kl-smooth' } };
  const p9999: Suggestion = {
    label: 'percentile 99.99 (wider clip)',
    override: { method: 'percentile', percentile: 99.99 },
  };
  const p99999: Suggestion = {
    label: 'percentile 99.999 (wider clip)',
    override: { method: 'percentile', percentile: 99.999 },
  };
  const max: Suggestion = { label: 'max (widest clip)', override: { method: 'max' } };
  const fp: Suggestion = { label: 'keep in float', override: { keepFloat: true } };
  switch (m.method) {
    case 'max':
      return [mse, kls, p9999, fp];
    case 'kl':
      return [mse, p9999, kls, max, fp];
    case 'kl-smooth':
      return [mse, p9999, max, fp];
    case 'mse':
      return [p99999, kls, max, fp];
    default:
      return (m.percentile ?? 100) < 99.999 ? [mse, p99999, max, fp] : [mse, max, kls, fp];
  }
}

/** The signature of one quantized layer of a run. */
export function layerSignature(r: PipelineResult, name: string): LayerSignature {
  const i = r.layers.findIndex((l) => l.name === name);
  const l = r.layers[i];
  if (!l) throw new RangeError(`layerSignature: no quantized layer '${name}'`);
  return {
    task: r.task,
    target: r.target,
    layer: name,
    kind: l.kind,
    grouped: (l.conv?.group ?? 1) > 1,
    position: i === 0 ? 'first' : i === r.layers.length - 1 ? 'last' : 'middle',
    method: methodLabel(r.methods[name]),
    weights: r.recipe.format.weights,
  };
}

/**
 * Each quantized layer of the run alone on the target's arithmetic (its own deployed
 * parameters), measured at the model output on calibration samples against the target's float
 * path; worst (lowest SQNR, then lowest agreement) first. Needs a target with an emulator.
 */
export async function locateCostliestLayers<P>(
  r: PipelineResult,
  model: Uint8Array,
  calibration: BatchSource,
  opts: { samples?: number; predict?: (out: Record<string, TensorData>, n: number) => P[] } = {},
): Promise<LayerDeviation[]> {
  const target = getTarget(r.target);
  if (target.executor !== 'lowered-emulator')
    throw new RangeError(`the feedback loop needs an emulated target (${r.target} is timed only)`);
  const prepared = prepareModel(decodeModel(model), target);
  const indices = spreadIndices(calibration.size, Math.min(opts.samples ?? 200, calibration.size));
  const table = await measureSensitivity(
    prepared,
    r.layers,
    target,
    calibration,
    { indices, batchSize: 25 },
    { ...(opts.predict ? { predict: opts.predict } : {}), floatPath: false },
  );
  return Object.values(table.layers)
    .map((t) => ({ name: t.name, sqnrDb: t.sqnrDb, agreement: t.agreement }))
    .sort(
      (a, b) =>
        a.sqnrDb - b.sqnrDb ||
        (a.agreement ?? 1) - (b.agreement ?? 1) ||
        (a.name < b.name ? -1 : 1),
    );
}

/**
 * A layer's own cost in points: 100 x (1 - agreement), the share of samples whose prediction
 * changes when only this layer is quantized (null when the outputs are not classes).
 */
export function layerCostPoints(d: LayerDeviation): number | null {
  return d.agreement === null ? null : Math.round(100 * (1 - d.agreement) * 1e6) / 1e6;
}

/** One try of a round: the changes applied together and the measured result. */
export interface FeedbackTry {
  changes: { layer: string; suggestion: Suggestion; fromKnowledgeBase: boolean }[];
  lossAfter: number;
  recoveredPoints: number;
  kept: boolean;
}

/** One round of the loop. */
export interface FeedbackRoundReport {
  round: number;
  lossBefore: number;
  lossAfter: number;
  /** The costliest layers found, worst first (the ones changed are the first `layersPerRound`). */
  deviations: LayerDeviation[];
  tries: FeedbackTry[];
}

/** The loop's result. */
export interface FeedbackReport {
  task: string;
  target: string;
  recipe: string;
  metric: string;
  fp32: number;
  /** Fixes from the knowledge base applied before the first run (none: the recipe as given). */
  startedFrom: { layer: string; suggestion: Suggestion; id: string }[];
  /** Loss of the first run (the recipe as given, plus `startedFrom`), and after the loop. */
  lossBefore: number;
  lossAfter: number;
  /** (lossBefore - lossAfter) / lossBefore, when something was lost. */
  recoveredFraction: number | null;
  rounds: FeedbackRoundReport[];
  /** Pipeline runs made (the first one included). */
  runs: number;
  /** The recipe with the kept changes as per-layer overrides. */
  recipeAfter: Recipe;
  /** L5.feedback evidence. */
  evidence: FeedbackRound[];
  stopped: string;
}

/** What the loop needs from its host. */
export interface FeedbackHost {
  /** Runs a recipe end to end, validated. */
  run(recipe: Recipe): Promise<PipelineResult>;
  /** The costliest layers of a validated run, worst first. */
  locate(result: PipelineResult): Promise<LayerDeviation[]>;
  kb: KnowledgeBase;
  /** Id prefix of the knowledge-base records (e.g. a timestamp). */
  runId: string;
  log?: (message: string) => void;
  /** Clock for the records (default Date). */
  now?: () => string;
}

/** Options of {@link feedbackLoop}. */
export interface FeedbackOptions {
  /** Rounds at most (default 2). */
  rounds?: number;
  /** Costliest layers changed together per try (default 3). */
  layersPerRound?: number;
  /** Tries per round at most (default 3). */
  triesPerRound?: number;
  /** A change is kept when it recovers more than this many points (default 0). */
  minRecoveryPoints?: number;
  /**
   * Revisit only layers whose own quantization costs more than this many points (recipe
   * `feedback.thresholdPoints`): {@link layerCostPoints}. A layer whose cost is not known (no
   * agreement: outputs that are not classes) stays eligible, ranked by SQNR. Default: no bar.
   */
  minLayerCostPoints?: number;
  /** An already validated run of `recipe` (saves the first run; no known fixes are applied). */
  first?: PipelineResult;
  /**
   * Start from the fixes the knowledge base kept for this recipe (same recipe name, task and
   * target) before the first run (default true).
   */
  startFromKnownFixes?: boolean;
}

/** The kept changes the knowledge base holds for this recipe, as per-layer overrides. */
export async function knownFixes(
  recipe: Recipe,
  kb: KnowledgeBase,
): Promise<{ layer: string; suggestion: Suggestion; id: string }[]> {
  const out = new Map<string, { layer: string; suggestion: Suggestion; id: string }>();
  for (const e of await kb.entries())
    if (
      e.outcome.kept &&
      e.outcome.recoveredPoints > 0 &&
      e.recipe === recipe.name &&
      e.signature.task === recipe.task &&
      e.signature.target === recipe.target
    )
      out.set(e.signature.layer, { layer: e.signature.layer, suggestion: e.suggestion, id: e.id });
  return [...out.values()];
}

const withChanges = (
  r: Recipe,
  changes: readonly { layer: string; suggestion: Suggestion }[],
): Recipe => {
  const layers: Recipe['layers'] = { ...r.layers };
  for (const c of changes) {
    // Drop the previous method fields of the layer so the suggestion stands alone.
    const { method: _m, percentile: _p, keepFloat: _k, ...rest } = layers[c.layer] ?? {};
    layers[c.layer] = { ...rest, ...c.suggestion.override };
  }
  return { ...r, layers };
};

const lossOf = (r: PipelineResult): MetricComparison => {
  if (!r.evaluation) throw new Error('the feedback loop needs validated runs');
  return r.evaluation.comparison;
};

/**
 * Runs the loop on a recipe. Candidate changes for a layer: what the knowledge base recorded as
 * recovering on similar layers first (most similar first), then {@link defaultSuggestions}.
 */
export async function feedbackLoop(
  recipe: Recipe,
  host: FeedbackHost,
  opts: FeedbackOptions = {},
): Promise<FeedbackReport> {
  const rounds = opts.rounds ?? 2;
  const perRound = opts.layersPerRound ?? 3;
  const tries = opts.triesPerRound ?? 3;
  const minRecovery = opts.minRecoveryPoints ?? 0;
  const now = host.now ?? (() => new Date().toISOString());
  const changed = new Set<string>();
  const log = host.log ?? (() => {});
  const fixes =
    opts.first || opts.startFromKnownFixes === false ? [] : await knownFixes(recipe, host.kb);
  let currentRecipe = withChanges(recipe, fixes);
  if (fixes.length > 0)
    log(
      `starting from the knowledge base: ${fixes.map((c) => `${c.layer} -> ${c.suggestion.label}`).join('; ')}`,
    );
  let current = opts.first ?? (await host.run(currentRecipe));
  let runs = opts.first ? 0 : 1;
  for (const c of fixes) changed.add(c.layer);
  const first = lossOf(current);
  const report: FeedbackRoundReport[] = [];
  const evidence: FeedbackRound[] = [];
  let stopped = `${rounds} rounds done`;
  log(
    `start: ${first.metric} FP32 ${first.fp32} INT8 ${first.int8} loss ${first.lossPoints} points`,
  );

  for (let round = 1; round <= rounds; round++) {
    const lossBefore = lossOf(current).lossPoints;
    if (lossBefore <= 0) {
      stopped = `nothing left to recover (loss ${lossBefore} points)`;
      break;
    }
    const deviations = await host.locate(current);
    const unchanged = deviations.filter((d) => !changed.has(d.name));
    if (unchanged.length === 0) {
      stopped = 'every layer was already changed';
      break;
    }
    const bar = opts.minLayerCostPoints;
    const worst = unchanged
      .filter((d) => bar === undefined || (layerCostPoints(d) ?? Number.POSITIVE_INFINITY) > bar)
      .slice(0, perRound);
    if (worst.length === 0) {
      stopped = `no layer left costs more than ${bar} points on its own`;
      break;
    }
    log(
      `round ${round}: loss ${lossBefore} points; costliest layers ${worst.map((d) => `${d.name} (${d.sqnrDb.toFixed(1)} dB)`).join(', ')}`,
    );
    // Candidates per layer: knowledge base first, then the defaults for its current method.
    const candidates = new Map<string, { suggestion: Suggestion; fromKnowledgeBase: boolean }[]>();
    for (const d of worst) {
      const sig = layerSignature(current, d.name);
      const m = current.methods[d.name];
      // The layer's present calibration is not a change.
      const seen = new Set<string>([
        JSON.stringify(
          m?.method === 'percentile'
            ? { method: 'percentile', percentile: m.percentile }
            : { method: m?.method },
        ),
      ]);
      const list: { suggestion: Suggestion; fromKnowledgeBase: boolean }[] = [];
      for (const m of await host.kb.lookup(sig)) {
        const key = JSON.stringify(m.entry.suggestion.override);
        if (seen.has(key)) continue;
        seen.add(key);
        list.push({ suggestion: m.entry.suggestion, fromKnowledgeBase: true });
      }
      for (const s of defaultSuggestions(m ?? { method: 'max' })) {
        const key = JSON.stringify(s.override);
        if (seen.has(key)) continue;
        seen.add(key);
        list.push({ suggestion: s, fromKnowledgeBase: false });
      }
      candidates.set(d.name, list);
    }
    const roundTries: FeedbackTry[] = [];
    let kept = false;
    for (let t = 0; t < tries && !kept; t++) {
      const changes = worst
        .map((d) => ({ layer: d.name, ...(candidates.get(d.name)![t] ?? {}) }))
        .filter(
          (c): c is { layer: string; suggestion: Suggestion; fromKnowledgeBase: boolean } =>
            c.suggestion !== undefined,
        );
      if (changes.length === 0) break;
      const tryRecipe = withChanges(currentRecipe, changes);
      const result = await host.run(tryRecipe);
      runs++;
      const lossAfter = lossOf(result).lossPoints;
      const recovered = Math.round((lossBefore - lossAfter) * 1e9) / 1e9;
      kept = recovered > minRecovery;
      log(
        `  try ${t + 1}: ${changes.map((c) => `${c.layer} -> ${c.suggestion.label}${c.fromKnowledgeBase ? ' (knowledge base)' : ''}`).join('; ')}: loss ${lossAfter} points (${recovered >= 0 ? 'recovered' : 'lost'} ${Math.abs(recovered)}) ${kept ? 'KEPT' : 'discarded'}`,
      );
      roundTries.push({ changes, lossAfter, recoveredPoints: recovered, kept });
      for (const [k, c] of changes.entries()) {
        const d = worst.find((w) => w.name === c.layer)!;
        const entry: KnowledgeEntry = {
          id: `${host.runId}:r${round}:t${t + 1}:${k}:${c.layer}`,
          at: now(),
          recipe: currentRecipe.name,
          signature: layerSignature(current, c.layer),
          deviation: { sqnrDb: d.sqnrDb, agreement: d.agreement, lossPoints: lossBefore },
          suggestion: c.suggestion,
          outcome: {
            lossBefore,
            lossAfter,
            recoveredPoints: recovered,
            kept,
            jointWith: changes.filter((x) => x.layer !== c.layer).map((x) => x.layer),
          },
        };
        await host.kb.record(entry);
      }
      evidence.push({
        worstLayer: worst[0]!.name,
        fromDeploymentReport: true,
        calibrationChanged: true,
        requantized: true,
        recoveryPoints: recovered,
        storedInKnowledgeBase: true,
      });
      if (kept) {
        current = result;
        currentRecipe = tryRecipe;
        for (const c of changes) changed.add(c.layer);
      }
    }
    report.push({
      round,
      lossBefore,
      lossAfter: lossOf(current).lossPoints,
      deviations,
      tries: roundTries,
    });
    if (!kept) {
      stopped = `round ${round}: no suggestion recovered`;
      break;
    }
  }
  const lossAfter = lossOf(current).lossPoints;
  return {
    task: current.task,
    target: current.target,
    recipe: recipe.name,
    metric: first.metric,
    fp32: first.fp32,
    startedFrom: fixes,
    lossBefore: first.lossPoints,
    lossAfter,
    recoveredFraction:
      first.lossPoints > 0
        ? Math.round(((first.lossPoints - lossAfter) / first.lossPoints) * 1e4) / 1e4
        : null,
    rounds: report,
    runs,
    recipeAfter: currentRecipe,
    evidence,
    stopped,
  };
}
