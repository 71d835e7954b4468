import type { Command } from 'commander';
import { TASKS } from '../../zoo/registry.ts';
import { printResult } from './shared.ts';

/** Registers `cann-quant tasks`: the benchmark tasks and their FP32 references. */
export function registerTasks(program: Command): void {
  program
    .command('tasks')
    .description('list the benchmark tasks')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      const rows = Object.values(TASKS).map(({ manifest: m }) => ({
        id: m.id,
        kind: m.kind,
        metric: m.metric.primary,
        fp32: m.reference.fp32[m.metric.primary],
        evaluation: m.splits.evaluation.size,
        calibration: m.splits.calibration.size,
        parameters: m.model.parameters,
        dataset: m.dataset.name,
      }));
      printResult(opts.json, { tasks: rows }, () =>
        rows
          .map(
            (r) =>
              // the reference figure to 4 decimals as elsewhere in the text output (--json: exact)
              `${r.id.padEnd(18)} ${r.kind.padEnd(22)} ${r.metric}=${r.fp32?.toFixed(4)}  eval ${r.evaluation}  calib ${r.calibration}  ${r.parameters} params  ${r.dataset}`,
          )
          .join('\n'),
      );
    });
}
