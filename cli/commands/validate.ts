import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Command, Option } from 'commander';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import {
  AccuracyGuardError,
  accuracyGuard,
  compareMetric,
  type MetricComparison,
  predictModel,
} from '../../core/evaluate/evaluate.ts';
import { type LayerErrorReport, measureLayerErrors } from '../../core/evaluate/layer-errors.ts';
import {
  defaultStresses,
  type StressReport,
  stressedSource,
  stressReportOf,
  valueRange,
} from '../../core/evaluate/stress.ts';
import { feedbackLoop, locateCostliestLayers } from '../../core/feedback/loop.ts';
import type { TargetId } from '../../core/formats/targets.ts';
import { DEFAULT_TARGET, getTarget, timedTargetFor } from '../../core/formats/targets.ts';
import { decodeModel, type ModelProto } from '../../core/onnx/index.ts';
import { getQuantizedInfo, type QuantizedModelInfo } from '../../core/quantize/metadata.ts';
import { renderValidationHtml, type ValidationSummary } from '../../core/report/html.ts';
import { evidenceFromPipeline, nativeScheme, runCheck } from '../../core/score/checks.ts';
import { crossHardwareEvidence, crossHardwareTable } from '../../core/score/cross-hardware.ts';
import { sig3 } from '../../core/score/qqi.ts';
import type { MeasuredSpeedup } from '../../core/score/score-run.ts';
import { getTask } from '../../zoo/registry.ts';
import type { TaskSplit } from '../../zoo/task.ts';
import { runCrossHardware } from '../cross-hardware.ts';
import { nodeDataSource } from '../data-source.ts';
import { CliError } from '../errors.ts';
import { DEFAULT_KB_PATH, JsonFileKnowledgeBase } from '../knowledge-base-file.ts';
import { measureSpeedup } from '../measure.ts';
import { progressBar } from '../progress.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { readTaskModel } from '../zoo-files.ts';
import { resolveRecipe, runModelInfo, runRecipe, speedupLine } from './score.ts';
import { parseNonNegative, parsePositiveInt, parseTarget, printResult } from './shared.ts';

/** Result of `cann-quant validate` (its --json output). */
export interface ValidateResult {
  task: string;
  target: string;
  metric: string;
  fp32: number;
  int8: number;
  loss_points: number;
  loss_fraction: number;
  samples: number;
  metrics: { fp32: Record<string, number>; int8: Record<string, number> };
  float_layers: QuantizedModelInfo['skipped'];
  /** The pipeline's loss estimate recorded in the model (null: the model carries none). */
  estimated_loss_points: number | null;
  guard?: { max_loss_points: number; pass: boolean };
  heatmap?: string;
  layer_errors?: LayerErrorReport;
  /** FP32 vs the QDQ model timed on onnxruntime-web on this machine. */
  measured?: MeasuredSpeedup;
  /** --stress: both models again on perturbed copies of the evaluation split. */
  stress?: StressReport;
}

/** Evaluates FP32 and the quantized model on the task's full evaluation split. */
export async function validateQuantized(
  taskId: string,
  quantized: Uint8Array,
  opts: { progress?: boolean } = {},
): Promise<{
  comparison: MetricComparison;
  info: QuantizedModelInfo;
  fp32: Record<string, number>;
  int8: Record<string, number>;
  samples: number;
  /** What it evaluated on, for further passes over the same data (--stress). */
  fp32Model: Uint8Array;
  split: TaskSplit<unknown>;
  /** Per-sample predictions of both models (the stress tests' jackknife). */
  predictions: { fp32: unknown[]; int8: unknown[] };
}> {
  const task = getTask(taskId);
  const info = getQuantizedInfo(decodeModel(quantized));
  if (!info)
    throw new CliError(
      'the --quantized model carries no cann-quant metadata: make it with `cann-quant format`',
    );
  useNodeRuntime();
  const [fp32Model, split] = await Promise.all([
    readTaskModel(task.manifest),
    task.load(nodeDataSource(), 'evaluation'),
  ]);
  const bar = progressBar(`validate ${info.target}`, opts.progress);
  try {
    const total = split.size * 2;
    const fp32Pred = await predictModel(task, fp32Model, split, {
      onProgress: (d) => bar.update(d, total),
    });
    const int8Pred = await predictModel(task, quantized, split, {
      graphOptimizationLevel: info.graphOptimization,
      onProgress: (d) => bar.update(split.size + d, total),
    });
    const fp32 = task.score(fp32Pred, split.labels);
    const int8 = task.score(int8Pred, split.labels);
    return {
      comparison: compareMetric(task.manifest.metric.primary, fp32, int8),
      info,
      fp32,
      int8,
      samples: split.size,
      fp32Model,
      split,
      predictions: { fp32: fp32Pred, int8: int8Pred },
    };
  } finally {
    bar.stop();
  }
}

/**
 * --stress: FP32 and the quantized model on perturbed copies of the task's evaluation split
 * (core/evaluate/stress.ts: noise, contrast and brightness for images, token swaps and drops for
 * text), each compared with the clean loss.
 */
async function stressTest(
  taskId: string,
  quantized: Uint8Array,
  v: Pick<
    Awaited<ReturnType<typeof validateQuantized>>,
    'info' | 'fp32Model' | 'split' | 'predictions'
  >,
  thresholdPoints: number,
  progress: boolean,
): Promise<StressReport> {
  const task = getTask(taskId);
  const { info, fp32Model, split } = v;
  const primary = task.manifest.metric.primary;
  const stresses = defaultStresses(await split.batch(0, 1));
  // perturbed inputs stay within the clean split's values (a sensor saturates)
  const range = await valueRange(split);
  const total = stresses.length * split.size * 2;
  const bar = progressBar('stress tests', progress);
  const metric = (p: unknown[], labels: unknown) => task.score(p, labels)[primary]!;
  const sets: { fp32: unknown[]; int8: unknown[] }[] = [];
  try {
    let done = 0;
    for (const s of stresses) {
      const stressed = stressedSource(split, s, 0, range);
      const predict = async (model: Uint8Array, level: QuantizedModelInfo['graphOptimization']) => {
        const preds = await predictModel(task, model, stressed, {
          graphOptimizationLevel: level,
          onProgress: (d) => bar.update(done + d, total),
        });
        done += split.size;
        return preds;
      };
      sets.push({
        fp32: await predict(fp32Model, 'disabled'),
        int8: await predict(quantized, info.graphOptimization),
      });
    }
  } finally {
    bar.stop();
  }
  return stressReportOf(
    primary,
    metric,
    split.labels,
    v.predictions,
    stresses,
    sets,
    thresholdPoints,
  );
}

export const stressLines = (r: StressReport) => [
  `stress tests (${r.metric}; flagged when a perturbation adds more than ${r.threshold_points} points to the clean loss of ${r.clean.loss_points.toFixed(2)}; +- one standard error over the samples):`,
  ...r.rows.map(
    (x) =>
      `  ${x.id.padEnd(16)} FP32 ${x.fp32.toFixed(4)}  INT8 ${x.int8.toFixed(4)}  loss ${x.loss_points.toFixed(2)}  extra ${x.extra_loss_points >= 0 ? '+' : ''}${x.extra_loss_points.toFixed(2)}${x.extra_se_points !== undefined ? ` +- ${x.extra_se_points.toFixed(2)}` : ''}${x.pass ? '' : x.significant === false ? '  FLAGGED (within noise)' : '  FLAGGED'}  (${x.label})`,
  ),
];

/**
 * --heatmap: per-layer errors of `int8` against the task's FP32 model on `samples` spread
 * evaluation samples, written as the self-contained HTML report at `path`.
 */
async function writeHeatmapReport(
  taskId: string,
  int8: ModelProto,
  info: QuantizedModelInfo,
  summary: ValidationSummary,
  path: string,
  samples: number,
): Promise<LayerErrorReport> {
  const task = getTask(taskId);
  const split = await task.load(nodeDataSource(), 'evaluation');
  const fp32 = decodeModel(await readTaskModel(task.manifest));
  const layerErrors = await measureLayerErrors(
    fp32,
    int8,
    info.layers,
    split,
    { indices: spreadIndices(split.size, samples) },
    { session: { graphOptimizationLevel: info.graphOptimization } },
  );
  const metadata = Object.fromEntries([
    ...info.layers.map((l) => [l.name, { opType: l.kind }] as const),
    ...info.skipped.map((l) => [l.name, { opType: l.opType, keptFloatReason: l.reason }] as const),
  ]);
  await writeFile(path, renderValidationHtml({ summary, layerErrors, metadata }));
  return layerErrors;
}

const heatmapLine = (path: string, errors: LayerErrorReport) =>
  `heatmap ${path} (${errors.flagged.length} layers above ${(errors.threshold * 100).toFixed(0)}% relative error)`;

/** Registers `cann-quant validate`. */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description("compare FP32 and INT8 on the task's full evaluation split")
    .option('--task <id>', 'benchmark task')
    .option('--quantized <file>', 'a model written by `cann-quant format` (emulation or QDQ)')
    .option(
      '--cross-hardware',
      "run one recipe (--recipe, or --task with --target/--template) on every target: accuracy with each target's arithmetic, modelled latency, throughput, power, energy",
    )
    .option(
      '--feedback',
      'the feedback loop on a recipe: find the costliest layers, propose a change, re-quantize, re-validate, keep it only if it recovers; record every try in the knowledge base',
    )
    .option(
      '--rounds <n>',
      "feedback rounds at most (default: the recipe's feedback.rounds when it sets any, else 2)",
      parsePositiveInt,
    )
    .option(
      '--threshold <points>',
      "revisit only layers whose own quantization costs more than this many points (default: the recipe's feedback.thresholdPoints, 2 unless set)",
      parseNonNegative,
    )
    .option(
      '--layers-per-round <n>',
      'costliest layers changed together per try',
      parsePositiveInt,
      3,
    )
    .option('--tries <n>', 'tries per feedback round at most', parsePositiveInt, 3)
    .option('--kb <file>', 'knowledge base (JSON file)', DEFAULT_KB_PATH)
    .option('--write-recipe <file>', 'write the recipe with the kept changes')
    .option('--recipe <file>', 'recipe JSON (with --cross-hardware or --feedback)')
    .option(
      '--target <t>',
      `target of the recipe built from a template (default ${DEFAULT_TARGET})`,
      parseTarget,
    )
    .option('--template <name>', "recipe template (default: the task's)")
    .option('--shards <n>', 'shards per phase', parsePositiveInt, 1)
    .option('--no-measure', 'skip timing FP32 vs the INT8 QDQ model on this machine')
    .option('--repeats <n>', 'timed runs per model for the measured speed-up', parsePositiveInt, 30)
    .addOption(
      new Option(
        '--accuracy-guard [points]',
        'fail (exit 3) when the loss exceeds this many points (without a value: 0.5, the INT8 loss the product aims under)',
      )
        .preset('0.5')
        .argParser(parseNonNegative),
    )
    .option(
      '--heatmap [file]',
      "write a self-contained HTML report with the per-layer error heatmap (default: report.html beside the model; with --cross-hardware, of the recipe's target, in the current folder)",
    )
    .option(
      '--heatmap-samples <n>',
      'evaluation samples used for per-layer errors',
      parsePositiveInt,
      50,
    )
    .option(
      '--stress',
      'robustness stress tests: FP32 and INT8 again on perturbed copies of the evaluation split (noise, contrast, brightness; token swaps and drops for text), each loss beside the clean one',
    )
    .option(
      '--stress-threshold <points>',
      'flag a perturbation that adds more than this many points to the clean loss',
      parseNonNegative,
      0.5,
    )
    .option('--json', 'print one JSON object')
    .action(
      async (o: {
        task?: string;
        quantized?: string;
        accuracyGuard?: number;
        heatmap?: string | boolean;
        heatmapSamples: number;
        json?: boolean;
        crossHardware?: boolean;
        recipe?: string;
        target?: string;
        template?: string;
        shards: number;
        measure?: boolean;
        repeats: number;
        feedback?: boolean;
        rounds?: number;
        threshold?: number;
        layersPerRound: number;
        tries: number;
        kb: string;
        writeRecipe?: string;
        stress?: boolean;
        stressThreshold: number;
      }) => {
        const ignored = (mode: string, flags: [string, unknown][]) => {
          const given = flags.filter(([, v]) => v !== undefined && v !== false).map(([f]) => f);
          if (given.length > 0)
            throw new CliError(`${given.join(', ')} cannot be used with ${mode}`, 2);
        };
        if (o.feedback)
          ignored('--feedback', [
            ['--cross-hardware', o.crossHardware],
            ['--quantized', o.quantized],
            ['--heatmap', o.heatmap],
            ['--accuracy-guard', o.accuracyGuard],
            ['--stress', o.stress],
          ]);
        if (o.crossHardware)
          ignored('--cross-hardware', [
            ['--quantized', o.quantized],
            ['--stress', o.stress],
          ]);
        if (o.feedback) {
          const recipe = await resolveRecipe({
            ...(o.recipe ? { recipe: o.recipe } : {}),
            ...(o.task ? { task: o.task } : {}),
            ...(o.target ? { target: o.target } : {}),
            ...(o.template ? { template: o.template } : {}),
          });
          const task = getTask(recipe.task);
          useNodeRuntime();
          const model = await readTaskModel(task.manifest);
          const calibration = await task.load(nodeDataSource(), 'calibration');
          const kb = await JsonFileKnowledgeBase.open(o.kb);
          const kbBefore = (await kb.entries()).length;
          const report = await feedbackLoop(
            recipe,
            {
              run: (r) => runRecipe(r, { shards: o.shards, progress: false }),
              locate: (r) =>
                locateCostliestLayers(r, model, calibration, {
                  ...(task.manifest.kind !== 'detection'
                    ? { predict: (out, n) => task.predict(out, n) }
                    : {}),
                }),
              kb,
              runId: `local:${recipe.task}:${recipe.target}:${new Date().toISOString()}`,
              ...(o.json ? {} : { log: (m: string) => process.stderr.write(`${m}\n`) }),
            },
            {
              rounds: o.rounds ?? (recipe.feedback.rounds > 0 ? recipe.feedback.rounds : 2),
              minLayerCostPoints: o.threshold ?? recipe.feedback.thresholdPoints,
              layersPerRound: o.layersPerRound,
              triesPerRound: o.tries,
            },
          );
          if (o.writeRecipe)
            await writeFile(o.writeRecipe, `${JSON.stringify(report.recipeAfter, null, 2)}\n`);
          const check = runCheck('L5.feedback', {
            runId: `local:${recipe.task}:${recipe.target}:${recipe.name}`,
            task: recipe.task,
            target: recipe.target as TargetId,
            recipe: recipe.name,
            calibration: { samples: 0, split: 'calibration', sampler: recipe.calibration.sampler },
            methods: {},
            scheme: {
              used: nativeScheme(getTarget(recipe.target)),
              native: nativeScheme(getTarget(recipe.target)),
            },
            biasCorrection: recipe.format.biasCorrection !== false,
            feedback: { rounds: report.evidence },
          });
          const kbAfter = (await kb.entries()).length;
          printResult(
            o.json,
            {
              ...report,
              l5_feedback: check,
              knowledge_base: { path: o.kb, before: kbBefore, after: kbAfter },
            },
            () =>
              [
                `feedback loop: ${report.recipe}  task ${report.task}  target ${report.target}`,
                ...(report.startedFrom.length > 0
                  ? [
                      `started from the knowledge base: ${report.startedFrom.map((c) => `${c.layer} -> ${c.suggestion.label}`).join('; ')}`,
                    ]
                  : []),
                `${report.metric} FP32 ${report.fp32}  loss ${report.lossBefore} -> ${report.lossAfter} points (recovered ${report.recoveredFraction === null ? 'n/a' : `${(report.recoveredFraction * 100).toFixed(1)}%`}) in ${report.rounds.length} round(s), ${report.runs} pipeline runs; ${report.stopped}`,
                ...report.rounds.flatMap((r) => [
                  `  round ${r.round}: loss ${r.lossBefore} -> ${r.lossAfter}; costliest ${r.deviations
                    .slice(0, o.layersPerRound)
                    .map((d) => `${d.name} ${d.sqnrDb.toFixed(1)} dB`)
                    .join(', ')}`,
                  ...r.tries.map(
                    (t, i) =>
                      `    try ${i + 1}: ${t.changes.map((c) => `${c.layer} -> ${c.suggestion.label}${c.fromKnowledgeBase ? ' [kb]' : ''}`).join('; ')}: loss ${t.lossAfter} (${t.recoveredPoints >= 0 ? '+' : ''}${t.recoveredPoints}) ${t.kept ? 'kept' : 'discarded'}`,
                  ),
                ]),
                `L5.feedback ${check.pass === true ? 'pass' : check.pass === false ? 'FAIL' : 'n/a'}: ${check.why}`,
                `knowledge base ${o.kb}: ${kbBefore} -> ${kbAfter} records`,
                ...(o.writeRecipe ? [`wrote ${o.writeRecipe}`] : []),
              ].join('\n'),
          );
          return;
        }
        if (o.crossHardware) {
          const recipe = await resolveRecipe({
            ...(o.recipe ? { recipe: o.recipe } : {}),
            ...(o.task ? { task: o.task } : {}),
            ...(o.target ? { target: o.target } : {}),
            ...(o.template ? { template: o.template } : {}),
          });
          const cross = await runCrossHardware(recipe, {
            shards: o.shards,
            progress: !o.json,
            repeats: o.measure === false ? 0 : o.repeats,
          });
          const primary = cross.runs[0]!.run;
          const l5 = runCheck('L5.cross', {
            ...evidenceFromPipeline(primary, getTarget(recipe.target), {
              runId: cross.runs[0]!.runId,
            }),
            crossHardware: crossHardwareEvidence(cross.report),
          });
          // --heatmap: the recipe's own target (the first run), as `validate --quantized` shows it
          let heatmap: { path: string; layer_errors: LayerErrorReport } | undefined;
          if (o.heatmap) {
            const row = cross.report.rows.find((r) => r.target === primary.target)!;
            const info = runModelInfo(primary, 'emulation');
            const path = typeof o.heatmap === 'string' ? o.heatmap : 'report.html';
            const layerErrors = await writeHeatmapReport(
              recipe.task,
              primary.emulation,
              info,
              {
                task: recipe.task,
                target: primary.target,
                metric: row.metric,
                fp32: row.fp32,
                int8: row.int8,
                lossPoints: row.lossPoints,
                samples: primary.evaluation?.samples ?? 0,
              },
              path,
              o.heatmapSamples,
            );
            heatmap = { path, layer_errors: layerErrors };
          }
          // --accuracy-guard: every target's loss
          const over = cross.report.rows.filter(
            (r) => o.accuracyGuard !== undefined && r.lossPoints > o.accuracyGuard,
          );
          const guard =
            o.accuracyGuard === undefined
              ? undefined
              : {
                  max_loss_points: o.accuracyGuard,
                  pass: over.length === 0,
                  failing: over.map((r) => r.target),
                };
          printResult(
            o.json,
            {
              ...cross.report,
              l5_cross: l5,
              measured: cross.measured ?? null,
              ...(heatmap ? { heatmap: heatmap.path, layer_errors: heatmap.layer_errors } : {}),
              ...(guard ? { guard } : {}),
            },
            () =>
              [
                crossHardwareTable(cross.report),
                speedupLine(null, 'cpu-wasm', cross.measured),
                ...(heatmap
                  ? [`${primary.target} ${heatmapLine(heatmap.path, heatmap.layer_errors)}`]
                  : []),
                ...(guard
                  ? [
                      `accuracy guard (${guard.max_loss_points} points, every target): ${guard.pass ? 'pass' : `FAIL (${guard.failing.join(', ')})`}`,
                    ]
                  : []),
              ].join('\n'),
          );
          if (guard && !guard.pass)
            throw new CliError(
              `accuracy guard: ${over.map((r) => `${r.target} lost ${r.lossPoints.toFixed(3)} points`).join(', ')}, more than the ${guard.max_loss_points} allowed`,
              3,
            );
          return;
        }
        if (!o.task || !o.quantized)
          throw new CliError('give --task and --quantized <model>, or --cross-hardware');
        const quantizedPath = o.quantized;
        const bytes = new Uint8Array(
          await readFile(quantizedPath).catch(() => {
            throw new CliError(`cannot read '${o.quantized}'`);
          }),
        );
        const v = await validateQuantized(o.task, bytes, { progress: !o.json });
        const c = v.comparison;
        const result: ValidateResult = {
          task: o.task,
          target: v.info.target,
          metric: c.metric,
          fp32: c.fp32,
          int8: c.int8,
          loss_points: c.lossPoints,
          loss_fraction: c.lossFraction,
          samples: v.samples,
          metrics: { fp32: v.fp32, int8: v.int8 },
          float_layers: v.info.skipped,
          estimated_loss_points: v.info.estimatedLossPoints ?? null,
        };
        // The measured row: this QDQ model (or the QDQ model `format` wrote beside it) timed
        // against FP32 on onnxruntime-web's kernels on this machine.
        if (o.measure !== false) {
          const qdq =
            v.info.kind === 'qdq'
              ? bytes
              : await readFile(join(dirname(quantizedPath), 'model.qdq.onnx')).then(
                  (b) => new Uint8Array(b),
                  () => undefined,
                );
          if (qdq) {
            const task = getTask(o.task);
            result.measured = await measureSpeedup(
              await readTaskModel(task.manifest),
              qdq,
              await task.load(nodeDataSource(), 'calibration'),
              { repeats: o.repeats, target: timedTargetFor(v.info.target) },
            );
          }
        }
        if (o.heatmap) {
          const path =
            typeof o.heatmap === 'string' ? o.heatmap : join(dirname(quantizedPath), 'report.html');
          result.layer_errors = await writeHeatmapReport(
            o.task,
            decodeModel(bytes),
            v.info,
            {
              task: o.task,
              target: v.info.target,
              metric: c.metric,
              fp32: c.fp32,
              int8: c.int8,
              lossPoints: c.lossPoints,
              samples: v.samples,
            },
            path,
            o.heatmapSamples,
          );
          result.heatmap = path;
        }
        if (o.stress)
          result.stress = await stressTest(o.task, bytes, v, o.stressThreshold, !o.json);
        let guardError: AccuracyGuardError | undefined;
        if (o.accuracyGuard !== undefined) {
          try {
            accuracyGuard(c, o.accuracyGuard);
            result.guard = { max_loss_points: o.accuracyGuard, pass: true };
          } catch (err) {
            if (!(err instanceof AccuracyGuardError)) throw err;
            guardError = err;
            result.guard = { max_loss_points: o.accuracyGuard, pass: false };
          }
        }
        printResult(o.json, result, () =>
          [
            `task ${result.task}  target ${result.target}  samples ${result.samples}`,
            `${c.metric}  FP32 ${c.fp32.toFixed(4)}  INT8 ${c.int8.toFixed(4)}  loss ${c.lossPoints.toFixed(2)} points${
              result.estimated_loss_points === null
                ? ''
                : `  (estimated before evaluation: ${result.estimated_loss_points.toFixed(2)} points)`
            }`,
            ...Object.keys(v.fp32)
              .filter((k) => k !== c.metric)
              .map((k) => `${k}  FP32 ${v.fp32[k]!.toFixed(4)}  INT8 ${v.int8[k]!.toFixed(4)}`),
            ...(result.measured
              ? [
                  `measured speed-up ${sig3(result.measured.speedup)} (QDQ model, ${v.info.target} scheme, on onnxruntime-web: FP32 ${result.measured.fp32Ms} ms / INT8 ${result.measured.int8Ms} ms, median of ${result.measured.repeats}, batch ${result.measured.batch})`,
                ]
              : []),
            ...(result.heatmap && result.layer_errors
              ? [heatmapLine(result.heatmap, result.layer_errors)]
              : []),
            ...(result.stress ? stressLines(result.stress) : []),
            ...(result.guard
              ? [
                  `accuracy guard (${result.guard.max_loss_points} points): ${result.guard.pass ? 'pass' : 'FAIL'}`,
                ]
              : []),
          ].join('\n'),
        );
        if (guardError) throw new CliError(guardError.message, 3);
      },
    );
}
