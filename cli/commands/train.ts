/**
 * `cann-quant train --task <id> --target <t> --progressive --hardware-sim --epochs N`:
 * progressive QAT (core/train) on the task's training split, then the QAT model scored by the
 * same pipeline as any submission. Steps: (1) PTQ of the FP32 model with the recipe (gives the
 * PTQ loss, the sensitivity tiers and the calibrated activation ranges); (2) three stages of
 * QAT (low, +medium, all) with the target's arithmetic simulated; (3) trained weights written
 * into the reference graph; (4) the QAT model run through the pipeline; its loss is measured
 * against the task's recorded FP32 reference.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import type { Tier } from '../../core/calibrate/sensitivity.ts';
import { DEFAULT_TARGET, getTarget } from '../../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import { type PipelineResult, runPipeline } from '../../core/pipeline/run.ts';
import { prepareModel } from '../../core/quantize/prepare.ts';
import { quantizeModel } from '../../core/quantize/quantize.ts';
import { qatScoringRecipe } from '../../core/recipe/qat.ts';
import type { Recipe } from '../../core/recipe/schema.ts';
import type { QatEvidence } from '../../core/score/checks.ts';
import { qatSplits } from '../../core/train/data.ts';
import { sameGraph, writeTrainedWeights } from '../../core/train/export.ts';
import type { StageLog } from '../../core/train/qat.ts';
import { getTask } from '../../zoo/registry.ts';
import { nodeDataSource } from '../data-source.ts';
import { CliError } from '../errors.ts';
import { makeOutputDir } from '../output-dir.ts';
import { progressBar, progressExecutor } from '../progress.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { evaluateOnWorkers } from '../train-eval.ts';
import { runOnWorkers } from '../workers.ts';
import { readTaskModel } from '../zoo-files.ts';
import { resolveRecipe } from './score.ts';
import { parsePositiveInt, parseTarget, printResult } from './shared.ts';

interface TrainFlags {
  task?: string;
  target?: string;
  template?: string;
  progressive?: boolean;
  hardwareSim?: boolean;
  epochs: number;
  trainSamples: number;
  heldOut: number;
  batch: number;
  lr: string;
  seed: number;
  out?: string;
  score: boolean;
  ptqEval: boolean;
  model?: string;
  json?: boolean;
  progress?: boolean;
  log?: boolean;
  profile?: number;
  workers?: number;
  checkpoints: number;
  distill?: string;
  distillWeight: string;
  trackRanges?: string;
}

const pts = (x: number) => Math.round(x * 1e4) / 100;

/** Runs the pipeline on given model bytes for a recipe (the QAT model or the FP32 model). */
async function scoreModel(
  recipe: Recipe,
  model: Uint8Array,
  label: string,
  progress: boolean | undefined,
  validate = true,
): Promise<PipelineResult> {
  const task = getTask(recipe.task);
  const source = nodeDataSource();
  const [calibration, evaluation] = await Promise.all([
    task.load(source, 'calibration'),
    validate
      ? task.load(source, 'evaluation')
      : Promise.resolve({ size: 0, batch: () => ({}), labels: undefined }),
  ]);
  const bar = progressBar(label, progress);
  try {
    return await runPipeline(
      { recipe, task, model, calibration, evaluation },
      {
        shards: 1,
        validate,
        executor: progressExecutor(bar),
      },
    );
  } finally {
    bar.stop();
  }
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'progressive quantization-aware training with the target arithmetic simulated, then scoring of the QAT model',
    )
    .requiredOption('--task <id>', 'zoo task (the Fashion-MNIST classifiers and spam-transformer)')
    .option(
      '--target <t>',
      `hardware target, e.g. ascend310 or ascend310-w4a8 (default ${DEFAULT_TARGET})`,
      parseTarget,
    )
    .option('--template <name>', 'recipe template (default: the task kind default)')
    .option('--progressive', 'stage the quantization by sensitivity tier (low, +medium, all)')
    .option('--hardware-sim', "simulate the target's integer arithmetic in the forward pass")
    .option('--epochs <n>', 'epochs per stage over the training subset', parsePositiveInt, 1)
    .option(
      '--train-samples <n>',
      'training images drawn from the training split (subset, seeded)',
      parsePositiveInt,
      2000,
    )
    .option('--held-out <n>', 'held-out training images for the monitor', parsePositiveInt, 500)
    .option('--batch <n>', 'batch size', parsePositiveInt, 32)
    .option('--lr <x>', 'peak learning rate of each stage (Adam, cosine)', '1e-4')
    .option('--seed <n>', 'seed of the subset and the shuffles', parsePositiveInt, 20261126)
    .option('--out <dir>', 'output folder (default out/qat-<task>-<target>)')
    .option('--no-score', 'skip scoring the QAT model through the pipeline')
    .option(
      '--no-ptq-eval',
      'PTQ step without its evaluation (tiers and ranges only; take the PTQ loss from `cann-quant score` with the same recipe)',
    )
    .option('--model <file>', 'score this QAT model instead of training (skips steps 2-3)')
    .option(
      '--profile <steps>',
      'only profile N training steps (FP32 and fully simulated; PTQ ranges from 50 samples) and exit',
      parsePositiveInt,
    )
    .option(
      '--workers <n>',
      "PTQ pipeline on n worker_threads, and the QAT model scored by quantizeModel (the PTQ run's per-layer methods and calibration samples) + its emulation model on n threads",
      parsePositiveInt,
    )
    .option('--checkpoints <n>', 'monitor checkpoints per epoch', parsePositiveInt, 2)
    .option(
      '--distill <temperature>',
      'knowledge distillation from the FP32 model at this temperature (e.g. 2); the monitor keeps the checkpoint closest to FP32',
    )
    .option(
      '--track-ranges <momentum>',
      "track each simulated layer's activation range during training (EMA of the batch min/max from the calibrated range, e.g. 0.99); default: ranges stay calibrated",
    )
    .option(
      '--distill-weight <w>',
      'weight of the distillation term; 1 - w goes to the label cross-entropy',
      '1',
    )
    .option('--json', 'print one JSON object')
    .option('--no-progress', 'no progress bars')
    .option('--log', 'one stderr line per step range and phase (for logs without a terminal)')
    .action(async (flags: TrainFlags) => {
      if (!flags.model && !flags.profile && (!flags.progressive || !flags.hardwareSim))
        throw new CliError(
          'train needs --progressive and --hardware-sim (the only training mode implemented)',
          2,
        );
      const lr = Number(flags.lr);
      if (!(lr > 0)) throw new CliError(`--lr '${flags.lr}' is not a positive number`, 2);
      const trackRanges =
        flags.trackRanges === undefined ? undefined : { momentum: Number(flags.trackRanges) };
      if (trackRanges && !(trackRanges.momentum >= 0 && trackRanges.momentum <= 1))
        throw new CliError(`--track-ranges '${flags.trackRanges}' is not a momentum in [0, 1]`, 2);
      let distill: { temperature: number; weight: number } | undefined;
      if (flags.distill !== undefined) {
        distill = { temperature: Number(flags.distill), weight: Number(flags.distillWeight) };
        if (!(distill.temperature > 0))
          throw new CliError(`--distill '${flags.distill}' is not a positive temperature`, 2);
        if (!(distill.weight >= 0 && distill.weight <= 1))
          throw new CliError(`--distill-weight '${flags.distillWeight}' is not in [0, 1]`, 2);
      }
      const recipe = await resolveRecipe({
        task: flags.task!,
        ...(flags.target ? { target: flags.target } : {}),
        ...(flags.template ? { template: flags.template } : {}),
      });
      const target = getTarget(recipe.target);
      const task = getTask(recipe.task);
      if (
        task.manifest.kind === 'detection' &&
        flags.distill === undefined &&
        !flags.model &&
        !flags.profile
      )
        throw new CliError(
          `train --task ${task.manifest.id}: detection samples have no labels to train on; pass --distill <T> (distillation from the FP32 model's output maps)`,
          2,
        );
      const out = flags.out ?? join('out', `qat-${recipe.task}-${recipe.target}`);
      await makeOutputDir(out);
      useNodeRuntime();
      // The training stack (TensorFlow.js and its WebAssembly backend) loads here, not at CLI
      // start: importing it took ~1 s of every command's start-up, `score` included.
      const [
        { useNodeTraining },
        { TrainableModel },
        { profileSteps },
        { evaluateSplit, progressiveQat },
      ] = await Promise.all([
        import('../train-backend.ts'),
        import('../../core/train/model.ts'),
        import('../../core/train/profile.ts'),
        import('../../core/train/qat.ts'),
      ]);
      const progress = flags.progress === false ? false : undefined;
      const fp32Bytes = await readTaskModel(task.manifest);
      const fp32Model = decodeModel(fp32Bytes);
      const reference = task.manifest.reference.fp32[task.manifest.metric.primary]!;
      if (flags.profile) {
        await useNodeTraining('wasm');
        const splits = await qatSplits(task.manifest, nodeDataSource(), {
          trainCount: flags.batch,
          heldOutCount: 1,
          seed: flags.seed,
        });
        const calibration = await task.load(nodeDataSource(), 'calibration');
        const q = await quantizeModel(fp32Model, calibration, {
          target,
          samples: { indices: spreadIndices(calibration.size, 50) },
          biasCorrection: false,
        });
        const tm = new TrainableModel(q.prepared, target);
        const sim = {
          quantized: new Set(q.layers.map((l) => l.name)),
          act: new Map(q.layers.map((l) => [l.name, l.act])),
          fp16: target.floatPath === 'fp16',
        };
        await profileSteps(tm, splits.train, sim, 1, flags.batch); // warm-up
        const profile = {
          task: recipe.task,
          target: recipe.target,
          batch: flags.batch,
          fp32: await profileSteps(tm, splits.train, null, flags.profile, flags.batch),
          simulated: await profileSteps(tm, splits.train, sim, flags.profile, flags.batch),
        };
        tm.dispose();
        await writeFile(join(out, 'profile.json'), `${JSON.stringify(profile, null, 2)}\n`);
        printResult(flags.json, profile, () =>
          (['fp32', 'simulated'] as const)
            .map((k) => {
              const p = profile[k];
              return [
                `${k}: ${p.wallMsPerStep.toFixed(0)} ms/step wall, ${p.kernelMsPerStep.toFixed(0)} ms/step in kernels (batch ${p.batch})`,
                ...p.byCategory.map(
                  (c) =>
                    `  ${c.category.padEnd(52)} ${c.msPerStep.toFixed(0).padStart(6)} ms  ${(c.share * 100).toFixed(1)}%`,
                ),
              ].join('\n');
            })
            .join('\n'),
        );
        return;
      }
      const timings: Record<string, number> = {};
      const t0 = performance.now();

      // 1. PTQ with the recipe: loss, tiers, activation ranges.
      const ptq = flags.workers
        ? await runOnWorkers(recipe, { workers: flags.workers, validate: flags.ptqEval })
        : await scoreModel(
            recipe,
            fp32Bytes,
            `ptq ${recipe.task}/${recipe.target}`,
            progress,
            flags.ptqEval,
          );
      timings.ptqSeconds = (performance.now() - t0) / 1000;
      if (flags.log) process.stderr.write(`ptq done ${timings.ptqSeconds.toFixed(1)} s\n`);
      const ptqInt8 = ptq.evaluation?.int8[task.manifest.metric.primary];
      const ptqLoss = ptqInt8 === undefined ? null : (reference - ptqInt8) * 100;

      let stages: StageLog[] = [];
      let qatBytes: Uint8Array;
      let graphCheck: { same: boolean; why?: string };
      let heldOutFinal: { top1: number; loss: number } | undefined;
      let data: { train: string; heldOut: string } | undefined;
      if (flags.model) {
        qatBytes = new Uint8Array(await readFile(flags.model));
        graphCheck = sameGraph(fp32Model, decodeModel(qatBytes));
      } else {
        // 2. progressive QAT
        await useNodeTraining('wasm');
        const splits = await qatSplits(task.manifest, nodeDataSource(), {
          trainCount: flags.trainSamples,
          heldOutCount: flags.heldOut,
          seed: flags.seed,
        });
        data = { train: splits.train.description, heldOut: splits.heldOut.description };
        const tiers = new Map<string, Tier>((ptq.sensitivity ?? []).map((t) => [t.name, t.tier]));
        const prepared = prepareModel(fp32Model, target);
        const bars = [0, 1, 2].map((s) =>
          progressBar(`qat stage ${s + 1}/3 ${['low', '+medium', 'all'][s]}`, progress),
        );
        const t1 = performance.now();
        const result = progressiveQat(prepared, {
          target,
          layers: ptq.layers,
          tiers,
          train: splits.train,
          heldOut: splits.heldOut,
          epochs: flags.epochs,
          batchSize: flags.batch,
          lr,
          seed: flags.seed,
          checkpointsPerEpoch: flags.checkpoints,
          ...(distill ? { distill } : {}),
          ...(trackRanges ? { trackRanges } : {}),
          onProgress: (s, done, total) => {
            if (s > 0 && done === 1) bars[s - 1]!.stop();
            bars[s]!.update(done, total);
            if (flags.log && (done === 1 || done % 8 === 0 || done === total))
              process.stderr.write(
                `qat stage ${s + 1} step ${done}/${total} ${((performance.now() - t1) / 1000).toFixed(1)} s\n`,
              );
          },
        });
        for (const b of bars) b.stop();
        timings.qatSeconds = (performance.now() - t1) / 1000;
        stages = result.stages;
        const sim = {
          quantized: new Set(ptq.layers.map((l) => l.name)),
          act: new Map(ptq.layers.map((l) => [l.name, l.act])),
          fp16: target.floatPath === 'fp16',
        };
        // a classifier's held-out top-1 (detection has no labels: its stage log holds the fit)
        if (splits.heldOut.targets !== 'maps')
          heldOutFinal = evaluateSplit(result.model, splits.heldOut, sim);
        // 3. weights back into the reference graph
        const qatModel = writeTrainedWeights(fp32Model, prepared, result.model.weights());
        result.model.dispose();
        graphCheck = sameGraph(fp32Model, qatModel);
        qatBytes = encodeModel(qatModel);
        await writeFile(join(out, 'model.qat.onnx'), qatBytes);
        await writeFile(join(out, 'recipe.json'), `${JSON.stringify(recipe, null, 2)}\n`);
        await writeFile(
          join(out, 'stage-log.json'),
          `${JSON.stringify({ task: recipe.task, target: recipe.target, data, flags: { epochs: flags.epochs, trainSamples: flags.trainSamples, heldOut: flags.heldOut, batch: flags.batch, lr, seed: flags.seed, ...(distill ? { distill } : {}), ...(trackRanges ? { trackRanges } : {}) }, stages }, null, 2)}\n`,
        );
      }

      // 4. the QAT model through the pipeline, loss against the recorded FP32 reference
      let qat: { fp32?: number; int8: number; how: string } | undefined;
      const primary = task.manifest.metric.primary;
      if (flags.score) {
        const t2 = performance.now();
        if (flags.workers) {
          const calibration = await task.load(nodeDataSource(), 'calibration');
          const q = await quantizeModel(decodeModel(qatBytes), calibration, {
            target,
            layerMethods: ptq.methods,
            samples: { indices: ptq.calibration.samples },
            biasCorrection: qatScoringRecipe(recipe).format.biasCorrection === true,
            ...(recipe.format.weights === 'per-tensor'
              ? { weightGranularity: 'per-tensor' as const }
              : {}),
            ...(recipe.format.activations !== 'target'
              ? { symmetricActivations: recipe.format.activations === 'symmetric' }
              : {}),
          });
          const ev = await evaluateOnWorkers(recipe.task, encodeModel(q.emulation), flags.workers);
          qat = {
            int8: ev.metrics[primary]!,
            how: `quantizeModel with the PTQ run's per-layer methods and ${ptq.calibration.samples.length} calibration samples, emulation model on ${ev.samples} evaluation samples (${flags.workers} threads)`,
          };
        } else {
          const r = await scoreModel(
            qatScoringRecipe(recipe),
            qatBytes,
            `score qat ${recipe.task}/${recipe.target}`,
            progress,
          );
          qat = {
            fp32: r.evaluation!.fp32[primary]!,
            int8: r.evaluation!.int8[primary]!,
            how: 'runPipeline with the recipe (bias correction off: QAT trained the biases) on the QAT model (full evaluation split)',
          };
        }
        timings.scoreSeconds = (performance.now() - t2) / 1000;
      }
      const qatLoss = qat ? (reference - qat.int8) * 100 : null;
      const evidence: QatEvidence | null =
        qatLoss === null || ptqLoss === null
          ? null
          : {
              stages: stages.map((s) => ({
                tiers: s.tiers,
                simulatedArithmetic: s.simulatedArithmetic,
              })),
              stageLog: flags.model ? '' : join(out, 'stage-log.json'),
              sameGraph: graphCheck.same,
              lossPoints: qatLoss,
              ptqLossPoints: ptqLoss,
            };
      const result = {
        task: recipe.task,
        target: recipe.target,
        recipe: recipe.name,
        metric: primary,
        fp32Reference: reference,
        ptq: {
          int8: ptqInt8 ?? null,
          lossPoints: ptqLoss === null ? null : pts(ptqLoss / 100),
          ...(ptqLoss === null ? { note: 'not evaluated (--no-ptq-eval)' } : {}),
        },
        qat: qat
          ? {
              fp32: qat.fp32 ?? null,
              int8: qat.int8,
              scoredBy: qat.how,
              lossPoints: pts(qatLoss! / 100),
              recoveredFraction:
                ptqLoss !== null && ptqLoss > 0 ? (ptqLoss - qatLoss!) / ptqLoss : null,
              aboveFp32Reference: qat.int8 > reference,
            }
          : null,
        heldOutFinal,
        ...(distill ? { distill } : {}),
        sameGraph: graphCheck,
        stages: stages.map((s) => ({
          stage: s.stage,
          tiers: s.tiers,
          layers: s.quantized.length,
          start: s.start.heldOut,
          end: s.end.heldOut,
          stopped: s.stopped,
          rolledBack: s.rolledBack,
          steps: s.stepsRun,
          seconds: Math.round(s.seconds * 10) / 10,
          secondsPerStep: Math.round(s.secondsPerStep * 1000) / 1000,
        })),
        data,
        timings,
        evidence,
        out,
      };
      await writeFile(join(out, 'train-result.json'), `${JSON.stringify(result, null, 2)}\n`);
      printResult(flags.json, result, () =>
        [
          `task ${result.task}  target ${result.target}  metric ${primary}  FP32 reference ${reference}`,
          result.ptq.lossPoints === null
            ? 'PTQ  not evaluated (--no-ptq-eval)'
            : `PTQ  ${result.ptq.int8}  loss ${result.ptq.lossPoints} points`,
          ...stages.map(
            (s) =>
              `stage ${s.stage} [${s.tiers.join('+')}] ${s.quantized.length} layers: held-out ${Number.isNaN(s.start.heldOut) ? `fit to FP32 ${s.start.teacher?.mse?.toExponential(3)} -> ${s.end.teacher?.mse?.toExponential(3)}` : `${s.start.heldOut.toFixed(4)} -> ${s.end.heldOut.toFixed(4)}`} (${s.stopped}${s.rolledBack ? ', rolled back to best' : ''}) ${s.stepsRun} steps ${s.seconds.toFixed(1)} s`,
          ),
          result.qat
            ? `QAT  ${result.qat.int8}  loss ${result.qat.lossPoints} points (QAT model FP32 ${result.qat.fp32 ?? 'not run'}); recovered ${result.qat.recoveredFraction === null ? 'n/a' : `${(result.qat.recoveredFraction * 100).toFixed(0)}%`} of the PTQ loss`
            : 'QAT model not scored (--no-score)',
          `graph ${graphCheck.same ? 'same nodes and shapes as the reference' : `changed: ${graphCheck.why}`}`,
          `written ${out}/model.qat.onnx, recipe.json, stage-log.json, train-result.json`,
        ].join('\n'),
      );
    });
}
