/**
 * The performance model behind `speedup` and `energy_gain` (docs/STANDARD.md): per node of the
 * prepared (BN-folded) graph, MACs / ops and bytes moved, then a roofline latency on a target
 * for the INT8 model and for the float baseline (the whole model on the target's float path).
 * Pure and synchronous: shapes come from {@link inferShapes} (core/score/shapes.ts).
 */
import type { SourcedFigure, Target } from '../formats/targets.ts';
import { topologicalOrder } from '../onnx/graph.ts';
import { attrInt, attrInts, type ModelProto, type NodeProto } from '../onnx/index.ts';
import { elementCount } from '../tensor/index.ts';
import { macEnergyPj, OP_ENERGY, opEnergyPj, type Precision } from './energy.ts';
import type { ModelShapes } from './shapes.ts';

export type { Precision } from './energy.ts';

/** A quantized layer as the model needs it: its name and the nodes it replaces (outputs). */
export interface QuantizedLayerRef {
  name: string;
  /** Nodes of the layer: the MAC node first, then e.g. a bias Add folded into it. */
  nodes: readonly Pick<NodeProto, 'output'>[];
}

/** Cost of one node in one model (INT8 or float baseline). */
export interface NodeCost {
  precision: Precision;
  /** Bytes read and written: inputs + weights + outputs at this precision's element sizes. */
  bytes: number;
  /** Roofline latency in seconds, null when the target has no modelled figures. */
  latency: number | null;
  /** Which roof bounds the latency. */
  bound: 'compute' | 'memory' | null;
  /** Energy in joules: power x latency (null when not modelled) and the op-energy estimate. */
  energy: { powerTime: number | null; opEnergy: number };
}

/** One row of the per-layer table. */
export interface LayerRow {
  /** Node name, or `<op>#<index>` in topological order (the layer names of prepareModel). */
  node: string;
  opType: string;
  /** The quantized layer this node belongs to (INT8 model only). */
  layer?: string;
  /** Multiply-accumulates (Conv, ConvTranspose, Gemm, MatMul), 0 for other ops. */
  macs: number;
  /** Arithmetic ops: 2 per MAC (how TOPS figures count) or the per-element count below. */
  ops: number;
  /** How `ops` was counted. */
  counting: string;
  int8: NodeCost;
  float: NodeCost;
  note?: string;
}

/** Totals of one model. */
export interface ModelCost {
  bytes: number;
  latency: number | null;
  energy: { powerTime: number | null; opEnergy: number };
}

/** Which energy model the QQI uses (see docs/STANDARD.md). */
export const QQI_ENERGY_MODEL = 'op-energy' as const;

/** The model's result for one (model, target). */
export interface PerfReport {
  target: Target['id'];
  /** False for targets that are timed, not modelled (cpu-wasm): speed-up and gains are null. */
  modelled: boolean;
  /** The float path of the baseline (fp16 on Ascend, fp32 elsewhere). */
  floatPath: Target['floatPath'];
  figures: Target['peak'];
  energyFigures: Record<string, SourcedFigure>;
  layers: LayerRow[];
  totals: { macs: number; ops: number; int8: ModelCost; float: ModelCost };
  /** float latency / INT8 latency; null when not modelled ("measured only"). */
  speedup: number | null;
  energyGain: {
    /** float / INT8 energy with power x time: equals the speed-up (one power figure per target). */
    powerTime: number | null;
    /** float / INT8 energy from per-op arithmetic and DRAM energies (Horowitz 2014). */
    opEnergy: number | null;
    /** The one the QQI uses. */
    used: typeof QQI_ENERGY_MODEL;
    value: number | null;
  };
  notes: string[];
}

/** Options of {@link perfModel}. */
export interface PerfOptions {
  /** Layers that run in INT8 (default none: pass prepared.layers or the run's layers). */
  quantized?: readonly QuantizedLayerRef[];
}

/** Targets where a conv with few input channels gets no INT8 speed-up, and the rule's source. */
export const LOW_CIN_RULE: Partial<Record<Target['id'], { maxCin: number; source: string }>> = {
  ascend310: {
    maxCin: 16,
    source:
      'AMCT guide via docs/ascend-int8.md: a conv with Cin <= 16 gets no speed-up (cube padding); targets.ts ascend310 note',
  },
};

const VIEW_OPS = new Set([
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Shape',
  'Size',
  'Constant',
  'Dropout',
]);
const MOVE_OPS = new Set([
  'Transpose',
  'Concat',
  'Slice',
  'Gather',
  'GatherElements',
  'GatherND',
  'Pad',
  'Split',
  'Tile',
  'Expand',
  'Cast',
  'ConstantOfShape',
  'DepthToSpace',
  'SpaceToDepth',
]);
const POOL_OPS = new Set(['MaxPool', 'AveragePool', 'LpPool']);
const REDUCE_OPS = new Set([
  'GlobalAveragePool',
  'GlobalMaxPool',
  'GlobalLpPool',
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL2',
  'ReduceSumSquare',
  'ArgMax',
  'ArgMin',
]);
/** Ops per output element for multi-pass ops. */
const PER_ELEMENT: Record<string, [number, string]> = {
  Softmax: [3, '3 ops per element (exp, sum, divide)'],
  LogSoftmax: [3, '3 ops per element (exp, sum, log-subtract)'],
  LayerNormalization: [5, '5 ops per element (mean, subtract, variance, normalise, affine)'],
  InstanceNormalization: [5, '5 ops per element (mean, subtract, variance, normalise, affine)'],
  BatchNormalization: [2, '2 ops per element (scale, shift)'],
};
const ELEMENTWISE = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Clip',
  'Erf',
  'Exp',
  'Log',
  'Sqrt',
  'Pow',
  'Neg',
  'Abs',
  'Min',
  'Max',
  'Gelu',
  'Elu',
  'Selu',
  'Softplus',
  'Reciprocal',
  'Where',
  'Equal',
  'Less',
  'Greater',
  'Not',
  'And',
  'Or',
  'Resize',
  'Upsample',
]);

const FLOAT_TYPES = new Set<unknown>(['float32', 'float16', 1, 10, 11, 16]);
const NATURAL_SIZE: Record<string, number> = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

function floatSize(p: Precision): number {
  return p === 'fp32' ? 4 : p === 'fp16' ? 2 : 1;
}

/** MACs and ops of one node (independent of precision). */
function countOps(
  node: NodeProto,
  dims: (name: string) => number[] | undefined,
): { macs: number; ops: number; counting: string } {
  const out = dims(node.output[0] ?? '');
  const outN = out ? elementCount(out) : 0;
  const op = node.opType;
  if (op === 'Conv') {
    const w = dims(node.input[1] ?? '');
    if (!w || !out) return { macs: 0, ops: 0, counting: 'Conv: shape unknown' };
    // out: [N, Cout, ...spatial]; w: [Cout, Cin/group, ...kernel].
    const macs = outN * elementCount(w.slice(1));
    return {
      macs,
      ops: 2 * macs,
      counting: 'MACs = N·Cout·Hout·Wout·(Cin/group)·kh·kw; ops = 2·MACs',
    };
  }
  if (op === 'ConvTranspose') {
    const x = dims(node.input[0] ?? '');
    const w = dims(node.input[1] ?? '');
    if (!w || !x) return { macs: 0, ops: 0, counting: 'ConvTranspose: shape unknown' };
    // w: [Cin, Cout/group, ...kernel]; each input element meets (Cout/group)·k weights.
    const macs = elementCount(x) * elementCount(w.slice(1));
    return {
      macs,
      ops: 2 * macs,
      counting: 'MACs = N·Cin·Hin·Win·(Cout/group)·kh·kw; ops = 2·MACs',
    };
  }
  if (op === 'Gemm' || op === 'MatMul') {
    const a = dims(node.input[0] ?? '');
    if (!a || !out) return { macs: 0, ops: 0, counting: `${op}: shape unknown` };
    const k = op === 'Gemm' && attrInt(node, 'transA', 0) === 1 ? a[0]! : (a[a.length - 1] ?? 1);
    const macs = outN * k;
    return {
      macs,
      ops: 2 * macs,
      counting: 'MACs = M·N·K (times batch dims: output elements × K); ops = 2·MACs',
    };
  }
  if (VIEW_OPS.has(op)) return { macs: 0, ops: 0, counting: 'view / metadata: no ops, no bytes' };
  if (MOVE_OPS.has(op)) return { macs: 0, ops: 0, counting: 'data movement: no ops, bytes only' };
  if (POOL_OPS.has(op)) {
    const k = elementCount(attrInts(node, 'kernel_shape', []));
    return { macs: 0, ops: outN * k, counting: `${k} ops per output element (kernel window)` };
  }
  if (REDUCE_OPS.has(op)) {
    const x = dims(node.input[0] ?? '');
    return {
      macs: 0,
      ops: x ? elementCount(x) : 0,
      counting: '1 op per input element (reduction)',
    };
  }
  const per = PER_ELEMENT[op];
  if (per) return { macs: 0, ops: outN * per[0], counting: per[1] };
  if (ELEMENTWISE.has(op)) return { macs: 0, ops: outN, counting: '1 op per output element' };
  return {
    macs: 0,
    ops: outN,
    counting: `unlisted op ${op}: 1 op per output element (assumption)`,
  };
}

/**
 * Per-node MACs, bytes and roofline latency of the INT8 model and the float baseline on
 * `target`, with totals, the modelled speed-up and both energy gains.
 *
 * Precision per node: a node of a quantized layer runs in int8 (input activation and weights at
 * 1 byte, int32 bias at 4, output dequantised to the float path), except on Ascend 310 a conv
 * with Cin <= 16, which is counted at fp16 cost; every other node runs on the target's float
 * path (`target.floatPath`) in both models. Latency = max(ops / peak ops of that precision,
 * bytes / bandwidth); totals are sums (no overlap between layers, no fusion). No fusion is
 * modelled in either model (a Relu after a conv costs the same in both).
 */
export function perfModel(
  model: ModelProto,
  shapes: ModelShapes,
  target: Target,
  options: PerfOptions = {},
): PerfReport {
  const graph = model.graph;
  if (!graph) throw new TypeError('perfModel: model has no graph');
  const modelled =
    target.peak.int8Ops.value > 0 &&
    target.peak.floatOps.value > 0 &&
    target.peak.bandwidth.value > 0;
  const fp: Precision = target.floatPath;
  const inits = new Set(graph.initializer.map((t) => t.name));
  const dims = (name: string) => shapes.tensors[name]?.dims;
  const typeOf = (name: string) => shapes.tensors[name]?.type;
  const layerOf = new Map<string, { name: string; first: boolean }>();
  for (const l of options.quantized ?? [])
    l.nodes.forEach((n, i) => {
      for (const o of n.output) if (o !== '') layerOf.set(o, { name: l.name, first: i === 0 });
    });
  const lowCin = LOW_CIN_RULE[target.id];
  const notes: string[] = [];

  const cost = (
    precision: Precision,
    bytes: number,
    ops: number,
    macs: number,
    opsPrecision: Precision,
  ): NodeCost => {
    const peak = opsPrecision === 'int8' ? target.peak.int8Ops.value : target.peak.floatOps.value;
    const compute = modelled ? ops / peak : null;
    const memory = modelled ? bytes / target.peak.bandwidth.value : null;
    const latency = compute === null || memory === null ? null : Math.max(compute, memory);
    const bound =
      latency === null || latency === 0 ? null : compute! >= memory! ? 'compute' : 'memory';
    const pj =
      macs > 0
        ? macs * macEnergyPj(opsPrecision)
        : ops * (opsPrecision === 'int8' ? opEnergyPj('int8') : opEnergyPj(opsPrecision));
    return {
      precision,
      bytes,
      latency,
      bound,
      energy: {
        powerTime: latency === null ? null : latency * target.peak.power.value,
        opEnergy: (pj + bytes * OP_ENERGY.dramByte.value) * 1e-12,
      },
    };
  };
  // Bytes of a node's tensors when it runs in float precision p (non-float tensors natural).
  const floatBytes = (node: NodeProto, p: Precision, counting: string) => {
    if (counting.startsWith('view')) return 0;
    let b = 0;
    for (const t of [...node.input, ...node.output]) {
      if (t === '') continue;
      const d = dims(t);
      if (!d) continue;
      const ty = typeOf(t);
      const size = FLOAT_TYPES.has(ty) ? floatSize(p) : (NATURAL_SIZE[String(ty)] ?? 4);
      b += elementCount(d) * size;
    }
    return b;
  };

  const layers: LayerRow[] = [];
  for (const [index, node] of topologicalOrder(graph).entries()) {
    const name = node.name !== '' ? node.name : `${node.opType}#${index}`;
    const { macs, ops, counting } = countOps(node, dims);
    const float = cost(fp, floatBytes(node, fp, counting), ops, macs, fp);
    const q = layerOf.get(node.output[0] ?? '');
    let int8 = float;
    let note: string | undefined;
    if (q && !q.first) {
      int8 = cost('int8', 0, 0, 0, 'int8');
      note = `folded into ${q.name}: bias added in the int32 accumulator`;
    } else if (q) {
      const w = dims(node.input[1] ?? '');
      const cin = node.opType === 'Conv' && w ? w[1]! * attrInt(node, 'group', 1) : undefined;
      if (lowCin && cin !== undefined && cin <= lowCin.maxCin) {
        int8 = cost('fp16', floatBytes(node, 'fp16', counting), ops, macs, 'fp16');
        note = `Cin = ${cin} <= ${lowCin.maxCin}: no INT8 speed-up on ${target.name}, counted at fp16 cost (${lowCin.source})`;
      } else {
        // int8 input activation and weight, int32 bias, output dequantised to the float path.
        let b = 0;
        node.input.forEach((t, i) => {
          const d = t === '' ? undefined : dims(t);
          if (!d) return;
          // Conv/Gemm input 2 is the bias (int32); weights and the activation are 8-bit.
          const size = i === 2 ? 4 : target.weights.type === 'int4' && inits.has(t) ? 0.5 : 1;
          b += elementCount(d) * size;
        });
        for (const t of node.output) {
          const d = t === '' ? undefined : dims(t);
          if (d) b += elementCount(d) * floatSize(fp);
        }
        int8 = cost('int8', b, ops, macs, 'int8');
      }
    }
    if (ops > 0 && dims(node.output[0] ?? '') === undefined)
      notes.push(`${name}: output shape unknown, counted as 0`);
    layers.push({
      node: name,
      opType: node.opType,
      ...(q ? { layer: q.name } : {}),
      macs,
      ops,
      counting,
      int8,
      float,
      ...(note ? { note } : {}),
    });
  }

  const total = (pick: (r: LayerRow) => NodeCost): ModelCost => {
    let bytes = 0;
    let latency: number | null = modelled ? 0 : null;
    let powerTime: number | null = modelled ? 0 : null;
    let opEnergy = 0;
    for (const r of layers) {
      const c = pick(r);
      bytes += c.bytes;
      if (latency !== null) latency += c.latency ?? 0;
      if (powerTime !== null) powerTime += c.energy.powerTime ?? 0;
      opEnergy += c.energy.opEnergy;
    }
    return { bytes, latency, energy: { powerTime, opEnergy } };
  };
  const int8 = total((r) => r.int8);
  const float = total((r) => r.float);
  const ratio = (a: number | null, b: number | null) =>
    a === null || b === null || b === 0 ? null : a / b;
  const speedup = modelled ? ratio(float.latency, int8.latency) : null;
  const opEnergyGain = modelled ? ratio(float.energy.opEnergy, int8.energy.opEnergy) : null;
  if (!modelled)
    notes.push(
      `${target.name} has no modelled figures: speed-up and energy gain are measured only (null here)`,
    );
  notes.push(
    'Latency per node = max(ops / peak ops at its precision, bytes / bandwidth); 1 MAC = 2 ops; nodes summed without overlap or fusion.',
    `Energy: power x time (${target.peak.power.value} W for the whole chip, so that gain equals the speed-up) and op-energy (Horowitz 2014 arithmetic + DRAM bytes); the QQI uses ${QQI_ENERGY_MODEL}.`,
  );
  return {
    target: target.id,
    modelled,
    floatPath: fp,
    figures: target.peak,
    energyFigures: { ...OP_ENERGY },
    layers,
    totals: {
      macs: layers.reduce((s, r) => s + r.macs, 0),
      ops: layers.reduce((s, r) => s + r.ops, 0),
      int8,
      float,
    },
    speedup,
    energyGain: {
      powerTime: modelled ? ratio(float.energy.powerTime, int8.energy.powerTime) : null,
      opEnergy: opEnergyGain,
      used: QQI_ENERGY_MODEL,
      value: opEnergyGain,
    },
    notes,
  };
}
