/**
 * `cann-quant import`: cross-framework quantization. A model another framework quantized
 * (PyTorch, ONNX Runtime, TensorRT's toolkit: any QDQ ONNX file) is placed on a target with the
 * framework's own scales (core/import), and, for a benchmark task, evaluated three ways over the
 * task's evaluation split: the task's FP32 model, the file as exported (onnxruntime executing
 * its QuantizeLinear/DequantizeLinear in float, the framework's semantics), and the target's
 * emulator. The difference between the last two is what the chip's format and arithmetic do to
 * that framework's quantization; nothing is calibrated again.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { compareMetric, predictModel } from '../../core/evaluate/evaluate.ts';
import {
  DEFAULT_TARGET,
  getTarget,
  isDynamic,
  TARGETS,
  type TargetId,
} from '../../core/formats/targets.ts';
import {
  type ImportedLayer,
  importKindRefusal,
  interfaceMismatch,
  quantizeImported,
  type SameModel,
  sameTaskModel,
} from '../../core/import/layers.ts';
import type { QdqImport } from '../../core/import/qdq.ts';
import { decodeModel, encodeModel } from '../../core/onnx/index.ts';
import type { SkippedLayer } from '../../core/quantize/prepare.ts';
import { getTask } from '../../zoo/registry.ts';
import { nodeDataSource } from '../data-source.ts';
import { CliError } from '../errors.ts';
import { readQdqFile } from '../imported-store.ts';
import { progressBar } from '../progress.ts';
import { useNodeRuntime } from '../runtime-node.ts';
import { readTaskModel } from '../zoo-files.ts';
import { parsePositiveInt, parseTarget, printResult } from './shared.ts';

interface ImportCliOptions {
  model: string;
  task?: string;
  target: TargetId;
  allTargets?: boolean;
  limit?: number;
  out?: string;
  json?: boolean;
}

/** One target's view of the imported quantization (and its metric, for a task). */
export interface ImportTargetResult {
  target: TargetId;
  quantized: number;
  exact: { activations: number; weights: number };
  layers: ImportedLayer[];
  float: SkippedLayer[];
  int8?: number;
  loss_points?: number;
  /** Target emulation minus the file as exported, in points (negative: the target loses more). */
  vs_exported_points?: number;
}

/** `cann-quant import --json`. */
export interface ImportResult {
  model: string;
  producer: string;
  format: QdqImport['format'];
  removed: QdqImport['removed'];
  task?: string;
  /** Whether the file quantizes the task's model (its loss is against that model's FP32). */
  same_model?: SameModel;
  metric?: string;
  samples?: number;
  fp32?: number;
  as_exported?: number;
  targets: ImportTargetResult[];
}

const pts = (x: number | undefined) =>
  x === undefined ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;

/** Registers `cann-quant import`. */
export function registerImport(program: Command): void {
  program
    .command('import')
    .description(
      "place a model another framework quantized (a QDQ ONNX file, ONNX Runtime's QOperator format, or its quantize_dynamic output) on a target with that framework's scales, and measure it",
    )
    .requiredOption(
      '--model <file>',
      'the quantized ONNX file (QDQ: QuantizeLinear/DequantizeLinear; QOperator: QLinearConv, QGemm...; or dynamic: DynamicQuantizeLinear + MatMulInteger/ConvInteger, for cpu-wasm-dynamic)',
    )
    .option(
      '--task <id>',
      'a benchmark task whose evaluation split measures it (else: mapping only)',
    )
    .option(
      '--target <t>',
      `target (${Object.keys(TARGETS).join(', ')}; default ${DEFAULT_TARGET})`,
      parseTarget,
      DEFAULT_TARGET,
    )
    .option('--all-targets', 'every target')
    .option('--limit <n>', 'evaluate only the first n samples', parsePositiveInt)
    .option('--out <file>', 'write the target-format QDQ model (one target)')
    .option('--json', 'print one JSON object')
    .action(async (o: ImportCliOptions) => {
      if (o.out && o.allTargets)
        throw new CliError('--out needs one --target, not --all-targets', 2);
      if (o.limit !== undefined && !o.task) throw new CliError('--limit needs --task', 2);
      const { bytes, model, imported } = await readQdqFile(o.model);
      const dynamicFile = imported.format === 'dynamic';
      // Every target of the file's kind: a QDQ file's calibrated activation scales go on the
      // static targets, a dynamically quantized file on the dynamic ones.
      const targets = o.allTargets
        ? (Object.keys(TARGETS) as TargetId[]).filter((t) => isDynamic(TARGETS[t]) === dynamicFile)
        : [o.target];
      const refusal = importKindRefusal(imported, getTarget(targets[0]!));
      if (refusal) throw new CliError(`${o.model}: ${refusal}`, 2);
      const placed = targets.map((t) => quantizeImported(imported, getTarget(t)));
      if (o.out) await writeFile(o.out, encodeModel(placed[0]!.qdq));
      const result: ImportResult = {
        model: o.model,
        producer: imported.producer,
        format: imported.format,
        removed: imported.removed,
        targets: placed.map((q) => ({
          target: q.target,
          quantized: q.layers.length,
          exact: {
            activations: q.report.filter((l) => l.activation.mapping === 'exact').length,
            weights: q.report.filter((l) => l.weight.mapping === 'exact').length,
          },
          layers: q.report,
          float: q.skipped,
        })),
      };
      if (o.task) {
        let task: ReturnType<typeof getTask>;
        try {
          task = getTask(o.task);
        } catch (err) {
          throw new CliError((err as Error).message, 2);
        }
        const taskModel = await readTaskModel(task.manifest);
        const mismatch = interfaceMismatch(model, decodeModel(taskModel));
        if (mismatch)
          throw new CliError(`'${o.model}' cannot stand in for ${o.task}'s model: ${mismatch}`, 2);
        result.same_model = sameTaskModel(decodeModel(taskModel), imported, getTarget(targets[0]!));
        const split = await task.load(nodeDataSource(), 'evaluation');
        useNodeRuntime();
        const end = Math.min(split.size, o.limit ?? split.size);
        const labels =
          end === split.size
            ? split.labels
            : (
                split.labels as unknown as { slice(a: number, b: number): typeof split.labels }
              ).slice(0, end);
        const metric = task.manifest.metric.primary;
        // A target executed by onnxruntime's own QDQ kernels (cpu-wasm) runs with its graph
        // optimizations on, as the pipeline's validate phase runs it: they fuse DQ -> op -> Q
        // into the integer kernels. Everything else runs unoptimized (the float semantics).
        // A dynamically quantized file as exported runs one sample at a time: its
        // DynamicQuantizeLinear takes one range over whatever batch it is given, and a batch-1
        // deployment gives it one sample (the dynamic target's export quantizes per sample too).
        const measure = async (
          name: string,
          m: Uint8Array,
          integerKernels = false,
          batchSize?: number,
        ) => {
          const bar = progressBar(name, !o.json);
          try {
            const p = await predictModel(task, m, split, {
              end,
              graphOptimizationLevel: integerKernels ? 'all' : 'disabled',
              ...(batchSize !== undefined ? { batchSize } : {}),
              onProgress: (d, t) => bar.update(d, t),
            });
            return task.score(p, labels);
          } finally {
            bar.stop();
          }
        };
        const fp32 = await measure('fp32', taskModel);
        const exported = await measure('as exported', bytes, false, dynamicFile ? 1 : undefined);
        result.task = o.task;
        result.metric = metric;
        result.samples = end;
        result.fp32 = fp32[metric]!;
        result.as_exported = exported[metric]!;
        for (const [i, q] of placed.entries()) {
          const int8 = await measure(
            q.target,
            encodeModel(q.emulation),
            getTarget(q.target).executor === 'ort-qdq',
          );
          const r = result.targets[i]!;
          r.int8 = int8[metric]!;
          r.loss_points = compareMetric(metric, fp32, int8).lossPoints;
          r.vs_exported_points = -compareMetric(metric, exported, int8).lossPoints;
        }
      }
      printResult(o.json, result, () => human(result, o));
    });
}

function human(r: ImportResult, o: ImportCliOptions): string {
  const lines = [
    `model ${r.model} (${r.producer || 'producer not named'}): ` +
      (r.format === 'dynamic'
        ? `quantized dynamically, ${r.removed.dynamicQuantizeLinear} DynamicQuantizeLinear and ${r.removed.integerOps} MatMulInteger/ConvInteger read; the framework's weights are used as they are, activations are quantized per input at run time`
        : `${r.format === 'qoperator' ? `operator style, ${r.removed.integerOps} QLinear ops, ` : ''}${r.removed.quantizeLinear} QuantizeLinear and ${r.removed.dequantizeLinear} DequantizeLinear read; the framework's scales are used as they are, nothing is calibrated`),
  ];
  if (r.same_model && !r.same_model.same)
    lines.push(
      `warning: this is not ${r.task}'s model (${r.same_model.why}): its loss against ${r.task}'s FP32 means little`,
    );
  if (r.task)
    lines.push(
      `task ${r.task}, ${r.samples} evaluation samples: ${r.metric} FP32 ${r.fp32!.toFixed(4)}, as exported (onnxruntime, ${r.format === 'dynamic' ? 'its own integer kernels, one sample at a time' : r.format === 'qoperator' ? 'its own integer kernels' : 'QDQ in float'}) ${r.as_exported!.toFixed(4)} (${pts(100 * (r.as_exported! - r.fp32!))} points)`,
    );
  for (const t of r.targets) {
    lines.push(
      `${t.target}: ${t.quantized} layers in integers (activations exact ${t.exact.activations}/${t.quantized}, weights exact ${t.exact.weights}/${t.quantized})` +
        (t.int8 !== undefined
          ? `; ${r.metric} ${t.int8.toFixed(4)}, loss ${pts(t.loss_points)} points, ${pts(t.vs_exported_points)} against the file as exported`
          : ''),
    );
    if (o.allTargets) continue;
    const width = Math.max(5, ...t.layers.map((l) => l.name.length));
    for (const l of t.layers) {
      const a = l.activation;
      const act =
        'target' in a
          ? `act ${a.mapping.padEnd(5)} scale ${a.target.scale.toPrecision(4)} zp ${String(a.target.zeroPoint).padStart(4)}${a.note ? ` (${a.note})` : ''}`
          : 'act dynamic (per input, at run time)';
      lines.push(
        `  ${l.name.padEnd(width)}  ${act}; weights ${l.weight.foreign} ${l.weight.mapping}${l.weight.note ? ` (${l.weight.note})` : ''}`,
      );
    }
    for (const s of t.float) lines.push(`  float: ${s.name}: ${s.reason}`);
  }
  if (o.out) lines.push(`wrote ${o.out} (QDQ model in ${r.targets[0]!.target}'s integer scheme)`);
  return lines.join('\n');
}
