import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import {
  AccuracyGuardError,
  accuracyGuard,
  compareMetric,
  type MetricComparison,
  predictModel,
} from '../../core/evaluate/evaluate.ts';
import { type LayerErrorReport, measureLayerErrors } from '../../core/evaluate/layer-errors.ts';
import { decodeModel } from '../../core/onnx/index.ts';
import { getQuantizedInfo, type QuantizedModelInfo } from '../../core/quantize/metadata.ts';
import { renderValidationHtml } from '../../core/report/html.ts';
import { getTask } from '../../zoo/registry.ts';
import { nodeDataSource } from '../data-source.ts';
import { CliError } from '../errors.ts';
import { progressBar } from '../progress.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { readTaskModel } from '../zoo-files.ts';
import { printResult } from './shared.ts';

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
  guard?: { max_loss_points: number; pass: boolean };
  heatmap?: string;
  layer_errors?: LayerErrorReport;
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
    };
  } finally {
    bar.stop();
  }
}

/** Registers `cann-quant validate`. */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description("compare FP32 and INT8 on the task's full evaluation split")
    .requiredOption('--task <id>', 'benchmark task')
    .requiredOption(
      '--quantized <file>',
      'a model written by `cann-quant format` (emulation or QDQ)',
    )
    .option(
      '--accuracy-guard <points>',
      'fail (exit 3) when the loss exceeds this many points',
      Number.parseFloat,
    )
    .option(
      '--heatmap [file]',
      'write a self-contained HTML report with the per-layer error heatmap (default: report.html beside the model)',
    )
    .option(
      '--heatmap-samples <n>',
      'evaluation samples used for per-layer errors',
      (v) => Number.parseInt(v, 10),
      50,
    )
    .option('--json', 'print one JSON object')
    .action(
      async (o: {
        task: string;
        quantized: string;
        accuracyGuard?: number;
        heatmap?: string | boolean;
        heatmapSamples: number;
        json?: boolean;
      }) => {
        const bytes = new Uint8Array(
          await readFile(o.quantized).catch(() => {
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
        };
        if (o.heatmap) {
          const task = getTask(o.task);
          const split = await task.load(nodeDataSource(), 'evaluation');
          const fp32 = decodeModel(await readTaskModel(task.manifest));
          const layerErrors = await measureLayerErrors(
            fp32,
            decodeModel(bytes),
            v.info.layers,
            split,
            {
              indices: spreadIndices(split.size, o.heatmapSamples),
            },
            { session: { graphOptimizationLevel: v.info.graphOptimization } },
          );
          const path =
            typeof o.heatmap === 'string' ? o.heatmap : join(dirname(o.quantized), 'report.html');
          const metadata = Object.fromEntries([
            ...v.info.layers.map((l) => [l.name, { opType: l.kind }] as const),
            ...v.info.skipped.map(
              (l) => [l.name, { opType: l.opType, keptFloatReason: l.reason }] as const,
            ),
          ]);
          await writeFile(
            path,
            renderValidationHtml({
              summary: {
                task: o.task,
                target: v.info.target,
                metric: c.metric,
                fp32: c.fp32,
                int8: c.int8,
                lossPoints: c.lossPoints,
                samples: v.samples,
              },
              layerErrors,
              metadata,
            }),
          );
          result.heatmap = path;
          result.layer_errors = layerErrors;
        }
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
            `${c.metric}  FP32 ${c.fp32.toFixed(4)}  INT8 ${c.int8.toFixed(4)}  loss ${c.lossPoints.toFixed(2)} points`,
            ...Object.keys(v.fp32)
              .filter((k) => k !== c.metric)
              .map((k) => `${k}  FP32 ${v.fp32[k]!.toFixed(4)}  INT8 ${v.int8[k]!.toFixed(4)}`),
            ...(result.heatmap
              ? [
                  `heatmap ${result.heatmap} (${result.layer_errors?.flagged.length ?? 0} layers above ${((result.layer_errors?.threshold ?? 0) * 100).toFixed(0)}% relative error)`,
                ]
              : []),
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
