/**
 * Cross-framework quantization, step 2: a foreign framework's quantization on a target.
 *
 * core/import/qdq.ts takes a QDQ model apart into its float model and the framework's
 * parameters. Here each layer the target quantizes gets those parameters in the target's own
 * integer scheme, and the emulator executes them with the target's arithmetic. Nothing is
 * calibrated: the scales are the framework's. Where the target's scheme can hold the framework's
 * grid, the mapping is exact:
 * - an asymmetric uint8 activation on an asymmetric int8 target (Ascend 310) is the same grid
 *   with the zero point shifted by -128;
 * - symmetric int8 weights (PyTorch, ONNX Runtime, TensorRT all write them) keep their integers
 *   and scales; a per-tensor scale is the same scale on every channel.
 * Where it cannot, the parameters are re-fitted and the report says so, layer by layer:
 * - an asymmetric activation on a symmetric target (Ascend 310P, T4) keeps the framework's
 *   clip range, widened to be symmetric about 0 (a ReLU output's step doubles);
 * - int8 weights on an int4 target (W4A8), or asymmetric weights, are quantized again from
 *   the framework's dequantized values with the target's scheme;
 * - the extreme level -128 of a symmetric int8 grid does not exist on targets whose symmetric
 *   grid is [-127, 127]: those values saturate, and their count is reported.
 * What the framework quantized that the target runs in float (e.g. an Add, a pool's output on
 * Ascend) is executed as the target does it: the framework's parameters there are not used.
 */
import {
  DYNAMIC_TARGET_IDS,
  isDynamic,
  type Target,
  type TensorScheme,
} from '../formats/targets.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { buildEmulationModel } from '../quantize/emulation.ts';
import type { QuantizedLayer } from '../quantize/layer.ts';
import {
  type ActivationParams,
  activationParams,
  integerRange,
  roundHalfEven,
} from '../quantize/params.ts';
import {
  type LayerCandidate,
  type PreparedModel,
  prepareModel,
  type SkippedLayer,
} from '../quantize/prepare.ts';
import { buildQdqModel } from '../quantize/qdq.ts';
import { layerFromWeight } from '../quantize/quantize.ts';
import { type QuantizedWeight, quantizeWeight } from '../quantize/weights.ts';
import type { ForeignActivation, ForeignWeight, QdqImport } from './qdq.ts';

/** How a foreign parameter set became the target's. */
export type Mapping = 'exact' | 'refit';

/** How a layer's input is quantized: the framework's fixed parameters in the target's scheme. */
export interface ImportedStaticActivation {
  foreign: ForeignActivation;
  target: ActivationParams;
  mapping: Mapping;
  note?: string;
}

/** A layer input the file quantizes at run time, as the dynamic target does (no parameters). */
export interface ImportedDynamicActivation {
  foreign: 'dynamic';
  mapping: 'exact';
  note: string;
}

/** One layer of an imported quantization on a target. */
export interface ImportedLayer {
  name: string;
  kind: QuantizedLayer['kind'];
  activation: ImportedStaticActivation | ImportedDynamicActivation;
  weight: {
    /** The framework's weight scheme ('float': it left the weight in float). */
    foreign: 'per-channel' | 'per-tensor' | 'float';
    mapping: Mapping;
    /** Integer weights saturated by the target's narrower range (e.g. -128 -> -127). */
    saturated: number;
    note?: string;
  };
}

/** A foreign quantization placed on a target: what the emulator runs and what changed. */
export interface ImportedQuantization {
  target: Target['id'];
  prepared: PreparedModel;
  layers: QuantizedLayer[];
  /** Layers the target would quantize but that stay float, with the reason. */
  skipped: SkippedLayer[];
  report: ImportedLayer[];
  /** The model the target's emulator executes. */
  emulation: ModelProto;
  /** The standard QDQ model in the target's integer scheme. */
  qdq: ModelProto;
}

const typeRange = (type: ForeignActivation['type']) =>
  type === 'int8' ? { qmin: -128, qmax: 127 } : { qmin: 0, qmax: 255 };

/** The zero point of a symmetric grid of `type` (0 for int8, 128 for uint8). */
const symmetricZero = (type: ForeignActivation['type']) => (type === 'int8' ? 0 : 128);

/** A framework's activation parameters in the target's scheme (see the module comment). */
export function mapActivation(
  f: ForeignActivation,
  scheme: TensorScheme,
): { params: ActivationParams; mapping: Mapping; note?: string } {
  const from = typeRange(f.type);
  const to = integerRange(scheme);
  const lo = (from.qmin - f.zeroPoint) * f.scale;
  const hi = (from.qmax - f.zeroPoint) * f.scale;
  if (!scheme.symmetric) {
    if (to.qmax - to.qmin === from.qmax - from.qmin) {
      const zeroPoint = f.zeroPoint + (to.qmin - from.qmin);
      return {
        params: { scale: f.scale, zeroPoint, qmin: to.qmin, qmax: to.qmax },
        mapping: 'exact',
        ...(zeroPoint !== f.zeroPoint
          ? { note: `zero point ${f.zeroPoint} (${f.type}) -> ${zeroPoint} (${scheme.type})` }
          : {}),
      };
    }
    const params = activationParams({ lo, hi }, scheme);
    return {
      params,
      mapping: 'refit',
      note: `${from.qmax - from.qmin + 1}-level grid re-fitted to ${to.qmax - to.qmin + 1} levels over [${fmt(lo)}, ${fmt(hi)}]`,
    };
  }
  const zero = scheme.type === 'uint8' ? 128 : 0;
  if (f.zeroPoint === symmetricZero(f.type)) {
    const lost = from.qmin - f.zeroPoint < to.qmin - zero;
    return {
      params: { scale: f.scale, zeroPoint: zero, qmin: to.qmin, qmax: to.qmax },
      mapping: 'exact',
      ...(lost ? { note: `level ${from.qmin - f.zeroPoint} saturates to ${to.qmin - zero}` } : {}),
    };
  }
  const params = activationParams({ lo, hi }, scheme);
  return {
    params,
    mapping: 'refit',
    note: `asymmetric range [${fmt(lo)}, ${fmt(hi)}] made symmetric: step x${(params.scale / f.scale).toFixed(2)}`,
  };
}

const fmt = (x: number) => Number(x.toPrecision(4)).toString();

/** Name of the constant weight input of a layer's first node. */
function weightInput(c: LayerCandidate): string {
  const node = c.nodes[0]!;
  return (c.kind === 'matmul' && c.weightSide === 'left' ? node.input[0] : node.input[1]) ?? '';
}

/** A framework weight's granularity. */
const schemeOf = (f: ForeignWeight): 'per-tensor' | 'per-channel' =>
  f.scales.length === 1 ? 'per-tensor' : 'per-channel';

/** The suffix core/quantize/prepare.ts gives a Conv weight with a BatchNormalization folded in. */
const BN_FOLDED = '__bnfolded';

/**
 * The framework's quantized weight of a layer, by its weight input. A file that quantized a Conv
 * and left the BatchNormalization after it (ONNX Runtime's quantizer does, on a model not
 * pre-processed) has its weight folded here: the folded weight is the framework's times one
 * factor per output channel (gamma / sigma), i.e. the same integers on a per-channel scale
 * (sign moved into the integers, |factor| into the scale). Undefined when the layer's weight is
 * float in the file.
 */
function foreignWeightOf(c: LayerCandidate, imp: QdqImport): ForeignWeight | undefined {
  const name = weightInput(c);
  const direct = imp.weights.get(name);
  if (direct || !name.endsWith(BN_FOLDED)) return direct;
  const f = imp.weights.get(name.slice(0, -BN_FOLDED.length));
  if (!f || c.weight.axis !== 0 || f.zeroPoints.some((z) => z !== symmetricZero(f.type)))
    return undefined;
  const channels = c.weight.dims[0]!;
  const inner = c.weight.data.length / channels;
  const zero = symmetricZero(f.type);
  const q = Int32Array.from(f.q);
  const scales = new Float64Array(channels);
  for (let ch = 0; ch < channels; ch++) {
    const s = f.scales[f.scales.length === 1 ? 0 : ch]!;
    let factor = 1; // an all-zero channel: any scale holds it
    for (let i = ch * inner; i < (ch + 1) * inner; i++)
      if (q[i] !== zero) {
        factor = c.weight.data[i]! / ((q[i]! - zero) * s);
        break;
      }
    if (factor < 0) for (let i = ch * inner; i < (ch + 1) * inner; i++) q[i] = 2 * zero - q[i]!;
    scales[ch] = s * Math.abs(factor);
  }
  return { ...f, q, scales, zeroPoints: new Int32Array(channels).fill(zero), axis: 0 };
}

/**
 * The framework's integer weights in the target's scheme: the layer's float weight (the
 * framework's dequantized values) divided by the framework's scale per output channel gives
 * the framework's integers back exactly; they are kept when the target's grid holds them.
 */
export function mapWeight(
  c: LayerCandidate,
  f: ForeignWeight | undefined,
  scheme: TensorScheme,
): {
  weight: QuantizedWeight;
  foreign: ImportedLayer['weight']['foreign'];
  mapping: Mapping;
  saturated: number;
  note?: string;
} {
  const channels = c.weight.dims[c.weight.axis]!;
  if (!f)
    return {
      weight: quantizeWeight(c.weight, scheme),
      foreign: 'float',
      mapping: 'refit',
      saturated: 0,
      note: 'a float weight in the imported model: quantized with the target scheme (max)',
    };
  const foreign = schemeOf(f);
  const refit = (note: string) => ({
    weight: quantizeWeight(c.weight, scheme),
    foreign,
    mapping: 'refit' as const,
    saturated: 0,
    note,
  });
  const symmetric = f.zeroPoints.every((z) => z === symmetricZero(f.type));
  if (!symmetric) return refit('asymmetric weights re-fitted to the symmetric scheme');
  const { qmin, qmax } = integerRange(scheme);
  if (qmax < 127) return refit(`int8 weights re-quantized to ${scheme.type} (max)`);
  if (f.scales.length !== 1 && f.scales.length !== channels)
    return refit(`${f.scales.length} scales for ${channels} output channels`);
  const perChannel = scheme.granularity === 'per-channel';
  if (!perChannel && f.scales.length !== 1)
    return refit('per-channel weights on a per-tensor target');
  const scaleOf = (ch: number) => f.scales[f.scales.length === 1 ? 0 : ch]!;
  let inner = 1;
  for (let i = c.weight.axis + 1; i < c.weight.dims.length; i++) inner *= c.weight.dims[i]!;
  const q = new Int32Array(c.weight.data.length);
  const zero = scheme.type === 'uint8' ? 128 : 0;
  let saturated = 0;
  for (let i = 0; i < q.length; i++) {
    const ch = Math.floor(i / inner) % channels;
    const s = scaleOf(ch);
    const x = c.weight.data[i]! / s;
    const r = roundHalfEven(x);
    // The float weight is the framework's dequantized integer: anything else means the weight
    // changed after quantization (e.g. a BatchNorm folded into it here).
    if (Math.abs(x - r) > 1e-3)
      return refit(
        'weights are not on the framework grid (changed after quantization, e.g. a folded BatchNorm): re-quantized (max)',
      );
    let v = r + zero;
    if (v < qmin || v > qmax) {
      saturated++;
      v = v < qmin ? qmin : qmax;
    }
    q[i] = v;
  }
  const n = perChannel ? channels : 1;
  const weight: QuantizedWeight = {
    dims: [...c.weight.dims],
    axis: c.weight.axis,
    q,
    scales: Float64Array.from({ length: n }, (_, ch) => scaleOf(ch)),
    zeroPoints: new Int32Array(n).fill(zero),
    qmin,
    qmax,
  };
  return {
    weight,
    foreign,
    mapping: 'exact',
    saturated,
    ...(saturated > 0 ? { note: `${saturated} weights at ${-128} saturate to ${qmin}` } : {}),
  };
}

/**
 * The activation parameters an imported dynamic layer carries: none that any model uses (the
 * dynamic export quantizes each input at run time, and takes the float bias). The uint8 grid
 * with scale 1 keeps the layer's fields defined and its digest fixed.
 */
const RUN_TIME_ACTIVATION: ActivationParams = { scale: 1, zeroPoint: 0, qmin: 0, qmax: 255 };

/**
 * Why a file cannot be placed on a target, or undefined when it can: a dynamically quantized
 * file has no activation scales for a target that needs them, and a dynamic target has no use
 * for a static file's.
 */
export function importKindRefusal(
  imp: Pick<QdqImport, 'format'>,
  target: Target,
): string | undefined {
  const dynamicFile = imp.format === 'dynamic';
  if (dynamicFile === isDynamic(target)) return undefined;
  return dynamicFile
    ? `the file is quantized dynamically (its activation scales are computed at run time, as ONNX Runtime's quantize_dynamic writes it): ${target.id} needs calibrated activation scales; place it on a dynamic target (${DYNAMIC_TARGET_IDS.join(', ')}), or calibrate the task's model for ${target.id}`
    : `the file is quantized statically (calibrated activation scales, QDQ or QOperator); ${target.id} quantizes activations at run time: place it on a static target, or import a dynamically quantized file (ONNX Runtime's quantize_dynamic)`;
}

/**
 * Places an imported quantization on a target: each layer the target quantizes and the
 * framework quantized (its input has a QuantizeLinear) gets the framework's parameters in the
 * target's scheme; the others stay float. No calibration data is read.
 */
export function quantizeImported(imp: QdqImport, target: Target): ImportedQuantization {
  const refusal = importKindRefusal(imp, target);
  if (refusal) throw new RangeError(refusal);
  const prepared = prepareModel(imp.model, target);
  const skipped = [...prepared.skipped];
  const layers: QuantizedLayer[] = [];
  const report: ImportedLayer[] = [];
  const actScheme = target.activations;
  for (const c of prepared.layers) {
    const fa = imp.activations.get(c.input);
    if (!fa && !imp.dynamic.has(c.input)) {
      skipped.push({
        name: c.name,
        opType: c.nodes[0]!.opType,
        reason: `its input '${c.input}' is not quantized in the imported model`,
      });
      continue;
    }
    const w = mapWeight(c, foreignWeightOf(c, imp), target.weights);
    // A weight with a BatchNorm folded in here: the file's scheme is the unfolded weight's.
    const unfolded = weightInput(c).endsWith(BN_FOLDED)
      ? imp.weights.get(weightInput(c).slice(0, -BN_FOLDED.length))
      : undefined;
    const notes = [
      w.note,
      unfolded && w.mapping === 'exact' ? 'BatchNorm folded: per-channel scales' : '',
    ];
    const note = notes.filter(Boolean).join('; ');
    const weight = {
      foreign: unfolded ? schemeOf(unfolded) : w.foreign,
      mapping: w.mapping,
      saturated: w.saturated,
      ...(note ? { note } : {}),
    };
    if (!fa) {
      // The file quantizes this input at run time, as the target does: no parameters to map.
      layers.push(layerFromWeight(c, RUN_TIME_ACTIVATION, w.weight, target.id));
      report.push({
        name: c.name,
        kind: c.kind,
        activation: {
          foreign: 'dynamic',
          mapping: 'exact',
          note: 'quantized per input at run time',
        },
        weight,
      });
      continue;
    }
    const act = mapActivation(fa, actScheme);
    layers.push(layerFromWeight(c, act.params, w.weight, target.id));
    report.push({
      name: c.name,
      kind: c.kind,
      activation: {
        foreign: fa,
        target: act.params,
        mapping: act.mapping,
        ...(act.note ? { note: act.note } : {}),
      },
      weight,
    });
  }
  // Where the framework quantized a layer's output too, the QDQ export keeps that pair (ONNX
  // Runtime then fuses DQ -> op -> Q into its integer kernels: the cpu-wasm target's execution).
  const outputParams = new Map<string, ActivationParams>();
  for (const l of layers) {
    const fo = imp.activations.get(l.output);
    if (fo) outputParams.set(l.name, mapActivation(fo, actScheme).params);
  }
  const qdq = buildQdqModel(prepared, layers, target, outputParams);
  const emulation =
    target.executor === 'ort-qdq' ? qdq : buildEmulationModel(prepared, layers, target);
  return { target: target.id, prepared, layers, skipped, report, emulation, qdq };
}

/**
 * Why an imported model cannot stand in for the task's (other graph inputs or outputs, by name),
 * or undefined when it takes the task model's inputs and gives its outputs.
 */
export function interfaceMismatch(imported: ModelProto, task: ModelProto): string | undefined {
  const names = (vs: readonly { name: string }[]) => vs.map((v) => v.name).join(', ');
  const inits = new Set(imported.graph!.initializer.map((t) => t.name));
  const inputs = imported.graph!.input.filter((i) => !inits.has(i.name));
  const taskInits = new Set(task.graph!.initializer.map((t) => t.name));
  const taskInputs = task.graph!.input.filter((i) => !taskInits.has(i.name));
  if (
    names(inputs) === names(taskInputs) &&
    names(imported.graph!.output) === names(task.graph!.output)
  )
    return undefined;
  return `it takes [${names(inputs)}] and gives [${names(imported.graph!.output)}]; the task's model takes [${names(taskInputs)}] and gives [${names(task.graph!.output)}]`;
}

/** Whether an imported quantization is of the task's model (see {@link sameTaskModel}). */
export interface SameModel {
  same: boolean;
  /** Task layers each matched by one imported layer. */
  matched: number;
  layers: number;
  /** Why not, naming the first layer that does not match. */
  why?: string;
}

/**
 * Whether an imported QDQ model quantizes the task's model: the benchmark compares its INT8
 * metric with the task model's FP32 one, which means nothing for another network. Both models
 * are prepared for the target (BatchNorm folded, as exporters fold it), and every weighted layer
 * of the task must have an imported layer of the same kind and weight shape whose dequantized
 * weights lie within half a quantization step of the task's (what rounding to the framework's
 * grid moves them at most), and no imported layer may be left over. Layers are matched in any
 * order, since exporters order and name nodes their own way.
 */
export function sameTaskModel(task: ModelProto, imp: QdqImport, target: Target): SameModel {
  const ours = prepareModel(task, target).layers.map((c) => canonical(c));
  const theirs = prepareModel(imp.model, target).layers.map((c) =>
    canonical(c, foreignWeightOf(c, imp)),
  );
  const used = new Set<number>();
  let worst = '';
  for (const t of ours) {
    let found = -1;
    let closest = Number.POSITIVE_INFINITY;
    for (const [j, c] of theirs.entries()) {
      if (used.has(j) || c.shape !== t.shape) continue;
      const steps = weightSteps(t, c);
      if (steps <= 0.5 + 1e-3) {
        found = j;
        break;
      }
      closest = Math.min(closest, steps);
    }
    if (found < 0) {
      worst = Number.isFinite(closest)
        ? `no imported ${t.shape} layer has ${t.name}'s weights (the closest is ${closest.toFixed(1)} quantization steps away; at most 0.5 is rounding)`
        : `no imported layer is a ${t.shape} like ${t.name}`;
      return { same: false, matched: used.size, layers: ours.length, why: worst };
    }
    used.add(found);
  }
  if (theirs.length > ours.length)
    return {
      same: false,
      matched: used.size,
      layers: ours.length,
      why: `the imported model has ${theirs.length} weighted layers, the task's ${ours.length}`,
    };
  return { same: true, matched: used.size, layers: ours.length };
}

/**
 * A layer's weight for comparison, output channels outermost: a Gemm's [N, K] as it is, a
 * MatMul's right-hand [K, N] transposed (ONNX Runtime's quantizer rewrites a Gemm as MatMul +
 * Add), both called linear; and the framework's quantization step per output channel.
 */
interface CanonicalWeight {
  name: string;
  /** Kind and shape, e.g. `conv [8x1x3x3]` or `linear [10x64]`. */
  shape: string;
  data: Float32Array;
  channels: number;
  /** The framework's step for an output channel (undefined: a float weight). */
  step?: (channel: number) => number;
}

function canonical(c: LayerCandidate, f?: ForeignWeight): CanonicalWeight {
  const step = f ? (ch: number) => f.scales[f.scales.length === 1 ? 0 : ch]! : undefined;
  const base = { name: c.name, ...(step ? { step } : {}) };
  const { dims, data, axis } = c.weight;
  if (c.kind === 'matmul' && c.weightSide !== 'left' && dims.length === 2 && axis === 1) {
    const [k, n] = dims as [number, number];
    const t = new Float32Array(data.length);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) t[j * k + i] = data[i * n + j]!;
    return { ...base, shape: `linear [${n}x${k}]`, data: t, channels: n };
  }
  const kind = c.kind === 'gemm' && dims.length === 2 && axis === 0 ? 'linear' : c.kind;
  return { ...base, shape: `${kind} [${dims.join('x')}]`, data, channels: dims[axis]! };
}

/**
 * The largest distance between two layers' weights in quantization steps of the imported
 * weight's scale per output channel (a float weight the framework left unquantized: in units
 * of 1e-5 of its largest magnitude, so that only float rounding passes).
 */
function weightSteps(task: CanonicalWeight, imported: CanonicalWeight) {
  const inner = task.data.length / task.channels;
  let largest = 0;
  for (const v of imported.data) largest = Math.max(largest, Math.abs(v));
  const floatStep = Math.max(1e-5 * largest, 1e-30);
  let worst = 0;
  for (let i = 0; i < task.data.length; i++) {
    const step = imported.step ? imported.step(Math.floor(i / inner)) : floatStep;
    const d = Math.abs(task.data[i]! - imported.data[i]!) / step;
    if (d > worst) worst = d;
  }
  return worst;
}
