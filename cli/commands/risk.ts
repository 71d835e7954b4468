import type { Command } from 'commander';
import { DEFAULT_TARGET, getTarget, TARGETS, type TargetId } from '../../core/formats/targets.ts';
import { decodeModel, type ModelProto } from '../../core/onnx/index.ts';
import {
  type InputStats,
  InputStatsError,
  parseInputStats,
  predictRisk,
  type RiskOptions,
  type RiskReport,
} from '../../core/risk/risk.ts';
import { getTask } from '../../zoo/registry.ts';
import { CliError } from '../errors.ts';
import { readOnnxFile } from '../user-model.ts';
import { readTaskModel } from '../zoo-files.ts';
import { parseNonNegative, parseNumber, parseTarget, printResult } from './shared.ts';

interface RiskCliOptions {
  task?: string;
  model?: string;
  target: TargetId;
  allTargets?: boolean;
  perTensorWeights?: boolean;
  symmetricActivations?: boolean;
  asymmetric?: boolean;
  weightClip: string;
  z?: number;
  inputStats?: string;
  top: number;
  json?: boolean;
}

function inputStats(spec: string, model: ModelProto): Record<string, InputStats> {
  try {
    return parseInputStats(spec, model);
  } catch (err) {
    if (err instanceof InputStatsError) throw new CliError(`--input-stats: ${err.message}`, 2);
    throw err;
  }
}

async function readModel(o: RiskCliOptions): Promise<{ model: ModelProto; name: string }> {
  if (o.task && o.model) throw new CliError('give --task or --model, not both', 2);
  if (o.task) {
    let task: ReturnType<typeof getTask>;
    try {
      task = getTask(o.task);
    } catch (err) {
      throw new CliError((err as Error).message, 2);
    }
    return { model: decodeModel(await readTaskModel(task.manifest)), name: o.task };
  }
  if (!o.model) throw new CliError('give --task <id> or --model <file.onnx>', 2);
  return { model: (await readOnnxFile(o.model)).model, name: o.model };
}

const fmt = (x: number | null) =>
  x === null ? '    -' : Number.isFinite(x) ? x.toFixed(1).padStart(5) : '  inf';

function layerTable(r: RiskReport, top: number): string[] {
  const rows = top > 0 ? r.layers.slice(0, top) : r.layers;
  const width = Math.max(5, ...rows.map((l) => l.name.length));
  const lines = [
    `  ${'layer'.padEnd(width)}  share  layer dB  weights dB  input dB  to output  input from`,
    ...rows.map(
      (l) =>
        `  ${l.name.padEnd(width)}  ${`${(100 * l.share).toFixed(0)}%`.padStart(5)}  ${fmt(l.sqnrDb).padStart(8)}  ${fmt(l.weightSqnrDb).padStart(10)}  ${fmt(l.inputSqnrDb).padStart(8)}  ${`${l.outputGainDb.toFixed(1)} dB`.padStart(9)}  ${l.input?.source ?? 'not determined by the model'}`,
    ),
  ];
  if (rows.length < r.layers.length)
    lines.push(`  ... ${r.layers.length - rows.length} more (--top 0 for all)`);
  const flagged = rows.filter((l) => l.flags.length > 0 && l.input !== null);
  for (const l of flagged) for (const f of l.flags) lines.push(`  ! ${l.name}: ${f}`);
  return lines;
}

const scheme = (s: RiskReport['weights']) =>
  `${s.type} ${s.symmetric ? 'symmetric' : 'asymmetric'} ${s.granularity}`;

/** Registers `cann-quant risk`. */
export function registerRisk(program: Command): void {
  program
    .command('risk')
    .description(
      "predict a model's INT8 noise per layer on a target from the model file alone (no data)",
    )
    .option('--task <id>', "a benchmark task's model")
    .option('--model <file>', 'your ONNX model (instead of --task)')
    .option(
      '--target <t>',
      `target (${Object.keys(TARGETS).join(', ')}; default ${DEFAULT_TARGET})`,
      parseTarget,
      DEFAULT_TARGET,
    )
    .option('--all-targets', 'one summary line per target instead of one target in detail')
    .option('--per-tensor-weights', 'one weight scale per tensor instead of per channel')
    .option('--symmetric-activations', 'force symmetric activations')
    .option('--asymmetric', 'force asymmetric activations with a zero point')
    .option('--weight-clip <m>', 'weight clip range: max | mse', 'max')
    .option(
      '--z <sigmas>',
      "activation range: each channel's mean +- z sigma (default 4)",
      parseNumber,
    )
    .option(
      '--input-stats <stats>',
      "what you know of a float input: [name=]mean,std,min,max (e.g. its normalisation); covers the first layer's input",
    )
    .option('--top <n>', 'layers listed, most noise first (0: all)', parseNonNegative, 10)
    .option('--json', 'print one JSON object')
    .action(async (o: RiskCliOptions) => {
      if (o.weightClip !== 'max' && o.weightClip !== 'mse')
        throw new CliError(`--weight-clip must be max or mse, got '${o.weightClip}'`, 2);
      if (o.z !== undefined && !(o.z > 0)) throw new CliError(`--z must be > 0, got ${o.z}`, 2);
      if (o.asymmetric && o.symmetricActivations)
        throw new CliError('give --asymmetric or --symmetric-activations, not both', 2);
      const { model, name } = await readModel(o);
      const options: RiskOptions = {
        weightClip: o.weightClip,
        ...(o.perTensorWeights ? { weightGranularity: 'per-tensor' as const } : {}),
        ...(o.symmetricActivations ? { symmetricActivations: true } : {}),
        ...(o.asymmetric ? { symmetricActivations: false } : {}),
        ...(o.z !== undefined ? { z: o.z } : {}),
        ...(o.inputStats ? { inputs: inputStats(o.inputStats, model) } : {}),
      };
      const targets = o.allTargets ? (Object.keys(TARGETS) as TargetId[]) : [o.target];
      const reports = targets.map((t) => predictRisk(model, getTarget(t), options));
      const top = Math.floor(o.top);
      if (o.allTargets) {
        printResult(o.json, { model: name, reports }, () =>
          [
            `model ${name}  (predicted from the model file alone: the layers' noise carried to the output)`,
            `  ${'target'.padEnd(15)}  predicted dB  weights-only dB  covered  level   noisiest layer`,
            ...reports.map(
              (r) =>
                `  ${r.target.padEnd(15)}  ${fmt(r.predictedSqnrDb).padStart(12)}  ${fmt(r.weightOnlySqnrDb).padStart(15)}  ${`${r.covered}/${r.layers.length}`.padStart(7)}  ${r.level.padEnd(6)}  ${r.layers[0]?.name ?? '-'}`,
            ),
          ].join('\n'),
        );
        return;
      }
      const r = reports[0]!;
      if (r.layers.length === 0) {
        printResult(o.json, { model: name, ...r }, () =>
          [
            `model ${name}  target ${r.target}`,
            `no layer of this model runs in integers on ${r.target}: INT8 adds no noise to predict`,
            ...r.skipped.map((k) => `  float: ${k.name} (${k.opType}): ${k.reason}`),
          ].join('\n'),
        );
        return;
      }
      printResult(o.json, { model: name, ...r }, () =>
        [
          `model ${name}  target ${r.target}  weights ${scheme(r.weights)}  activations ${scheme(r.activations)}`,
          `predicted SQNR ${fmt(r.predictedSqnrDb).trim()} dB (${r.level} risk; weights alone ${fmt(r.weightOnlySqnrDb).trim()} dB): the layers' noise carried to the output (global average pools attenuate it), no data read`,
          `inputs predicted for ${r.covered} of ${r.layers.length} layers (BatchNorm / LayerNorm / embedding statistics${o.inputStats ? ', the stated input statistics' : ''}, +-${r.z} sigma); the rest count their weight noise only`,
          ...layerTable(r, top),
          ...(r.skipped.length ? [`float: ${r.skipped.map((s) => s.name).join(', ')}`] : []),
          'measured against real data in bench/results/risk-2026-11-29.md (docs/RISK.md)',
        ].join('\n'),
      );
    });
}
