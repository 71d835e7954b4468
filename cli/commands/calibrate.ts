/**
 * `cann-quant calibrate`: the pipeline up to the quantized models (sampler, sensitivity tiers,
 * per-layer methods, bias correction, loss estimate), for a zoo task or a user's own model on
 * unlabelled `.npy` samples; writes the quantization config and models and prints the
 * calibration report. No labelled evaluation: `score` does that.
 */
import type { Command } from 'commander';
import { describeEstimate } from '../../core/calibrate/estimate.ts';
import type { PipelineResult } from '../../core/pipeline/run.ts';
import { parameterSets } from '../../core/quantize/quantize.ts';
import { tierCounts } from '../../core/score/score-run.ts';
import { CliError } from '../errors.ts';
import { runUserModel } from '../local-run.ts';
import { makeOutputDir } from '../output-dir.ts';
import { defaultWorkers } from '../workers.ts';
import {
  biasCorrectionJson,
  biasCorrectionLine,
  phasesLine,
  printWarnings,
  type RunFlags,
  recipeOptions,
  resolveRecipe,
  runRecipe,
  weightRoundingJson,
  weightRoundingLines,
  writeRunArtifacts,
} from './score.ts';
import { parsePositiveInt, printResult } from './shared.ts';

/** Registers `cann-quant calibrate`. */
export function registerCalibrate(program: Command): void {
  recipeOptions(
    program
      .command('calibrate')
      .description('calibrate a recipe and write the quantization config and models'),
  )
    .option('--calib-data <n>', 'calibration samples', parsePositiveInt)
    .option(
      '--critical <globs>',
      'comma-separated layer names or globs that go up one sensitivity tier',
    )
    .option(
      '--sensitivity-aware',
      'measure per-layer sensitivity and calibrate each tier with its own method (the default in every template but naive-baseline)',
    )
    .option('--out <dir>', 'output directory', 'cann-quant-out')
    .option('--model <file>', 'your ONNX model (with --data; instead of --task)')
    .option(
      '--data <dir>',
      'unlabelled samples for --model: .npy files, one sample or a batch each (see cli/user-model.ts)',
    )
    .option(
      '--outputs <kind>',
      'how --model outputs are read: auto, classes (float32 [N, C] scores), values',
      'auto',
    )
    .action(
      async (
        o: RunFlags & {
          out: string;
          sensitivityAware?: boolean;
          data?: string;
          outputs: string;
        },
      ) => {
        if (o.model && o.task) throw new CliError('give --task or --model, not both', 2);
        if (o.model && !o.data)
          throw new CliError('--model needs --data <dir> (unlabelled .npy samples)', 2);
        if (o.data && !o.model) throw new CliError('--data needs --model <file.onnx>', 2);
        if (!['auto', 'classes', 'values'].includes(o.outputs))
          throw new CliError(`--outputs: '${o.outputs}' is not auto, classes or values`, 2);
        let recipe = await resolveRecipe(o);
        if (recipe.imported)
          throw new CliError(
            'recipe.imported brings its own scales: there is nothing to calibrate (score it: cann-quant score --recipe <file> --qdq <model>)',
            2,
          );
        await makeOutputDir(o.out);
        // As `score`: one worker per core by default (fmnist-resnet: 28.7 s on 2 workers against
        // 46 s in one thread; a task as small as smoke-fmnist is quicker with --workers 1).
        const workers = o.workers ?? defaultWorkers();
        if (o.sensitivityAware)
          recipe = { ...recipe, sensitivity: { ...recipe.sensitivity, enabled: true } };
        const user =
          o.model && o.data
            ? await runUserModel(recipe, {
                model: o.model,
                data: o.data,
                outputs: o.outputs as 'auto' | 'classes' | 'values',
                shards: o.shards,
                workers,
                cache: o.cache !== false,
                progress: !o.json,
              })
            : undefined;
        const r =
          user?.result ??
          (await runRecipe(recipe, {
            shards: o.shards,
            validate: false,
            progress: !o.json,
            workers,
            cache: o.cache !== false,
            label: `calibrate ${recipe.task}/${recipe.target}`,
          }));
        const files = await writeRunArtifacts(o.out, r);
        const out = {
          task: r.task,
          target: r.target,
          recipe: recipe.name,
          calibration_samples: r.calibration.samples.length,
          sampler: r.calibration.report ?? recipe.calibration.sampler,
          tiers: tierCounts(r),
          parameter_sets: parameterSets(r),
          estimated_loss_points: r.estimate?.lossPoints ?? null,
          bias_correction: biasCorrectionJson(r),
          weight_rounding: weightRoundingJson(r),
          estimate: r.estimate
            ? {
                kind: r.estimate.kind,
                samples: r.estimate.samples,
                ...(r.estimate.sqnrDb !== undefined ? { output_sqnr_db: r.estimate.sqnrDb } : {}),
              }
            : null,
          ...(user
            ? {
                model: user.info.model,
                data: { dir: user.info.data, files: user.info.files, samples: user.info.samples },
                output_kind: user.info.outputKind,
              }
            : {}),
          quantized_layers: r.layers.length,
          float_layers: r.skipped,
          sensitivity: r.sensitivity?.map((t) => ({
            layer: t.name,
            sqnr_db: t.sqnrDb,
            agreement: t.agreement,
            agreement_test: t.agreementTest,
            tier: t.tier,
            reason: t.reason,
            method: r.methods[t.name],
          })),
          files,
          phases: r.phases,
          warnings: r.warnings,
        };
        printWarnings(r.warnings);
        printResult(o.json, out, () =>
          [
            `recipe ${recipe.name}  task ${r.task}  target ${r.target}`,
            `samples used ${out.calibration_samples}  layers per tier: high ${out.tiers.high}, medium ${out.tiers.medium}, low ${out.tiers.low}  (scale, zero-point) sets ${out.parameter_sets}`,
            ...(user
              ? [
                  `model ${user.info.model}  data ${user.info.data} (${user.info.samples} samples in ${user.info.files} files)  outputs read as ${user.info.outputKind}`,
                ]
              : []),
            biasCorrectionLine(r),
            ...weightRoundingLines(r, true),
            `estimated INT8 loss ${r.estimate ? `${r.estimate.lossPoints.toFixed(2)} points (${describeEstimate(r.estimate)}, ${r.estimate.samples} unlabelled calibration samples)` : 'n/a'}`,
            ...(r.sensitivity ?? []).map(
              (t) =>
                `  ${t.tier.padEnd(6)} ${t.name}  SQNR ${t.sqnrDb.toFixed(1)} dB${t.agreementTest ? `  flips ${t.agreementTest.flips}/${t.agreementTest.samples}${t.agreementTest.basis === 'confident' ? ' confident' : ''} (p ${t.agreementTest.pValue.toPrecision(2)})` : ''}${t.reason !== 'rank' ? ` [${t.reason}]` : ''}  -> ${methodLabel(r.methods[t.name])}${searchLabel(r.methods[t.name])}`,
            ),
            ...r.skipped.map((s) => `  float: ${s.name} (${s.opType}): ${s.reason}`),
            `wrote ${files.emulation}, ${files.qdq}, ${files.config}`,
            phasesLine(r),
          ].join('\n'),
        );
      },
    );
}

/** `percentile 99.99`, `mse`, ... */
function methodLabel(m: { method: string; percentile?: number } | undefined): string {
  if (!m) return 'n/a';
  return m.method === 'percentile' && m.percentile !== undefined
    ? `percentile ${m.percentile}`
    : m.method;
}

/** The method search's trials of a layer: `  (tried: mse 50.8 dB, max 47.6 dB -3.1, ...)`. */
function searchLabel(m: PipelineResult['methods'][string] | undefined): string {
  if (!m?.search) return '';
  const trials = m.search.map(
    (t) =>
      `${methodLabel(t)} ${t.sqnrDb.toFixed(1)} dB${t.gainDb !== undefined ? ` ${t.gainDb >= 0 ? '+' : ''}${t.gainDb.toFixed(1)}` : ''}`,
  );
  return `  (tried ${trials.join(', ')})`;
}
