import type { Command } from 'commander';
import { TARGETS, type TensorScheme } from '../../core/formats/targets.ts';
import { printResult } from './shared.ts';

const scheme = (s: TensorScheme) =>
  `${s.type} ${s.symmetric ? 'symmetric' : 'asymmetric'} ${s.granularity}${s.dynamic ? ', dynamic (per input at run time)' : ''}`;

/** Registers `cann-quant targets`: the hardware profiles. */
export function registerTargets(program: Command): void {
  program
    .command('targets')
    .description('list the hardware targets and their INT8 schemes')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      const targets = Object.values(TARGETS);
      printResult(opts.json, { targets }, () =>
        targets
          .map((t) =>
            [
              `${t.id}  ${t.name}`,
              `  activations  ${scheme(t.activations)}   quant ${t.quant}`,
              `  weights      ${scheme(t.weights)}   bias ${t.bias}`,
              `  dequant      ${t.dequant}   float path ${t.floatPath}   executor ${t.executor}`,
              `  quantized    ${t.quantizedOps.join(', ')} (everything else in ${t.floatPath})`,
              `  peak         INT8 ${fmt(t.peak.int8Ops.value)}ops/s (${t.peak.int8Ops.confidence})  float ${fmt(t.peak.floatOps.value)}flop/s  ${fmt(t.peak.bandwidth.value)}B/s (${t.peak.bandwidth.confidence})  ${t.peak.power.value} W`,
            ].join('\n'),
          )
          .join('\n\n'),
      );
    });
}

function fmt(v: number): string {
  if (v === 0) return 'n/a ';
  const units = ['', 'k', 'M', 'G', 'T'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))} ${units[i]}`;
}
