/**
 * The Quantization Quality Index, the one definition (docs/STANDARD.md):
 *
 *     QQI = (1 - loss) x speedup x energy_gain
 *
 * loss: (FP32 metric - INT8 metric) / FP32 metric, floored at 0 (a gain counts as 0 loss and is
 * reported as `gain`); speedup: modelled float latency / INT8 latency (core/score/perf-model.ts,
 * or the measured ratio on a timed target); energy_gain: modelled float / INT8 energy, the
 * op-energy model (perf-model.ts `QQI_ENERGY_MODEL`). Reported with three significant digits and
 * every factor beside it.
 */
import type { MetricComparison } from '../evaluate/evaluate.ts';

/** What the QQI is computed from. */
export interface QqiInput {
  comparison: Pick<MetricComparison, 'metric' | 'fp32' | 'int8'>;
  /** Float / INT8 latency; null when neither modelled nor measured. */
  speedup: number | null;
  /** Float / INT8 energy; null when not modelled. */
  energyGain: number | null;
  /** Where the speed-up comes from (default 'modelled'). */
  speedupSource?: 'modelled' | 'measured';
  /** Which energy model gave `energyGain` (default 'op-energy'). */
  energySource?: 'op-energy' | 'power-time';
}

/** The QQI and every factor. */
export interface Qqi {
  /** Rounded to three significant digits; null when a factor is missing. */
  value: number | null;
  /** `value` as printed (three significant digits), or 'n/a'. */
  display: string;
  /** Unrounded product, for sorting. */
  exact: number | null;
  /** Loss as a fraction of the FP32 metric, floored at 0. */
  loss: number;
  /** The INT8 model's gain as a fraction of the FP32 metric (0 when it lost). */
  gain: number;
  speedup: number | null;
  energyGain: number | null;
  speedupSource: 'modelled' | 'measured';
  energySource: 'op-energy' | 'power-time';
  /** One line: "QQI 3.84 = (1 - 0.0021) x 2.10 x 1.83 (...)". */
  text: string;
  /** Why the value is null, when it is. */
  missing?: string;
}

/** Three significant digits, without exponent notation for ordinary magnitudes. */
export function sig3(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0.00';
  const s = x.toPrecision(3);
  if (!s.includes('e')) return s;
  const n = Number(s);
  return Math.abs(n) >= 1 ? n.toFixed(0) : String(n);
}

/** Loss fraction (floored at 0) and gain fraction of an FP32 vs INT8 metric pair. */
export function lossOf(c: Pick<MetricComparison, 'fp32' | 'int8'>): { loss: number; gain: number } {
  const raw = c.fp32 === 0 ? 0 : (c.fp32 - c.int8) / c.fp32;
  return { loss: Math.max(0, raw), gain: Math.max(0, -raw) };
}

/**
 * QQI = (1 - loss) x speedup x energy_gain, with loss floored at 0.
 * @example qqi({ comparison: { metric: 'top1', fp32: 0.9, int8: 0.891 }, speedup: 2, energyGain: 1.5 }).display // '2.97'
 */
export function qqi(input: QqiInput): Qqi {
  const { loss, gain } = lossOf(input.comparison);
  const speedupSource = input.speedupSource ?? 'modelled';
  const energySource = input.energySource ?? 'op-energy';
  const { speedup, energyGain } = input;
  const missing =
    speedup === null
      ? 'no speed-up: the target is measured only and no measurement was given'
      : energyGain === null
        ? 'no energy gain: the target has no modelled figures'
        : undefined;
  const exact = missing ? null : (1 - loss) * speedup! * energyGain!;
  const value = exact === null ? null : Number(exact.toPrecision(3));
  const display = exact === null ? 'n/a' : sig3(exact);
  const f = (x: number | null) => (x === null ? 'n/a' : sig3(x));
  const text =
    `QQI ${display} = (1 - ${sig3(loss)}) x ${f(speedup)} x ${f(energyGain)}` +
    ` (loss of ${input.comparison.metric} ${input.comparison.fp32} -> ${input.comparison.int8}` +
    `${gain > 0 ? `, a gain of ${sig3(gain)} counted as 0 loss` : ''}; speed-up ${speedupSource}; energy gain ${energySource})`;
  return {
    value,
    display,
    exact,
    loss,
    gain,
    speedup,
    energyGain,
    speedupSource,
    energySource,
    text,
    ...(missing ? { missing } : {}),
  };
}
