/**
 * Per-layer method search (sensitivity-aware calibration, second half).
 *
 * The tiers give each layer a calibration method by how sensitive the layer is. Whether a
 * method's clipping helps a given layer is a property of that layer's activations: clipping
 * trades rounding noise on the bulk of the values for saturation noise on the tail, and which
 * is larger at the model output depends on what the tail carries. Measured on the zoo, the
 * tiers' clipping cost fmnist-resnet 0.59 dB of output SQNR against max everywhere, and gained
 * fmnist-detect 7.5 dB (docs/CALIBRATION.md). So the search asks each layer: the layer alone is
 * quantized with its tier's method and with each candidate method, exactly as the sensitivity
 * pass quantizes it, and the model output is compared with the all-float emulation over the
 * calibration samples. The tier's method stands unless a candidate lowers the output noise by
 * at least the recipe's `minGainDb` (default 0.5 dB, 11% less noise); among those that do, the
 * quietest wins ({@link chooseTrial}).
 *
 * Why one layer at a time is enough: the noise a quantized layer adds at the output is close to
 * independent of the other layers' noise, so the total noise is close to the sum of the
 * one-layer noises, and minimising each term minimises the sum. The one-layer models are the
 * sensitivity pass's, so a candidate whose activation parameters equal the sensitivity
 * measurement's (the high tier's method) or an earlier candidate's costs no model run.
 */
import type { ActivationParams } from '../quantize/params.ts';
import type { LayerMethod } from '../quantize/quantize.ts';

/** A stable key of a method with its parameter (`percentile:99.99`, `max`, ...). */
export function methodKey(m: LayerMethod): string {
  return m.method === 'percentile' ? `percentile:${m.percentile ?? 99.99}` : m.method;
}

/** The methods a layer tries: its tier's method first, then each candidate not already listed. */
export function searchMethods(
  tierMethod: LayerMethod,
  candidates: readonly LayerMethod[],
): LayerMethod[] {
  const out: LayerMethod[] = [tierMethod];
  const seen = new Set([methodKey(tierMethod)]);
  for (const c of candidates) {
    const k = methodKey(c);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(c);
  }
  return out;
}

/** Whether two activation parameter sets quantize identically (same one-layer model). */
export function sameActivation(a: ActivationParams, b: ActivationParams): boolean {
  return (
    a.scale === b.scale && a.zeroPoint === b.zeroPoint && a.qmin === b.qmin && a.qmax === b.qmax
  );
}

/**
 * Relative output noise of a one-layer model from its per-output SQNRs (dB): the sum over the
 * compared outputs of noise / signal. One output: 10^(-SQNR/10).
 */
export function relativeNoise(outputs: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const db of Object.values(outputs)) n += 10 ** (-db / 10);
  return n;
}

/** One method a layer tried, measured with only that layer quantized. */
export interface SearchTrial extends LayerMethod {
  /** Output SQNR (dB; the worst compared output). */
  sqnrDb: number;
  /**
   * How much quieter than the tier's method, in dB: 10 log10(noise of the tier's method / noise
   * of this trial), noise = {@link relativeNoise}. Absent on the tier's own trial.
   */
  gainDb?: number;
}

/**
 * Which trial a layer keeps. Trial 0 is the tier's method; a candidate qualifies when it is
 * quieter by at least `minGainDb`, and the quietest qualifying trial wins (ties: the earlier).
 */
export function chooseTrial(noise: readonly number[], minGainDb: number): number {
  if (noise.length === 0) throw new RangeError('chooseTrial: no trials');
  let index = 0;
  for (let i = 1; i < noise.length; i++)
    // 1e-9 dB: a gain of exactly the margin, computed through powers of ten, qualifies.
    if (
      gainDb(noise[0]!, noise[i]!) >= minGainDb - 1e-9 &&
      (index === 0 || noise[i]! < noise[index]!)
    )
      index = i;
  return index;
}

/** 10 log10(a / b), with equal noises (zero included) 0 dB. */
export function gainDb(a: number, b: number): number {
  if (a === b) return 0;
  return 10 * Math.log10(a / b);
}
