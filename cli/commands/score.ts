import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import type { BatchSource } from '../../core/evaluate/predict.ts';
import { DEFAULT_TARGET, getTarget, timedTargetFor } from '../../core/formats/targets.ts';
import { interfaceMismatch, sameTaskModel } from '../../core/import/layers.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import type { PipelineResult } from '../../core/pipeline/run.ts';
import { type QuantizedModelInfo, setQuantizedInfo } from '../../core/quantize/metadata.ts';
import { prepareModel } from '../../core/quantize/prepare.ts';
import { parameterSets, quantizeModel } from '../../core/quantize/quantize.ts';
import {
  forImportedQuantization,
  parseRecipeJson,
  type Recipe,
  RecipeError,
  withoutStress,
} from '../../core/recipe/schema.ts';
import {
  DEFAULT_TEMPLATE_BY_KIND,
  recipeFromTemplate,
  TEMPLATES,
} from '../../core/recipe/templates.ts';
import { recipeWarnings } from '../../core/recipe/warnings.ts';
import {
  crossHardwareEvidence,
  crossHardwareTable,
  recipeForTarget,
} from '../../core/score/cross-hardware.ts';
import { sig3 } from '../../core/score/qqi.ts';
import {
  checklistLines,
  type MeasuredSpeedup,
  runReport,
  scoreRun,
  tierCounts,
} from '../../core/score/score-run.ts';
import { findTask, getTask } from '../../zoo/registry.ts';
import { localRunId, runCrossHardware } from '../cross-hardware.ts';
import { nodeDataSource } from '../data-source.ts';
import { CliError } from '../errors.ts';
import { readImported, readImportFor, storeImported } from '../imported-store.ts';
import { type LocalRunOptions, runLocal } from '../local-run.ts';
import { measureSpeedup } from '../measure.ts';
import { makeOutputDir } from '../output-dir.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { userTaskId } from '../user-model.ts';
import { defaultWorkers, MAX_DEFAULT_WORKERS } from '../workers.ts';
import { readTaskModel } from '../zoo-files.ts';
import { parseNonNegative, parsePositiveInt, parseTarget, printResult } from './shared.ts';
import { stressLines } from './validate.ts';

/** Recipe selection flags shared by `calibrate` and `score`. */
export interface RecipeFlags {
  recipe?: string;
  task?: string;
  target?: string;
  template?: string;
  calibData?: number;
  critical?: string;
  /** A user's ONNX model (`calibrate --model`): the recipe's task becomes `user:<name>`. */
  model?: string;
}

/** Loads a recipe file, or builds one from a template for --task/--target; applies overrides. */
export async function resolveRecipe(flags: RecipeFlags): Promise<Recipe> {
  let recipe: Recipe;
  if (flags.recipe) {
    // the file names them; a flag beside it would be silently outvoted
    const extra = (['task', 'target', 'template'] as const).filter((k) => flags[k] !== undefined);
    if (extra.length > 0)
      throw new CliError(
        `--recipe names the ${extra.join(', ')} itself: leave out ${extra.map((k) => `--${k}`).join(', ')}`,
        2,
      );
  }
  // the target of a recipe built here from a template
  const target = flags.target ?? DEFAULT_TARGET;
  try {
    if (flags.recipe) {
      const text = await readFile(flags.recipe, 'utf8').catch(() => {
        throw new CliError(`cannot read recipe '${flags.recipe}'`);
      });
      recipe = parseRecipeJson(text);
      if (flags.model) recipe = { ...recipe, task: userTaskId(flags.model) };
    } else if (flags.model) {
      recipe = recipeFromTemplate(
        flags.template ?? 'industrial-vision',
        userTaskId(flags.model),
        target,
      );
    } else {
      if (!flags.task) throw new CliError('give --recipe <file>, --task <id> or --model <file>', 2);
      const kind = getTask(flags.task).manifest.kind;
      recipe = recipeFromTemplate(
        flags.template ?? DEFAULT_TEMPLATE_BY_KIND[kind] ?? 'industrial-vision',
        flags.task,
        target,
      );
    }
  } catch (err) {
    if (err instanceof RecipeError) throw new CliError(`invalid recipe: ${err.message}`, 2);
    if (err instanceof RangeError) throw new CliError(err.message, 2);
    throw err;
  }
  if (recipe.qat)
    // The sha256 names a model uploaded to a server; here the task's own model would be scored
    // in its place without a word.
    throw new CliError(
      `recipe.qat names a QAT model uploaded to a server (${recipe.qat.model.slice(0, 12)}...): score it there (cann-quant submit --qat <dir>), or here with cann-quant train --task ${recipe.task} --target ${recipe.target} --progressive --hardware-sim --model <file>`,
      2,
    );
  if (flags.calibData !== undefined)
    recipe = { ...recipe, calibration: { ...recipe.calibration, samples: flags.calibData } };
  if (flags.critical) {
    const critical = flags.critical
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    recipe = {
      ...recipe,
      sensitivity: {
        ...recipe.sensitivity,
        critical: [...recipe.sensitivity.critical, ...critical],
      },
    };
  }
  return recipe;
}

/**
 * The recipe with `imported` naming a QDQ file (cross-framework quantization): the file is read
 * and taken apart here (one clear line for what cannot be read), then put in this machine's
 * store under its sha256, where every thread of the run finds it.
 */
export async function withImportedModel(recipe: Recipe, file: string): Promise<Recipe> {
  const { bytes, imported } = await readImportFor(recipe, file);
  const { producer } = imported;
  // Its INT8 metric is compared with the task model's FP32 one: it has to be that model.
  const task = findTask(recipe.task);
  if (task) {
    const taskModel = decodeModel(await readTaskModel(task.manifest));
    const mismatch = interfaceMismatch(imported.model, taskModel);
    if (mismatch)
      throw new CliError(`${file} cannot stand in for ${recipe.task}'s model: ${mismatch}`, 2);
    const same = sameTaskModel(taskModel, imported, getTarget(recipe.target));
    if (!same.same) throw new CliError(`${file} is not ${recipe.task}'s model: ${same.why}`, 2);
  }
  const model = await storeImported(bytes);
  return {
    ...forImportedQuantization(recipe),
    imported: { model, ...(producer ? { producer } : {}) },
  };
}

/**
 * Runs the pipeline for a recipe on its zoo task on this machine (cli/local-run.ts): in this
 * thread unless `workers` > 1, the FP32 reference pass from the shared cache unless `cache` is
 * false.
 */
export function runRecipe(
  recipe: Recipe,
  opts: Omit<LocalRunOptions, 'source' | 'inputs'>,
): Promise<PipelineResult> {
  return runLocal(recipe, opts);
}

/**
 * The run's recipe warnings (core/recipe/warnings.ts), one stderr line each, so that stdout
 * stays the result (one JSON object with --json, which carries them too).
 */
export function printWarnings(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`cann-quant: warning: ${w}\n`);
}

/**
 * The recipe's warnings (core/recipe/warnings.ts) from this machine's copy of its zoo task's
 * model, before anything runs (`submit` says them before the upload); none for a task this
 * machine does not have, which the server's run report covers.
 */
export async function localRecipeWarnings(recipe: Recipe): Promise<string[]> {
  const task = findTask(recipe.task);
  if (!task) return [];
  const bytes = await readTaskModel(task.manifest).catch(() => undefined);
  if (!bytes) return []; // advice only: a missing local copy must not stop a submission
  const prepared = prepareModel(decodeModel(bytes), getTarget(recipe.target));
  return recipeWarnings(recipe, {
    layers: prepared.layers.map((l) => l.name),
    calibrationSize: task.manifest.splits.calibration.size,
  });
}

/**
 * The metadata a run's model carries when written (core/quantize/metadata.ts): its layers,
 * the layers kept in float, how to run it, the loss estimate. `validate` reads it back.
 */
export function runModelInfo(r: PipelineResult, model: 'emulation' | 'qdq'): QuantizedModelInfo {
  // cpu-wasm's emulation model is its QDQ model (ORT's own kernels, optimised as deployed)
  const qdq = model === 'qdq' || r.emulation === r.qdq;
  return {
    target: r.target,
    task: r.task,
    layers: r.layers.map((l) => ({
      name: l.name,
      kind: l.kind,
      output: l.output,
      ...(l.weightSide ? { weightSide: l.weightSide } : {}),
    })),
    skipped: r.skipped,
    calibrationSamples: r.calibration.samples.length,
    ...(r.estimate ? { estimatedLossPoints: r.estimate.lossPoints } : {}),
    kind: qdq ? 'qdq' : 'emulation',
    graphOptimization: qdq ? 'all' : 'disabled',
  };
}

/** Writes the run's models and quantization config into `dir`. */
export async function writeRunArtifacts(
  dir: string,
  r: PipelineResult,
): Promise<Record<string, string>> {
  await makeOutputDir(dir);
  const files = {
    emulation: join(dir, 'model.emulation.onnx'),
    qdq: join(dir, 'model.qdq.onnx'),
    config: join(dir, 'quantization.json'),
  };
  await writeFile(
    files.emulation,
    encodeModel(setQuantizedInfo(r.emulation, runModelInfo(r, 'emulation'))),
  );
  await writeFile(files.qdq, encodeModel(setQuantizedInfo(r.qdq, runModelInfo(r, 'qdq'))));
  const config = {
    recipe: r.recipe,
    calibration: r.calibration,
    layers: r.layers.map((l) => ({
      name: l.name,
      kind: l.kind,
      method: r.methods[l.name],
      // a dynamic layer quantizes its input per run (the calibrated parameters are unused) and
      // adds a float bias
      activation: l.floatBias ? 'dynamic' : l.act,
      weight: { scales: [...l.weight.scales], zeroPoints: [...l.weight.zeroPoints] },
      bias: l.floatBias ? [...l.floatBias] : [...l.bias],
    })),
    floatLayers: r.skipped,
    ...(r.warnings.length > 0 ? { warnings: r.warnings } : {}),
  };
  await writeFile(files.config, `${JSON.stringify(config, null, 1)}\n`);
  return files;
}

const round3 = (x: number) => Number(x.toPrecision(3));

/** "speed-up modelled 1.06 (ascend310 roofline vs fp16)  measured 1.42 (cpu-wasm ...)". */
export function speedupLine(
  modelled: number | null,
  target: string,
  m: MeasuredSpeedup | undefined,
): string {
  const t = getTarget(target);
  return [
    `speed-up modelled ${modelled === null ? 'n/a (measured only)' : `${sig3(modelled)} (${target} roofline vs ${t.floatPath})`}`,
    m
      ? `measured ${sig3(m.speedup)} (${m.target === 'cpu-wasm' ? 'cpu-wasm QDQ' : `${m.target} model`} on onnxruntime-web: FP32 ${m.fp32Ms} ms / INT8 ${m.int8Ms} ms, median of ${m.repeats}, batch ${m.batch})`
      : 'measured: not run',
  ].join('  ');
}

/**
 * The measured row: the recipe's INT8 model on onnxruntime-web timed against FP32: the run's own
 * model when its target runs there (cpu-wasm, cpu-wasm-dynamic); otherwise the same recipe
 * calibrated for cpu-wasm.
 */
export async function measureCpuWasm(
  recipe: Recipe,
  r: PipelineResult,
  model: Uint8Array,
  calibration: BatchSource,
  opts: { repeats?: number; batch?: number; progress?: boolean } = {},
): Promise<MeasuredSpeedup> {
  const timed = timedTargetFor(r.target);
  const qdq =
    r.target === timed
      ? r.qdq
      : (
          await runRecipe(recipeForTarget(recipe, 'cpu-wasm', r), {
            validate: false,
            progress: opts.progress ?? false,
          })
        ).qdq;
  return measureSpeedup(model, encodeModel(qdq), calibration, {
    target: timed,
    ...(opts.repeats ? { repeats: opts.repeats } : {}),
    ...(opts.batch ? { batch: opts.batch } : {}),
  });
}

/** What {@link recipeOptions} parses, beside the recipe selection. */
export interface RunFlags extends RecipeFlags {
  shards: number;
  workers?: number;
  /** false with --no-cache */
  cache?: boolean;
  json?: boolean;
}

/** The options `score` and `calibrate` share: recipe selection, shards and workers, --json. */
export function recipeOptions(c: Command): Command {
  return c
    .option('--recipe <file>', 'recipe JSON')
    .option('--task <id>', "benchmark task (uses the task's default template unless --template)")
    .option('--target <t>', `hardware target (default ${DEFAULT_TARGET})`, parseTarget)
    .option('--template <name>', `template (${TEMPLATES.map((t) => t.name).join(', ')})`)
    .option('--shards <n>', 'shards per phase (results do not depend on it)', parsePositiveInt, 1)
    .option(
      '--workers <n>',
      `run the shards on n worker_threads (at least n shards per phase, 4n validation ranges; 1: in this thread; results do not depend on it) (default: one per core, at most ${MAX_DEFAULT_WORKERS}: ${defaultWorkers()} here)`,
      parsePositiveInt,
    )
    .option(
      '--no-cache',
      'compute the FP32 reference pass even when the shared cache has it (CANN_QUANT_CACHE=off does the same)',
    )
    .option('--json', 'print one JSON object');
}

/** Registers `cann-quant score`, `measure` and `templates`. */
export function registerScore(program: Command): void {
  recipeOptions(
    program.command('score').description('run a recipe end to end: calibrate, format, validate'),
  )
    .option(
      '--no-reproduce',
      'skip the second execution that L1.reproducible needs (halves the time)',
    )
    .option('--no-measure', 'skip timing FP32 vs the INT8 cpu-wasm QDQ model on this machine')
    .option('--repeats <n>', 'timed runs per model for the measured speed-up', parsePositiveInt, 30)
    .option(
      '--cross-hardware',
      'also run the recipe on every other target: the cross-hardware table and L5.cross evidence',
    )
    .option(
      '--report <file>',
      'write the full run report (RunReport JSON: per-layer list, roofline rows, every check)',
    )
    .option(
      '--stress',
      "robustness stress tests after validation (the recipe's validation.stress): FP32 and INT8 on perturbed copies of the evaluation split",
    )
    .option(
      '--stress-threshold <points>',
      'flag a perturbation that adds more than this many points to the clean loss (default 0.5)',
      parseNonNegative,
    )
    .option(
      '--qdq <file>',
      "score a model another framework quantized (a QDQ file from PyTorch, ONNX Runtime, ...; ONNX Runtime's QOperator format; or its quantize_dynamic output, for cpu-wasm-dynamic) with its own scales instead of calibrating (recipe.imported; see cann-quant import)",
    )
    .action(
      async (
        o: RunFlags & {
          qdq?: string;
          reproduce?: boolean;
          measure?: boolean;
          repeats: number;
          crossHardware?: boolean;
          report?: string;
          stress?: boolean;
          stressThreshold?: number;
        },
      ) => {
        let recipe = await resolveRecipe(o);
        if (o.qdq) {
          recipe = await withImportedModel(recipe, o.qdq);
          // A recipe built here from a template is named after the file, not the template.
          if (!o.recipe)
            recipe = {
              ...recipe,
              name: `qdq-${recipe.imported!.model.slice(0, 12)}:${recipe.task}:${recipe.target}`,
            };
        }
        const imported = recipe.imported ? await readImported(recipe.imported.model) : undefined;
        if (o.stressThreshold !== undefined && !o.stress && !recipe.validation?.stress)
          throw new CliError(
            '--stress-threshold needs --stress (or validation.stress in the recipe)',
            2,
          );
        if (o.stress || o.stressThreshold !== undefined)
          recipe = {
            ...recipe,
            validation: {
              ...recipe.validation,
              stress: {
                thresholdPoints:
                  o.stressThreshold ?? recipe.validation?.stress?.thresholdPoints ?? 0.5,
              },
            },
          };
        // A whole score is long enough to repay the workers' start-up (about 2.5 s): by default
        // it runs on one worker per core (bench/RESULTS.md: 1.75x on 2 cores, fmnist-resnet).
        const workers = o.workers ?? defaultWorkers();
        // with --workers n, at least n shards (the second execution takes one more)
        const shards = Math.max(o.shards, workers);
        const r = await runRecipe(recipe, {
          shards,
          progress: !o.json,
          cache: o.cache !== false,
          workers,
        });
        // L1.reproducible: a second, independent execution (with another shard count) must give
        // identical scale/zero-point sets and the identical metric.
        const second =
          o.reproduce === false
            ? undefined
            : await runRecipe(withoutStress(recipe), {
                shards: shards + 1,
                progress: !o.json,
                // an independent execution: nothing served from the shared cache
                cache: false,
                workers,
              });
        const c = r.evaluation!.comparison;
        const task = getTask(r.task);
        const model = await readTaskModel(task.manifest);
        // Only the measured row runs the model again; the pipeline made the fidelity report.
        const calibration = () => task.load(nodeDataSource(), 'calibration');
        const cross = o.crossHardware
          ? await runCrossHardware(recipe, {
              shards: o.shards,
              progress: !o.json,
              reference: r,
              repeats: o.measure === false ? 0 : o.repeats,
            })
          : undefined;
        const measured =
          o.measure === false
            ? undefined
            : ((cross?.measured?.target === timedTargetFor(r.target)
                ? cross.measured
                : undefined) ??
              (await measureCpuWasm(recipe, r, model, await calibration(), {
                repeats: o.repeats,
                progress: !o.json,
              }).catch((err: unknown) => {
                // The measured row is beside the score, never a reason to lose it.
                process.stderr.write(
                  `cann-quant: measured row failed: ${err instanceof Error ? err.message : String(err)}\n`,
                );
                return undefined;
              })));
        const scored = await scoreRun(r, {
          model,
          ...(imported ? { imported } : {}),
          evaluationSplitSize: task.manifest.splits.evaluation.size,
          ...(measured ? { measured } : {}),
          ...(cross ? { evidence: { crossHardware: crossHardwareEvidence(cross.report) } } : {}),
          runId: localRunId(r),
          ...(second ? { second } : {}),
        });
        if (o.report)
          await writeFile(o.report, `${JSON.stringify(runReport(r, scored), null, 1)}\n`);
        const out = {
          task: r.task,
          target: r.target,
          recipe: recipe.name,
          metric: c.metric,
          fp32: c.fp32,
          int8: c.int8,
          loss_points: c.lossPoints,
          loss_fraction: c.lossFraction,
          estimated_loss_points: r.estimate?.lossPoints ?? null,
          ...(r.imported
            ? { imported: { producer: r.imported.producer, model: recipe.imported!.model } }
            : {}),
          bias_correction: biasCorrectionJson(r),
          weight_rounding: weightRoundingJson(r),
          calibration_samples: r.calibration.samples.length,
          quantized_layers: r.layers.length,
          float_layers: r.skipped.length,
          tiers: tierCounts(r),
          parameter_sets: parameterSets(r),
          samples: r.evaluation!.samples,
          qqi: scored.qqi.value,
          speedup: scored.perf.speedup,
          energy_gain: scored.perf.energyGain.value,
          measured_speedup: measured ? round3(measured.speedup) : null,
          measured: measured ?? null,
          level: scored.level,
          badge: scored.badge,
          checks: scored.checks.map((k) => ({
            id: k.id,
            pass: k.pass,
            value: k.value,
            threshold: k.threshold,
            why: k.why,
          })),
          phases: r.phases,
          warnings: r.warnings,
          ...(cross ? { cross_hardware: cross.report } : {}),
          ...(r.stress ? { stress: r.stress } : {}),
        };
        printWarnings(r.warnings);
        printResult(o.json, out, () =>
          [
            `recipe ${recipe.name}  task ${r.task}  target ${r.target}`,
            r.imported
              ? `imported quantization from ${r.imported.producer || 'an unnamed producer'} (${recipe.imported!.model.slice(0, 12)}...): no calibration; activations exact ${r.imported.layers.filter((l) => l.activation.mapping === 'exact').length}/${r.layers.length}, weights exact ${r.imported.layers.filter((l) => l.weight.mapping === 'exact').length}/${r.layers.length}  layers int8 ${out.quantized_layers} / float ${out.float_layers}`
              : `calibration samples ${out.calibration_samples} (${recipe.calibration.sampler})  layers int8 ${out.quantized_layers} / float ${out.float_layers}  tiers high ${out.tiers.high} medium ${out.tiers.medium} low ${out.tiers.low}`,
            `${c.metric}  FP32 ${c.fp32.toFixed(4)}  INT8 ${c.int8.toFixed(4)}  loss ${c.lossPoints.toFixed(2)} points  (estimated ${r.estimate ? r.estimate.lossPoints.toFixed(2) : 'n/a'} before evaluation; ${out.samples} evaluation samples)`,
            biasCorrectionLine(r),
            ...weightRoundingLines(r, false),
            scored.qqi.text,
            speedupLine(scored.perf.speedup, r.target, measured),
            `level L${scored.level}  (${scored.badge})`,
            ...checklistLines(scored.checks),
            ...(cross ? [crossHardwareTable(cross.report)] : []),
            ...(r.stress ? stressLines(r.stress) : []),
            phasesLine(r),
          ].join('\n'),
        );
      },
    );

  program
    .command('measure')
    .description(
      'time FP32 vs the INT8 cpu-wasm QDQ model on onnxruntime-web on this machine (the measured row, without a full score)',
    )
    .requiredOption('--task <id>', 'benchmark task')
    .option(
      '--calib-data <n>',
      'calibration samples (spread) for the QDQ model',
      parsePositiveInt,
      50,
    )
    .option('--repeats <n>', 'timed runs per model', parsePositiveInt, 30)
    .option('--batch <n>', 'samples per run', parsePositiveInt, 1)
    .option('--json', 'print one JSON object')
    .action(
      async (o: {
        task: string;
        calibData: number;
        repeats: number;
        batch: number;
        json?: boolean;
      }) => {
        const task = getTask(o.task);
        useNodeRuntime();
        const model = await readTaskModel(task.manifest);
        const calibration = await task.load(nodeDataSource(), 'calibration');
        const q = await quantizeModel(decodeModel(model), calibration, {
          target: getTarget('cpu-wasm'),
          samples: { indices: spreadIndices(calibration.size, o.calibData) },
        });
        const m = await measureSpeedup(model, encodeModel(q.qdq), calibration, {
          repeats: o.repeats,
          batch: o.batch,
        });
        printResult(o.json, { task: o.task, ...m, int8_layers: q.layers.length }, () =>
          [
            `task ${o.task}  INT8 cpu-wasm QDQ model (${q.layers.length} int8 layers, ${o.calibData} calibration samples)`,
            speedupLine(null, 'cpu-wasm', m),
            `machine ${m.machine}`,
          ].join('\n'),
        );
      },
    );

  program
    .command('templates')
    .description('list the recipe templates by scenario')
    .option('--json', 'print one JSON object')
    .action((o: { json?: boolean }) =>
      printResult(o.json, { templates: TEMPLATES }, () =>
        TEMPLATES.map((t) => `${t.name.padEnd(20)} ${t.scenario.padEnd(11)} ${t.description}`).join(
          '\n',
        ),
      ),
    );
}

/** `score`/`calibrate --json`: the recipe's bias-correction mode and what the run did. */
export function biasCorrectionJson(r: PipelineResult) {
  const b = r.biasCorrection;
  if (!b) return null;
  return {
    mode: b.mode,
    applied: b.applied,
    ...(b.estimatedLossPoints
      ? {
          estimated_loss_points_corrected: b.estimatedLossPoints.corrected,
          estimated_loss_points_uncorrected: b.estimatedLossPoints.uncorrected,
        }
      : {}),
  };
}

/** `time reference 31.8s (10/30 cached), ranges 0.3s, ...`: each phase's wall time. */
export function phasesLine(r: PipelineResult): string {
  return `time ${r.phases.map((p) => `${p.phase} ${p.seconds}s${p.cached ? ` (${p.cached}/${p.shards} cached)` : ''}`).join(', ')}`;
}

/** `score`/`calibrate --json`: GPTQ's per-layer report (null: the weights rounded to nearest). */
export function weightRoundingJson(r: PipelineResult) {
  if (!r.rounding) return null;
  return {
    method: 'gptq',
    layers: r.rounding.map((l) => ({
      layer: l.layer,
      weight_sqnr_db_nearest: l.nearestDb,
      weight_sqnr_db_gptq: l.gptqDb,
      channels_changed: l.channelsChanged,
      channels: l.channels,
    })),
  };
}

/**
 * `weight rounding gptq: 8 layers, weights' output SQNR on the calibration inputs +9.6 dB
 * (median; 5.1 to 17.2)`: one line for `score`, the per-layer lines for `calibrate`.
 */
export function weightRoundingLines(r: PipelineResult, perLayer: boolean): string[] {
  if (!r.rounding) return [];
  const gains = r.rounding.map((l) => l.gptqDb - l.nearestDb).sort((a, b) => a - b);
  const median = gains[Math.floor((gains.length - 1) / 2)]!;
  const head = `weight rounding gptq: ${gains.length} layers, the weights' output SQNR on the calibration inputs +${median.toFixed(1)} dB (median; ${gains[0]!.toFixed(1)} to ${gains.at(-1)!.toFixed(1)})`;
  if (!perLayer) return [head];
  return [
    head,
    ...r.rounding.map(
      (l) =>
        `  ${l.layer}  ${l.nearestDb.toFixed(1)} -> ${l.gptqDb.toFixed(1)} dB  (${l.channelsChanged}/${l.channels} channels changed)`,
    ),
  ];
}

/** `bias correction auto: applied (estimated loss ...)`: what `score` and `calibrate` print. */
export function biasCorrectionLine(r: PipelineResult): string {
  const b = r.biasCorrection;
  if (!b) return 'bias correction n/a';
  const e = b.estimatedLossPoints;
  if (!e) return `bias correction ${b.applied ? 'applied' : 'off'}`;
  return `bias correction auto: ${b.applied ? 'applied' : 'left off'} (estimated loss ${e.corrected.toFixed(3)} points corrected, ${e.uncorrected.toFixed(3)} uncorrected)`;
}
