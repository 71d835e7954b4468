/**
 * The risk predictor (product.md, community items): how much INT8 noise a model will carry on a
 * target, predicted from the model file alone, with no data at all. It runs in milliseconds,
 * before anyone has a calibration set, and names the layers that will cost most.
 *
 * What is predicted, per quantizable layer (the layers core/quantize/prepare.ts finds for the
 * target), as a signal-to-quantization-noise ratio at the layer's output:
 * - Weight noise: exact. The weight is quantized on the target's scheme (core/quantize/weights.ts)
 *   and NSR_w = sum (w - q(w))^2 / sum w^2.
 * - Input-activation noise: from the distribution of the layer's input implied by the model's
 *   own parameters, the idea of data-free quantization (Nagel et al. 2019, "Data-Free
 *   Quantization Through Weight Equalization and Bias Correction", section 4.2): a
 *   BatchNormalization output channel c is N(beta_c, gamma_c^2) whatever the input, a
 *   LayerNorm output channel likewise, an embedding row is a row of its table. ReLU / Clip,
 *   residual Adds, per-channel scaling and shape-only ops are carried through
 *   ({@link activationDistributions}). Per-tensor quantization then spans
 *   [min_c q_lo, max_c q_hi], each channel's Gaussian quantiles at +-`z` sigma (default 4,
 *   the 99.997th percentile) clipped to its ReLU/Clip bounds; the step is the scheme's
 *   (core/quantize/params.ts) and NSR_a = (step^2 / 12) / E[x^2], with E[x^2] the channels'
 *   mean of the clipped normal's mean square (core/risk/gaussian.ts).
 * - The layer's output NSR: both noises summed over the output channels (each weight element's
 *   rounding error weighted by its input channel's power, the input's step^2 / 12 by sum w^2),
 *   over the output's signal power, read off the folded BatchNorm after the layer when there is
 *   one, else through the weights from the input's power (inputs taken as independent).
 *
 * The model's predicted output SQNR adds the layers' noises at the output. Each passes at unit
 * gain except through a global average pool, which averages white noise out over its positions
 * ({@link averagingGains}). Layers whose input distribution the model does not determine (the
 * model input unless `options.inputs` states it, what follows an attention softmax, a layer
 * without normalisation after it) contribute their weight noise only and are counted as not
 * covered: for them the prediction is a lower bound on the noise.
 *
 * What it is not: a loss in accuracy points. How many predictions flip under a given noise
 * depends on the data's margins, which only data shows (the calibration-time estimate,
 * core/calibrate/estimate.ts, measures that on ~50 unlabelled samples). bench/risk.ts compares
 * these predictions with the noise measured on real inputs.
 */
import type { WeightMethod } from '../calibrate/weights.ts';
import type { Target, TensorScheme } from '../formats/targets.ts';
import { attrFloat, attrInt, attrInts, attrString } from '../onnx/attributes.ts';
import { type ConstantLookup, constantLookup } from '../onnx/constants.ts';
import type { GraphProto, ModelProto, NodeProto } from '../onnx/gen/onnx_pb.ts';
import { consumers, producers, topologicalOrder } from '../onnx/graph.ts';
import { tensorTypeInfo } from '../onnx/shapes.ts';
import { activationParams } from '../quantize/params.ts';
import { type LayerCandidate, prepareModel, type SkippedLayer } from '../quantize/prepare.ts';
import { effectiveSchemes } from '../quantize/quantize.ts';
import { dequantizeWeight, quantizeWeight } from '../quantize/weights.ts';
import { clippedNormalMoments } from './gaussian.ts';

/**
 * The distribution of a tensor's channels: channel c is clip(N(mu_c, sigma_c^2), lo, hi). A
 * single channel stands for every channel alike (a standardised tensor before its scale).
 */
export interface ChannelDistribution {
  mu: Float64Array;
  sigma: Float64Array;
  lo: number;
  hi: number;
  /** E[x^2] per channel when it is known exactly (stated input statistics). */
  power?: Float64Array;
  /** How it was derived, e.g. "BatchNormalization /layer1/bn1 -> Relu". */
  source: string;
  /** Approximations made on the way (e.g. a MaxPool taken as the identity). */
  approximations: string[];
}

/** Ops that move elements around without changing their values. */
const SHAPE_OPS = new Set([
  'Identity',
  'Dropout',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
]);

const floats = (
  lookup: Pick<ConstantLookup, 'has' | 'value'>,
  name: string | undefined,
): Float64Array | undefined => {
  if (!name || !lookup.has(name)) return undefined;
  const t = lookup.value(name);
  if (t?.type !== 'float32') return undefined;
  return Float64Array.from(t.data as Float32Array);
};

/** The channel distribution as a Gaussian with the same mean and variance (no clip). */
function momentMatched(d: ChannelDistribution): { mu: Float64Array; sigma: Float64Array } {
  if (d.lo === Number.NEGATIVE_INFINITY && d.hi === Number.POSITIVE_INFINITY)
    return { mu: d.mu, sigma: d.sigma };
  const mu = new Float64Array(d.mu.length);
  const sigma = new Float64Array(d.mu.length);
  for (let c = 0; c < d.mu.length; c++) {
    const m = clippedNormalMoments(d.mu[c]!, d.sigma[c]!, d.lo, d.hi);
    mu[c] = m.mean;
    sigma[c] = Math.sqrt(Math.max(0, m.meanSquare - m.mean * m.mean));
  }
  return { mu, sigma };
}

/** Channel count of two broadcast operands: equal, or one of them 1; otherwise undefined. */
function broadcastChannels(a: number, b: number): number | undefined {
  if (a === b || b === 1) return a;
  if (a === 1) return b;
  return undefined;
}

const at = (v: Float64Array, c: number): number => (v.length === 1 ? v[0]! : v[c]!);

function gaussian(
  mu: Float64Array,
  sigma: Float64Array,
  source: string,
  approximations: string[] = [],
): ChannelDistribution {
  return {
    mu,
    sigma,
    lo: Number.NEGATIVE_INFINITY,
    hi: Number.POSITIVE_INFINITY,
    source,
    approximations,
  };
}

/**
 * The distribution of every tensor of `graph` that its parameters determine (see the module
 * comment); tensors absent from the map have no data-free distribution.
 */
export function activationDistributions(
  graph: GraphProto,
  inputs: Readonly<Record<string, InputStats>> = {},
): Map<string, ChannelDistribution> {
  const base = constantLookup(graph);
  // exporters pass shared constants through Identity nodes (e.g. a BN bias reused by another)
  const alias = new Map<string, string>();
  for (const n of graph.node)
    if (n.opType === 'Identity' && base.has(n.input[0] ?? '') && n.output[0])
      alias.set(n.output[0], n.input[0]!);
  const lookup = {
    has: (name: string) => base.has(alias.get(name) ?? name),
    value: (name: string) => base.value(alias.get(name) ?? name),
  };
  const made = producers(graph);
  const sizes = spatialSizes(graph);
  const out = new Map<string, ChannelDistribution>();
  for (const [name, st] of Object.entries(inputs)) {
    if (!graph.input.some((v) => v.name === name))
      throw new RangeError(
        `input statistics for '${name}', which is not an input of the model (inputs: ${graph.input.map((v) => v.name).join(', ')})`,
      );
    out.set(name, {
      mu: Float64Array.of(st.mean),
      sigma: Float64Array.of(st.std),
      lo: st.min,
      hi: st.max,
      power: Float64Array.of(st.mean ** 2 + st.std ** 2),
      source: `input ${name} (stated: mean ${st.mean}, std ${st.std}, range [${st.min}, ${st.max}])`,
      approximations: [],
    });
  }
  const label = (n: NodeProto) => `${n.opType} ${n.name || n.output[0]}`;
  for (const node of topologicalOrder(graph)) {
    const y = node.output[0];
    if (!y) continue;
    const d0 = out.get(node.input[0] ?? '');
    const set = (d: ChannelDistribution | undefined) => {
      if (d) out.set(y, d);
    };
    switch (node.opType) {
      case 'BatchNormalization': {
        // Inference BN: channel c leaves as N(B_c, scale_c^2) when its input follows the running
        // statistics, which is what BN's training made them estimate.
        const scale = floats(lookup, node.input[1]);
        const bias = floats(lookup, node.input[2]);
        if (scale && bias && scale.length === bias.length)
          set(gaussian(bias, scale.map(Math.abs), label(node)));
        break;
      }
      case 'LayerNormalization': {
        const scale = floats(lookup, node.input[1]);
        const bias = floats(lookup, node.input[2]) ?? new Float64Array(scale?.length ?? 0);
        if (scale && bias.length === scale.length)
          set(gaussian(bias, scale.map(Math.abs), label(node)));
        break;
      }
      case 'Div': {
        // A LayerNorm written out: (x - ReduceMean(x)) / Sqrt(...) has mean 0 and variance 1.
        const sub = made.get(node.input[0] ?? '');
        const mean = sub?.opType === 'Sub' ? made.get(sub.input[1] ?? '') : undefined;
        if (mean?.opType === 'ReduceMean' && mean.input[0] === sub?.input[0]) {
          set(
            gaussian(
              Float64Array.of(0),
              Float64Array.of(1),
              `standardised by ${label(node)} (LayerNorm written out)`,
            ),
          );
          break;
        }
        const c = floats(lookup, node.input[1]);
        if (d0 && c?.every((v) => v !== 0))
          set(
            affine(
              d0,
              c.map((v) => 1 / v),
              'scale',
              node,
            ),
          );
        break;
      }
      case 'Mul': {
        const [a, b] = node.input;
        const c = floats(lookup, b) ?? floats(lookup, a);
        const d = out.get((lookup.has(b ?? '') ? a : b) ?? '');
        if (d && c) set(affine(d, c, 'scale', node));
        break;
      }
      case 'Add':
      case 'Sub': {
        const [a, b] = node.input;
        const da = out.get(a ?? '');
        const db = out.get(b ?? '');
        const ca = floats(lookup, a);
        const cb = floats(lookup, b);
        const sign = node.opType === 'Sub' ? -1 : 1;
        if (da && cb)
          set(
            affine(
              da,
              cb.map((v) => sign * v),
              'shift',
              node,
            ),
          );
        else if (db && ca && sign === 1) set(affine(db, ca, 'shift', node));
        else if (da && db) set(summed(da, db, sign, node));
        break;
      }
      case 'Relu':
        if (d0) set(bounded(d0, 0, Number.POSITIVE_INFINITY, `${d0.source} -> Relu`));
        break;
      case 'Clip': {
        if (!d0) break;
        const lo = floats(lookup, node.input[1])?.[0] ?? attrFloat(node, 'min');
        const hi = floats(lookup, node.input[2])?.[0] ?? attrFloat(node, 'max');
        set(
          bounded(
            d0,
            lo ?? Number.NEGATIVE_INFINITY,
            hi ?? Number.POSITIVE_INFINITY,
            `${d0.source} -> Clip[${lo ?? '-inf'}, ${hi ?? 'inf'}]`,
          ),
        );
        break;
      }
      case 'MaxPool':
        if (d0)
          set({
            ...d0,
            source: `${d0.source} -> MaxPool`,
            approximations: [
              ...d0.approximations,
              `${label(node)} taken as the identity (a window's max is larger than its elements)`,
            ],
          });
        break;
      case 'Gather': {
        // An embedding lookup: each output row is a row of the table; tokens taken as equally
        // frequent, so channel c follows the table's column c.
        const table = lookup.has(node.input[0] ?? '') ? lookup.value(node.input[0]!) : undefined;
        if (table?.type !== 'float32' || table.dims.length !== 2) break;
        if (attrInt(node, 'axis', 0) !== 0) break;
        const [rows, cols] = table.dims as [number, number];
        const data = table.data as Float32Array;
        const mu = new Float64Array(cols);
        const sq = new Float64Array(cols);
        for (let r = 0; r < rows; r++)
          for (let c = 0; c < cols; c++) {
            const v = data[r * cols + c]!;
            mu[c]! += v / rows;
            sq[c]! += (v * v) / rows;
          }
        const sigma = mu.map((m, c) => Math.sqrt(Math.max(0, sq[c]! - m * m)));
        set(
          gaussian(mu, sigma, `embedding ${label(node)} (${rows} rows, tokens equally frequent)`, [
            `${label(node)}: the table's columns taken as Gaussian`,
          ]),
        );
        break;
      }
      case 'GlobalAveragePool': {
        // the mean of S positions taken as independent: mean kept, variance divided by S
        const hw = sizes.get(node.input[0] ?? '');
        if (!d0 || !hw) break;
        const S = hw[0] * hw[1];
        const mu = new Float64Array(d0.mu.length);
        const sigma = new Float64Array(d0.mu.length);
        for (let c = 0; c < mu.length; c++) {
          const m = clippedNormalMoments(d0.mu[c]!, d0.sigma[c]!, d0.lo, d0.hi);
          const m2 = d0.power?.[c] ?? m.meanSquare;
          mu[c] = m.mean;
          sigma[c] = Math.sqrt(Math.max(0, m2 - m.mean ** 2) / S);
        }
        set(
          gaussian(mu, sigma, `${d0.source} -> GlobalAveragePool over ${S} positions`, [
            ...d0.approximations,
            `${label(node)}: positions taken as independent`,
          ]),
        );
        break;
      }
      default:
        if (SHAPE_OPS.has(node.opType) && d0)
          set(
            node.opType === 'Reshape' || node.opType === 'Transpose'
              ? {
                  ...d0,
                  approximations: [
                    ...d0.approximations,
                    `${label(node)}: channel statistics taken as unchanged`,
                  ],
                }
              : d0,
          );
    }
  }
  return out;
}

/**
 * `d` clipped further to [lo, hi]; undefined when nothing is left (an empty range). A stated
 * exact power no longer holds after the clip, so it is dropped.
 */
function bounded(
  d: ChannelDistribution,
  lo: number,
  hi: number,
  source: string,
): ChannelDistribution | undefined {
  const { power: _power, ...rest } = d;
  const l = Math.max(d.lo, lo);
  const h = Math.min(d.hi, hi);
  return l <= h ? { ...rest, lo: l, hi: h, source } : undefined;
}

/**
 * Each channel of `d` (moment-matched) times `c` (`scale`) or plus `c` (`shift`), `c` one value
 * per channel or one for all; undefined when the channel counts do not broadcast.
 */
function affine(
  d: ChannelDistribution,
  c: Float64Array,
  kind: 'scale' | 'shift',
  node: NodeProto,
): ChannelDistribution | undefined {
  const n = broadcastChannels(d.mu.length, c.length);
  if (n === undefined) return undefined;
  const m = momentMatched(d);
  const mu = new Float64Array(n);
  const sigma = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = at(c, i);
    mu[i] = kind === 'scale' ? at(m.mu, i) * v : at(m.mu, i) + v;
    sigma[i] = kind === 'scale' ? at(m.sigma, i) * Math.abs(v) : at(m.sigma, i);
  }
  return gaussian(mu, sigma, `${d.source} -> ${node.opType}`, d.approximations);
}

function summed(
  a: ChannelDistribution,
  b: ChannelDistribution,
  sign: number,
  node: NodeProto,
): ChannelDistribution | undefined {
  const n = broadcastChannels(a.mu.length, b.mu.length);
  if (n === undefined) return undefined;
  const ma = momentMatched(a);
  const mb = momentMatched(b);
  const mu = new Float64Array(n);
  const sigma = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    mu[i] = at(ma.mu, i) + sign * at(mb.mu, i);
    sigma[i] = Math.hypot(at(ma.sigma, i), at(mb.sigma, i));
  }
  return gaussian(mu, sigma, `${node.opType} ${node.name || node.output[0]} of two branches`, [
    ...a.approximations,
    ...b.approximations,
    `${node.opType} ${node.name || node.output[0]}: branches taken as independent`,
  ]);
}

/**
 * What a user states about a model input (its preprocessing): the values' mean, standard
 * deviation and range. The model file cannot say it; with it the first layer's input noise is
 * predicted too.
 */
export interface InputStats {
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** Raised for input statistics that do not parse or do not fit the model (one line). */
export class InputStatsError extends Error {
  override name = 'InputStatsError';
}

/**
 * Parses `[name=]mean,std,min,max`, what a user states about a float input of `model` (for
 * example its normalisation). Without a name it applies to the model's only float input.
 */
export function parseInputStats(spec: string, model: ModelProto): Record<string, InputStats> {
  const eq = spec.indexOf('=');
  const values = (eq >= 0 ? spec.slice(eq + 1) : spec).split(',').map((v) => Number(v.trim()));
  if (values.length !== 4 || !values.every(Number.isFinite))
    throw new InputStatsError(`want [name=]mean,std,min,max (four numbers), got '${spec}'`);
  const [mean, std, min, max] = values as [number, number, number, number];
  if (std < 0 || min > max)
    throw new InputStatsError(`want std >= 0 and min <= max, got '${spec}'`);
  const graph = model.graph;
  const initializers = new Set(graph?.initializer.map((t) => t.name));
  const floatInputs = (graph?.input ?? [])
    .filter((v) => !initializers.has(v.name) && tensorTypeInfo(v.type)?.elemType === 1)
    .map((v) => v.name);
  const list = floatInputs.join(', ') || 'none';
  const name = eq >= 0 ? spec.slice(0, eq).trim() : floatInputs.length === 1 ? floatInputs[0]! : '';
  if (!name)
    throw new InputStatsError(`name the input (name=mean,std,min,max); float inputs: ${list}`);
  if (!floatInputs.includes(name))
    throw new InputStatsError(
      `'${name}' is not a float input of the model (float inputs: ${list})`,
    );
  return { [name]: { mean, std, min, max } };
}

/** Options of {@link predictRisk}: the same format knobs a recipe has. */
export interface RiskOptions {
  /** Stated statistics of model inputs, by input name. */
  inputs?: Readonly<Record<string, InputStats>>;
  weightGranularity?: 'per-channel' | 'per-tensor';
  symmetricActivations?: boolean;
  weightClip?: WeightMethod;
  /** Quantile of each channel's Gaussian the activation range spans, in sigmas (default 4). */
  z?: number;
}

/** Data-free prediction for one layer. */
export interface LayerRisk {
  name: string;
  kind: LayerCandidate['kind'];
  /** 10 log10(sum w^2 / sum (w - q(w))^2) on the target's weight scheme: exact. */
  weightSqnrDb: number;
  /** The input's predicted SQNR, or null when the model does not determine its distribution. */
  inputSqnrDb: number | null;
  /** The layer output's predicted SQNR (weight and input noise together). */
  sqnrDb: number;
  /**
   * What the output's signal power was taken from: the folded BatchNorm's parameters, the
   * input's power through the weights (inputs independent), or neither (the weight's own NSR).
   */
  signal: 'batchnorm' | 'independent inputs' | 'weights only';
  /**
   * How the layer's noise is scaled on its way to the model output (dB, <= 0): a global average
   * pool after it averages its noise out over positions ({@link averagingGains}); 0 otherwise.
   */
  outputGainDb: number;
  /** This layer's share of the model's predicted noise (0-1). */
  share: number;
  input: {
    tensor: string;
    source: string;
    channels: number;
    /** The predicted per-tensor quantization range and step. */
    lo: number;
    hi: number;
    step: number;
    approximations: string[];
  } | null;
  /** Structural risk factors found (plain sentences). */
  flags: string[];
}

/** Risk levels on the predicted model SQNR (see {@link riskLevel}). */
export type RiskLevel = 'low' | 'medium' | 'high';

/** Result of {@link predictRisk}. */
export interface RiskReport {
  target: Target['id'];
  weights: TensorScheme;
  activations: TensorScheme;
  /** Layers, most noise first. */
  layers: LayerRisk[];
  skipped: SkippedLayer[];
  /** -10 log10(sum of the layers' NSR): the model output's predicted SQNR (dB). */
  predictedSqnrDb: number;
  /** The same over the weights alone (what the model's parameters give exactly). */
  weightOnlySqnrDb: number;
  /** Layers whose input distribution was predicted (the others count weight noise only). */
  covered: number;
  level: RiskLevel;
  z: number;
}

/** Spread (widest / median) beyond which a flag names channels of very different ranges. */
export const SPREAD_FLAG = 8;

/**
 * Risk level of a predicted output SQNR: >= 30 dB low (noise under 0.1% of the signal's power),
 * 20-30 dB medium, < 20 dB high (noise above 1%).
 */
export function riskLevel(sqnrDb: number): RiskLevel {
  return sqnrDb >= 30 ? 'low' : sqnrDb >= 20 ? 'medium' : 'high';
}

const db = (nsr: number) => (nsr > 0 ? -10 * Math.log10(nsr) : Number.POSITIVE_INFINITY);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Max |w| of each output channel. */
function channelAbsMax(c: LayerCandidate): number[] {
  const { dims, axis, data } = c.weight;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const channels = dims[axis]!;
  const out = new Array<number>(channels).fill(0);
  for (let i = 0; i < data.length; i++) {
    const ch = Math.floor(i / inner) % channels;
    out[ch] = Math.max(out[ch]!, Math.abs(data[i]!));
  }
  return out;
}

/** The predicted per-tensor quantization of a layer input with distribution `d`. */
interface InputQuantization {
  tensor: string;
  source: string;
  approximations: string[];
  /** E[x^2] per channel. */
  power: Float64Array;
  lo: number;
  hi: number;
  step: number;
  /** step^2 / 12 (the rounding noise's power). */
  noise: number;
  /** noise / mean power: the input's own NSR. */
  nsr: number;
  /** Widest channel's range over the median channel's. */
  spread: number;
}

function inputQuantization(
  d: ChannelDistribution,
  z: number,
  scheme: TensorScheme,
  tensor: string,
): InputQuantization {
  const power = new Float64Array(d.mu.length);
  let lo = 0;
  let hi = 0;
  const widths: number[] = [];
  for (let ch = 0; ch < d.mu.length; ch++) {
    const mu = d.mu[ch]!;
    const s = d.sigma[ch]!;
    power[ch] = d.power?.[ch] ?? clippedNormalMoments(mu, s, d.lo, d.hi).meanSquare;
    const qlo = Math.min(d.hi, Math.max(d.lo, mu - z * s));
    const qhi = Math.min(d.hi, Math.max(d.lo, mu + z * s));
    lo = Math.min(lo, qlo);
    hi = Math.max(hi, qhi);
    widths.push(Math.max(Math.abs(qlo), Math.abs(qhi)));
  }
  const step = activationParams({ lo, hi }, scheme).scale;
  const noise = step ** 2 / 12;
  const mean = power.reduce((a, b) => a + b, 0) / power.length;
  return {
    tensor,
    source: d.source,
    approximations: d.approximations,
    power,
    lo,
    hi,
    step,
    noise,
    nsr: mean > 0 ? noise / mean : 0,
    spread:
      widths.length > 1 ? Math.max(...widths) / Math.max(median(widths), Number.MIN_VALUE) : 1,
  };
}

/** A layer's predicted output noise, relative to its output signal. */
interface LayerNoise {
  /** NSR at the output from the weights' rounding. */
  weight: number;
  /** NSR at the output from the input's rounding (0 when the input is not determined). */
  input: number;
  /** sum (w - q(w))^2 / sum w^2: the weight's own NSR. */
  weightOnly: number;
  /** Where the output's signal power came from. */
  signal: 'batchnorm' | 'independent inputs' | 'weights only';
}

/**
 * Noise at the layer's output, per output channel o summed over channels:
 * - weight rounding: sum_e (w_oe - q(w_oe))^2 E[x_j(e)^2], input channel j(e) of element e;
 * - input rounding: (step^2 / 12) sum_e w_oe^2;
 * - signal: E[y_o^2] = beta_o^2 + gamma_o^2 when the layer's output is a BatchNorm's (folded into
 *   the layer, so y is the BN output exactly), else sum_e w_oe^2 E[x_j(e)^2] + b_o^2 (inputs
 *   independent).
 * Without a known input, the weight's own NSR stands for the layer's.
 */
function layerNoise(
  c: LayerCandidate,
  dq: Float64Array,
  input: InputQuantization | null,
  output: ChannelDistribution | undefined,
): LayerNoise {
  const { dims, axis, data } = c.weight;
  let wSignal = 0;
  let wNoise = 0;
  for (let i = 0; i < data.length; i++) {
    wSignal += data[i]! ** 2;
    wNoise += (data[i]! - dq[i]!) ** 2;
  }
  const weightOnly = wSignal > 0 ? wNoise / wSignal : 0;
  const channelOf = input ? inputChannelOf(c, input.power.length) : undefined;
  if (!input || !channelOf || (c.kind === 'matmul' && c.weightSide === 'left'))
    return {
      weight: weightOnly,
      input: input && wSignal > 0 ? input.nsr : 0,
      weightOnly,
      signal: 'weights only',
    };
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const channels = dims[axis]!;
  const outW = new Float64Array(channels);
  const outA = new Float64Array(channels);
  const outS = new Float64Array(channels);
  for (let i = 0; i < data.length; i++) {
    const o = Math.floor(i / inner) % channels;
    const p = input.power[channelOf(i, o)]!;
    const w2 = data[i]! ** 2;
    outW[o]! += (data[i]! - dq[i]!) ** 2 * p;
    outA[o]! += w2 * input.noise;
    outS[o]! += w2 * p;
  }
  const bn = output && output.mu.length === channels ? output : undefined;
  let signal = 0;
  let weight = 0;
  let act = 0;
  for (let o = 0; o < channels; o++) {
    signal += bn ? bn.mu[o]! ** 2 + bn.sigma[o]! ** 2 : outS[o]! + c.bias[o]! ** 2;
    weight += outW[o]!;
    act += outA[o]!;
  }
  if (!(signal > 0))
    return { weight: weightOnly, input: input.nsr, weightOnly, signal: 'weights only' };
  return {
    weight: weight / signal,
    input: act / signal,
    weightOnly,
    signal: bn ? 'batchnorm' : 'independent inputs',
  };
}

/**
 * Maps (flat weight index, output channel) to the input channel the element multiplies, or
 * undefined when the layout does not say (then the layer falls back to ratios).
 * Conv OIHW: channel (o's group) * I/g + i. Gemm [N, K]: feature k; MatMul right [K, N]: row k.
 * A feature count K that is a multiple of the input's channels C is read as an NCHW Flatten
 * (feature k belongs to channel floor(k / (K / C))).
 */
function inputChannelOf(
  c: LayerCandidate,
  inputChannels: number,
): ((i: number, o: number) => number) | undefined {
  const dims = c.weight.dims;
  const feature = (k: number, K: number): number | undefined => {
    if (inputChannels === 1) return 0;
    if (inputChannels === K) return k;
    if (K % inputChannels === 0) return Math.floor(k / (K / inputChannels));
    return undefined;
  };
  const ok = (K: number) => inputChannels === 1 || K % inputChannels === 0;
  if (c.kind === 'conv') {
    const [O, Ig, kh, kw] = dims as [number, number, number, number];
    const group = c.conv?.group ?? 1;
    if (Ig * group !== inputChannels && inputChannels !== 1) return undefined;
    const k2 = kh * kw;
    const perGroup = O / group;
    return (i, o) =>
      inputChannels === 1 ? 0 : Math.floor(o / perGroup) * Ig + Math.floor((i % (Ig * k2)) / k2);
  }
  if (c.kind === 'gemm') {
    const K = dims[1]!;
    if (!ok(K)) return undefined;
    return (i) => feature(i % K, K)!;
  }
  if (c.kind === 'matmul' && c.weightSide !== 'left') {
    const [K, N] = dims as [number, number];
    if (!ok(K)) return undefined;
    return (i) => feature(Math.floor(i / N), K)!;
  }
  return undefined;
}

/** Spatial size (H x W) of the NCHW tensors whose size the graph fixes, by tensor name. */
function spatialSizes(graph: GraphProto): Map<string, [number, number]> {
  const lookup = constantLookup(graph);
  const out = new Map<string, [number, number]>();
  for (const v of graph.input) {
    const dims = tensorTypeInfo(v.type)?.dims;
    if (dims?.length === 4 && typeof dims[2] === 'number' && typeof dims[3] === 'number')
      out.set(v.name, [dims[2], dims[3]]);
  }
  const windowed = (node: NodeProto, hw: [number, number], kernel: number[]) => {
    const strides = attrInts(node, 'strides', [1, 1]);
    const dil = attrInts(node, 'dilations', [1, 1]);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
    const autoPad = attrString(node, 'auto_pad', 'NOTSET');
    const ceil = attrInt(node, 'ceil_mode', 0) === 1;
    return hw.map((x, i) => {
      const s = strides[i] ?? 1;
      if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(x / s);
      const pad = autoPad === 'VALID' ? 0 : (pads[i] ?? 0) + (pads[i + 2] ?? 0);
      const span = (dil[i] ?? 1) * ((kernel[i] ?? 1) - 1) + 1;
      const n = (x + pad - span) / s + 1;
      return ceil ? Math.ceil(n) : Math.floor(n);
    }) as [number, number];
  };
  for (const node of topologicalOrder(graph)) {
    const y = node.output[0];
    const hw = node.input.map((i) => out.get(i)).find((v) => v !== undefined);
    if (!y || !hw) continue;
    switch (node.opType) {
      case 'Conv': {
        const w = lookup.proto(node.input[1] ?? '');
        const kernel = attrInts(node, 'kernel_shape') ?? w?.dims.slice(2).map(Number);
        if (kernel) out.set(y, windowed(node, out.get(node.input[0] ?? '') ?? hw, kernel));
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const kernel = attrInts(node, 'kernel_shape');
        if (kernel) out.set(y, windowed(node, hw, kernel));
        break;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
        out.set(y, [1, 1]);
        break;
      default:
        if (ELEMENTWISE.has(node.opType)) out.set(y, hw);
    }
  }
  return out;
}

/** Ops that keep an NCHW tensor's spatial size. */
const ELEMENTWISE = new Set([
  'BatchNormalization',
  'Relu',
  'Clip',
  'LeakyRelu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Identity',
  'Dropout',
]);

/**
 * The factor by which noise at each tensor reaches the model output, taking global average
 * pools into account: a GlobalAveragePool over S positions divides white noise's power by S,
 * while the signal keeps its channel means, so the noise-to-signal ratio after it is
 * NSR_in * (E[x^2] / (E[x]^2 + Var[x] / S)) / S, with the channel moments of its input
 * (positions taken as independent). Everything else passes noise at unit gain. A tensor with
 * several paths to the outputs takes the largest gain among them; a pool whose input
 * distribution or size the model does not determine counts as unit gain.
 */
function averagingGains(
  graph: GraphProto,
  dists: ReadonlyMap<string, ChannelDistribution>,
): (tensor: string) => number {
  const sizes = spatialSizes(graph);
  const users = consumers(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const poolGain = (node: NodeProto): number => {
    const d = dists.get(node.input[0] ?? '');
    const hw = sizes.get(node.input[0] ?? '');
    if (!d || !hw) return 1;
    const S = hw[0] * hw[1];
    let pin = 0;
    let pout = 0;
    for (let c = 0; c < d.mu.length; c++) {
      const m = clippedNormalMoments(d.mu[c]!, d.sigma[c]!, d.lo, d.hi);
      const m2 = d.power?.[c] ?? m.meanSquare;
      pin += m2;
      pout += m.mean ** 2 + Math.max(0, m2 - m.mean ** 2) / S;
    }
    return pout > 0 ? Math.min(1, pin / pout / S) : 1;
  };
  const gain = new Map<string, number>();
  for (const node of [...topologicalOrder(graph)].reverse())
    for (const t of node.input) {
      if (!t || gain.has(t)) continue;
      let g = outputs.has(t) ? 1 : 0;
      for (const user of users.get(t) ?? []) {
        const after = Math.max(
          0,
          ...user.output.map((o) => gain.get(o) ?? (outputs.has(o) ? 1 : 0)),
        );
        g = Math.max(g, user.opType === 'GlobalAveragePool' ? poolGain(user) * after : after);
      }
      gain.set(t, g);
    }
  return (tensor) => gain.get(tensor) ?? (outputs.has(tensor) ? 1 : 0);
}

/**
 * Predicts the INT8 noise of `model` on `target` from the model alone (see the module comment).
 * Deterministic and pure: the same model and options give the same report everywhere.
 */
export function predictRisk(
  model: ModelProto,
  target: Target,
  options: RiskOptions = {},
): RiskReport {
  if (!model.graph) throw new TypeError('predictRisk: model has no graph');
  const z = options.z ?? 4;
  if (!(z > 0)) throw new RangeError(`predictRisk: z must be > 0, got ${z}`);
  const prepared = prepareModel(model, target);
  const schemes = effectiveSchemes(target, options);
  for (const [name, st] of Object.entries(options.inputs ?? {}))
    if (![st.mean, st.std, st.min, st.max].every(Number.isFinite) || st.std < 0 || st.min > st.max)
      throw new RangeError(
        `input statistics for '${name}': want finite mean, std >= 0 and min <= max, got ${JSON.stringify(st)}`,
      );
  const dists = activationDistributions(model.graph, options.inputs);
  const gains = averagingGains(model.graph, dists);
  const raw = prepared.layers.map((c) => {
    const qw = quantizeWeight(c.weight, schemes.weight, options.weightClip ?? 'max');
    const dq = dequantizeWeight(qw);
    const flags: string[] = [];
    if (schemes.weight.granularity === 'per-tensor') {
      const maxes = channelAbsMax(c);
      const spread = Math.max(...maxes) / Math.max(median(maxes), Number.MIN_VALUE);
      if (maxes.length > 1 && spread > SPREAD_FLAG)
        flags.push(
          `per-tensor weights over output channels of very different ranges (widest ${spread.toFixed(1)}x the median)`,
        );
    }
    const d = dists.get(c.input);
    const input = d ? inputQuantization(d, z, schemes.act, c.input) : null;
    if (d && input) {
      if (schemes.act.symmetric && d.lo >= 0)
        flags.push('symmetric activations on a non-negative input: half of the grid is unused');
      if (input.spread > SPREAD_FLAG)
        flags.push(
          `outlier input channels: the widest spans ${input.spread.toFixed(1)}x the median channel, and one per-tensor step covers all`,
        );
    } else flags.push('input distribution not determined by the model: weight noise only');
    const noise = layerNoise(c, dq, input, dists.get(c.output));
    return { c, noise, input, flags, gain: gains(c.output) };
  });
  const total = raw.reduce((s, r) => s + r.gain * (r.noise.weight + r.noise.input), 0);
  const totalW = raw.reduce((s, r) => s + r.gain * r.noise.weight, 0);
  const layers: LayerRisk[] = raw
    .map((r) => ({
      name: r.c.name,
      kind: r.c.kind,
      weightSqnrDb: db(r.noise.weightOnly),
      inputSqnrDb: r.input ? db(r.input.nsr) : null,
      sqnrDb: db(r.noise.weight + r.noise.input),
      signal: r.noise.signal,
      outputGainDb: 10 * Math.log10(r.gain),
      share: total > 0 ? (r.gain * (r.noise.weight + r.noise.input)) / total : 0,
      input: r.input
        ? {
            tensor: r.input.tensor,
            source: r.input.source,
            channels: r.input.power.length,
            lo: r.input.lo,
            hi: r.input.hi,
            step: r.input.step,
            approximations: r.input.approximations,
          }
        : null,
      flags: r.flags,
    }))
    .sort((a, b) => b.share - a.share || a.name.localeCompare(b.name));
  const predictedSqnrDb = db(total);
  return {
    target: target.id,
    weights: schemes.weight,
    activations: schemes.act,
    layers,
    skipped: prepared.skipped,
    predictedSqnrDb,
    weightOnlySqnrDb: db(totalW),
    covered: raw.filter((r) => r.input !== null).length,
    level: riskLevel(predictedSqnrDb),
    z,
  };
}
