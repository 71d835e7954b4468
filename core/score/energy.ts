/**
 * Per-operation energy figures (the second energy model beside power x time; see
 * docs/STANDARD.md "energy_gain"). One public source gives int8 and float arithmetic energies
 * side by side: M. Horowitz, "Computing's energy problem (and what we can do about it)",
 * ISSCC 2014, table of energies for 45 nm at 0.9 V. The absolute values belong to that process;
 * the model only uses them in ratios (float energy / INT8 energy), which is the part that
 * carries over between processes best. Confidence 'secondary': the 32-bit entries were
 * cross-checked against a citation of the table (PMC8934428, table 3); the 8- and 16-bit
 * entries are the table's as widely reproduced and were not re-verified against the paper.
 */
import type { SourcedFigure } from '../formats/targets.ts';

const HOROWITZ = 'Horowitz, ISSCC 2014, "Computing\'s energy problem", 45 nm / 0.9 V table';

const pj = (value: number, what: string): SourcedFigure => ({
  value,
  unit: 'pJ',
  source: `${HOROWITZ}: ${what}`,
  confidence: 'secondary',
});

/** The arithmetic and memory energies used by the op-energy model. */
export const OP_ENERGY = {
  int8Mult: pj(0.2, '8-bit integer multiply 0.2 pJ'),
  int32Add: pj(0.1, '32-bit integer add 0.1 pJ (the int32 accumulator of an int8 MAC)'),
  fp16Mult: pj(1.1, '16-bit float multiply 1.1 pJ'),
  fp16Add: pj(0.4, '16-bit float add 0.4 pJ'),
  fp32Mult: pj(3.7, '32-bit float multiply 3.7 pJ'),
  fp32Add: pj(0.9, '32-bit float add 0.9 pJ'),
  /** Per byte: the low end of the table's 1.3-2.6 nJ per 64-bit DRAM access, divided by 8. */
  dramByte: pj(1300 / 8, 'DRAM 1.3-2.6 nJ per 64-bit access; low end, per byte (162.5 pJ/B)'),
} as const;

/** Precision a layer runs in. */
export type Precision = 'int8' | 'fp16' | 'fp32';

/** Energy (pJ) of one multiply-accumulate at a precision (multiply + add in the accumulator). */
export function macEnergyPj(p: Precision): number {
  if (p === 'int8') return OP_ENERGY.int8Mult.value + OP_ENERGY.int32Add.value;
  if (p === 'fp16') return OP_ENERGY.fp16Mult.value + OP_ENERGY.fp16Add.value;
  return OP_ENERGY.fp32Mult.value + OP_ENERGY.fp32Add.value;
}

/** Energy (pJ) of one non-MAC op (elementwise, pooling, ...), counted as one add. */
export function opEnergyPj(p: Precision): number {
  if (p === 'int8') return OP_ENERGY.int32Add.value;
  return p === 'fp16' ? OP_ENERGY.fp16Add.value : OP_ENERGY.fp32Add.value;
}
