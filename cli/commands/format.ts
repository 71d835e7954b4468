import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { METHOD_NAMES, type MethodName } from '../../core/calibrate/methods.ts';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import { DEFAULT_TARGET, getTarget, TARGETS } from '../../core/formats/targets.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import { setQuantizedInfo } from '../../core/quantize/metadata.ts';
import {
  parameterSets,
  type QuantizationResult,
  quantizeModel,
} from '../../core/quantize/quantize.ts';
import { getTask } from '../../zoo/registry.ts';
import { nodeDataSource } from '../data-source.ts';
import { CliError } from '../errors.ts';
import { makeOutputDir } from '../output-dir.ts';
import { progressBar } from '../progress.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { readTaskModel } from '../zoo-files.ts';
import { parseNumber, parsePositiveInt, parseTarget, printResult } from './shared.ts';

/** Options of {@link formatModel}. */
export interface FormatOptions {
  task: string;
  model?: string;
  hardware: string;
  biasCorrect?: boolean;
  calibData: number;
  method: MethodName;
  percentile?: number;
  perTensorWeights?: boolean;
  symmetricActivations?: boolean;
  progress?: boolean;
}

/** Quantizes a task's model (or a user model on the task's data) for a target. */
export async function formatModel(
  opts: FormatOptions,
): Promise<{ result: QuantizationResult; model: Uint8Array }> {
  const task = getTask(opts.task);
  let target: ReturnType<typeof getTarget>;
  try {
    target = getTarget(opts.hardware);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const bytes = opts.model
    ? new Uint8Array(
        await readFile(opts.model).catch(() => {
          throw new CliError(`cannot read model file '${opts.model}'`);
        }),
      )
    : await readTaskModel(task.manifest);
  const model = decodeModel(bytes);
  useNodeRuntime();
  const split = await task.load(nodeDataSource(), 'calibration');
  const bar = progressBar(`format ${target.id}`, opts.progress);
  try {
    const result = await quantizeModel(model, split, {
      target,
      method: {
        method: opts.method,
        ...(opts.percentile !== undefined ? { percentile: opts.percentile } : {}),
      },
      ...(opts.perTensorWeights ? { weightGranularity: 'per-tensor' as const } : {}),
      ...(opts.symmetricActivations !== undefined
        ? { symmetricActivations: opts.symmetricActivations }
        : {}),
      biasCorrection: opts.biasCorrect ?? false,
      samples: { indices: spreadIndices(split.size, opts.calibData) },
      onProgress: (_phase, d, t) => bar.update(d, t),
    });
    return { result, model: bytes };
  } finally {
    bar.stop();
  }
}

/** The JSON summary of a quantization (also written as quantization.json). */
export function quantizationSummary(task: string, r: QuantizationResult) {
  return {
    task,
    target: r.target,
    calibrationSamples: r.calibrationSamples,
    quantizedLayers: r.layers.length,
    floatLayers: r.skipped,
    foldedBatchNorms: r.prepared.foldedBatchNorms,
    parameterSets: parameterSets(r),
    biasCorrection: r.biasCorrection,
    layers: r.layers.map((l) => ({
      name: l.name,
      kind: l.kind,
      input: l.input,
      output: l.output,
      activation: { ...l.act, clip: r.clips[l.name] },
      weight: {
        granularity: l.weight.scales.length > 1 ? 'per-channel' : 'per-tensor',
        scales: [...l.weight.scales],
        zeroPoints: [...l.weight.zeroPoints],
      },
      bias: [...l.bias],
    })),
  };
}

/** Registers `cann-quant format`. */
export function registerFormat(program: Command): void {
  program
    .command('format')
    .description(
      "quantize a model into a target's INT8 format: the emulation model and a standard QDQ model",
    )
    .requiredOption('--task <id>', 'benchmark task whose model and calibration split are used')
    .option(
      '--model <file>',
      "an ONNX model to quantize instead of the task's (evaluated on the task's data)",
    )
    .option(
      '--hardware <target>',
      `target (${Object.keys(TARGETS).join(', ')}; default ${DEFAULT_TARGET})`,
      parseTarget,
      DEFAULT_TARGET,
    )
    .option('--bias-correct', 'empirical bias correction over the calibration samples')
    .option('--calib-data <n>', 'calibration samples', parsePositiveInt, 50)
    .option('--method <m>', `activation calibration: ${METHOD_NAMES.join(' | ')}`, 'percentile')
    .option('--percentile <p>', 'percentile kept by --method percentile', parseNumber)
    .option('--per-tensor-weights', 'one weight scale per tensor instead of per channel')
    .option('--symmetric-activations', 'force symmetric activations')
    .option(
      '--asymmetric',
      "force asymmetric activations with a zero point (ascend310's own scheme)",
    )
    .requiredOption('--out <dir>', 'output directory')
    .option('--json', 'print one JSON object')
    .action(async (o: FormatOptions & { out: string; json?: boolean; asymmetric?: boolean }) => {
      if (!METHOD_NAMES.includes(o.method))
        throw new CliError(`--method must be one of ${METHOD_NAMES.join(', ')}, got '${o.method}'`);
      if (o.asymmetric && o.symmetricActivations)
        throw new CliError('give --asymmetric or --symmetric-activations, not both', 2);
      if (o.asymmetric) o.symmetricActivations = false;
      await makeOutputDir(o.out);
      const { result } = await formatModel({ ...o, progress: !o.json });
      const layersInfo = result.layers.map((l) => ({
        name: l.name,
        kind: l.kind,
        output: l.output,
        ...(l.weightSide ? { weightSide: l.weightSide } : {}),
      }));
      const common = {
        target: result.target,
        task: o.task,
        layers: layersInfo,
        skipped: result.skipped,
        calibrationSamples: result.calibrationSamples,
      };
      const emulationPath = join(o.out, 'model.emulation.onnx');
      const qdqPath = join(o.out, 'model.qdq.onnx');
      const target = getTarget(result.target);
      await writeFile(
        emulationPath,
        encodeModel(
          setQuantizedInfo(result.emulation, {
            ...common,
            kind: target.executor === 'ort-qdq' ? 'qdq' : 'emulation',
            graphOptimization: target.executor === 'ort-qdq' ? 'all' : 'disabled',
          }),
        ),
      );
      await writeFile(
        qdqPath,
        encodeModel(
          setQuantizedInfo(result.qdq, { ...common, kind: 'qdq', graphOptimization: 'all' }),
        ),
      );
      const summary = quantizationSummary(o.task, result);
      await writeFile(join(o.out, 'quantization.json'), `${JSON.stringify(summary, null, 1)}\n`);
      const out = {
        ...summary,
        layers: summary.layers.length,
        files: {
          emulation: emulationPath,
          qdq: qdqPath,
          quantization: join(o.out, 'quantization.json'),
        },
      };
      printResult(o.json, out, () =>
        [
          `task ${o.task}  target ${result.target}  calibration samples ${result.calibrationSamples}`,
          `quantized layers ${result.layers.length}  float layers ${result.skipped.length}  folded BatchNorms ${result.prepared.foldedBatchNorms}  (scale, zero-point) sets ${out.parameterSets}`,
          ...result.skipped.map((s) => `  float: ${s.name} (${s.opType}): ${s.reason}`),
          `wrote ${emulationPath}`,
          `wrote ${qdqPath}`,
          `wrote ${out.files.quantization}`,
        ].join('\n'),
      );
    });
}
