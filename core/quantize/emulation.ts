import { clone, create } from '@bufbuild/protobuf';
import { roundToFp16 } from '../emulator/fp16.ts';
import {
  createLoweringContext,
  lowerFp16Rounding,
  lowerLayer,
} from '../emulator/lowering/index.ts';
import { inputQuantizer } from '../emulator/reference-layer.ts';
import type { Target } from '../formats/targets.ts';
import { makeNode } from '../onnx/builder.ts';
import { type ConstantLookup, constantLookup } from '../onnx/constants.ts';
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  StringStringEntryProtoSchema,
  type TensorProto,
} from '../onnx/gen/onnx_pb.ts';
import { consumers, topologicalOrder } from '../onnx/graph.ts';
import { isDefaultDomain } from '../onnx/opset.ts';
import { tensorFromProto, tensorToProto } from '../onnx/tensor.ts';
import { DT, elementTypes } from './element-types.ts';
import type { QuantizedLayer } from './layer.ts';
import { type PreparedModel, pruneUnusedInitializers } from './prepare.ts';

/** Suffix of a float op's raw output before it is rounded to fp16. */
const RAW = '__fp32';

/**
 * Ops that commute with an elementwise non-decreasing clamp applied to their input 0: they
 * select or move its values (MaxPool's max of clamped values is the clamped max; padding never
 * enters the max). All of them keep fp16 values fp16, so they open VALUE_PRESERVING.
 */
const CLAMP_COMMUTES = new Set([
  'MaxPool',
  'GlobalMaxPool',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Identity',
  'Slice',
  'DepthToSpace',
  'SpaceToDepth',
]);

/**
 * Ops whose float outputs are fp16 values whenever their float inputs (and float constants) are:
 * they select, move or compare values without arithmetic. No rounding is inserted after them.
 * (Clip bounds and Max/Min operands are fp16 too: constants are rounded, tensors are rounded
 * where produced.) Resize counts only in `nearest` mode.
 */
const VALUE_PRESERVING = new Set([
  ...CLAMP_COMMUTES,
  'Relu',
  'Concat',
  'Gather',
  'GatherElements',
  'GatherND',
  'Split',
  'Expand',
  'Tile',
  'Max',
  'Min',
  'Abs',
  'Neg',
  'Clip',
  'ReduceMax',
  'ReduceMin',
  'Dropout',
  'Where',
  'Pad',
  'Sign',
  'Floor',
  'Ceil',
  'Round',
]);

/** True when the node's float outputs are fp16 values whenever its inputs are (no rounding needed). */
export function preservesFp16(node: NodeProto): boolean {
  if (node.opType === 'Resize') {
    const mode = node.attribute.find((a) => a.name === 'mode');
    return mode === undefined || new TextDecoder().decode(mode.s) === 'nearest';
  }
  if (node.opType === 'Pad') {
    // constant-mode Pad with an explicit pad value: the value is an fp16-rounded constant.
    return true;
  }
  return VALUE_PRESERVING.has(node.opType);
}

/** Options of {@link buildEmulationModel}. */
export interface EmulationOptions {
  /**
   * The cheaper lowering (lowerLayer's `fast`: float accumulation where exact, saturation Clips
   * left out where impossible). Default true; the outputs are bit-identical either way (false
   * keeps the previous graph, for benchmarks and checks).
   */
  fast?: boolean;
  /**
   * Leave out each Relu or constant Clip whose output only feeds quantized layers whose input
   * quantizer saturates wherever the clamp would clamp (see {@link clampAbsorbedBy}), after
   * moving clamps past ops that commute with them (MaxPool, Flatten, ...); those
   * layers read the clamp's input instead. Default true; the outputs are bit-identical either
   * way. The clamped tensor then no longer exists in the graph ({@link emulatedInputName} gives
   * what each layer reads), so a model that needs its float values (the bias-correction capture
   * model) passes false.
   */
  absorbClamps?: boolean;
}

/**
 * [lo, hi] of a Relu, or of a Clip whose bounds are constants (±Infinity for an absent bound),
 * as the emulation graph applies them (float constants rounded to fp16 on fp16 float paths);
 * undefined for anything else.
 */
function clampBounds(
  node: NodeProto,
  lookup: ConstantLookup,
  fp16: boolean,
): [number, number] | undefined {
  if (node.opType === 'Relu') return [0, Infinity];
  if (node.opType !== 'Clip') return undefined;
  const bound = (name: string | undefined, attr: string, absent: number) => {
    const a = node.attribute.find((x) => x.name === attr); // opset 6: attributes
    if (a) return a.f;
    if (name === undefined || name === '') return absent; // opset 11+: optional inputs
    const v = lookup.value(name);
    if (v?.type !== 'float32' || v.data.length !== 1) return undefined;
    return (v.data as Float32Array)[0]!;
  };
  const lo = bound(node.input[1], 'min', -Infinity);
  const hi = bound(node.input[2], 'max', Infinity);
  if (lo === undefined || hi === undefined || Number.isNaN(lo) || Number.isNaN(hi))
    return undefined;
  const round = (v: number) => (fp16 && Number.isFinite(v) ? roundToFp16(v, 'saturate') : v);
  return [round(lo), round(hi)];
}

/**
 * Whether clamping a layer's input to [lo, hi] changes nothing its quantizer outputs. The
 * quantizer q is non-decreasing ({@link inputQuantizer}), so q(clamp(x)) = q(x) for every x
 * exactly when q(lo) = q(-Infinity) and q(hi) = q(+Infinity): below lo and above hi it already
 * saturates. Typical case: ReLU6 before an asymmetric int8 quantizer calibrated on [0, <= 6]
 * (q(0) = -128, q(6) = 127).
 */
export function clampAbsorbedBy(layer: QuantizedLayer, lo: number, hi: number): boolean {
  const q = inputQuantizer(layer);
  return q(lo) === q(-Infinity) && q(hi) === q(Infinity);
}

/**
 * Moves each clamp (Relu, constant Clip) whose output feeds a single {@link CLAMP_COMMUTES} op
 * after that op, so that it meets the quantizer of the layer behind it (Relu -> MaxPool -> Conv
 * becomes MaxPool -> Relu -> Conv, which the absorption then can leave out) and runs on the
 * smaller tensor in any case. Exact: clamp(op(x)) = op(clamp(x)) for these ops. The op's output
 * keeps its name (now produced by the clamp); the op writes `<name>__unclamped`.
 */
function sinkClamps(
  graph: GraphProto,
  g: {
    skip: ReadonlySet<NodeProto>;
    lookup: ConstantLookup;
    fp16: boolean;
    types: Map<string, number>;
    reserved: Set<string>;
    graphOutputs: ReadonlySet<string>;
  },
): void {
  for (let moved = true; moved; ) {
    moved = false;
    const usersOf = consumers(graph);
    for (const clamp of graph.node) {
      const t = clamp.output[0];
      if (g.skip.has(clamp) || !t || !clamp.input[0] || g.graphOutputs.has(t)) continue;
      if (!clampBounds(clamp, g.lookup, g.fp16)) continue;
      const users = usersOf.get(t) ?? [];
      const op = users[0];
      if (users.length !== 1 || !op || g.skip.has(op) || !isDefaultDomain(op.domain)) continue;
      if (!CLAMP_COMMUTES.has(op.opType) || op.output.length !== 1 || op.input[0] !== t) continue;
      if (op.input.indexOf(t, 1) > 0) continue;
      const u = op.output[0]!;
      let fresh = `${u}__unclamped`;
      for (let k = 1; g.reserved.has(fresh); k++) fresh = `${u}__unclamped${k}`;
      g.reserved.add(fresh);
      const type = g.types.get(u);
      if (type !== undefined) g.types.set(fresh, type);
      op.input[0] = clamp.input[0];
      op.output[0] = fresh;
      clamp.input[0] = fresh;
      clamp.output[0] = u;
      moved = true;
    }
  }
}

/** Key of the metadata entry that maps a layer input to the tensor its emulation reads. */
const INPUTS_KEY = 'cann_quant_emulated_inputs';

/**
 * Builds the emulation model of a target: every quantized layer replaced by its lowering
 * (core/emulator/lowering: the target's integer arithmetic in onnxruntime-web operators) and,
 * on targets whose float path is fp16 (Ascend), every float tensor rounded to fp16 where it is
 * produced (graph inputs, float-op outputs, float constants). Tensor names of the original graph
 * are kept, so layer outputs can be compared with the FP32 model by name.
 */
export function buildEmulationModel(
  prepared: PreparedModel,
  layers: readonly QuantizedLayer[],
  target: Target,
  options: EmulationOptions = {},
): ModelProto {
  if (target.executor !== 'lowered-emulator') {
    throw new RangeError(
      `target ${target.id} is not emulated by lowering (it runs the QDQ model on ${target.executor})`,
    );
  }
  const model = clone(ModelProtoSchema, prepared.model);
  if (prepared.keptInFloat !== undefined) {
    // A model the quantizer could not take (e.g. not upgradable to opset 13) runs as it is: no
    // quantized layers, and no fp16 rounding either (it needs opset-11+ Clip); the report says so.
    if (layers.length > 0)
      throw new RangeError(`buildEmulationModel: ${prepared.keptInFloat}, yet layers were given`);
    return model;
  }
  const graph = model.graph!;
  const types = elementTypes(graph);
  const fp16 = target.floatPath === 'fp16';
  const byFirstNode = new Map<NodeProto, QuantizedLayer>();
  const replaced = new Set<NodeProto>();
  const candidates = new Map(prepared.layers.map((c) => [c.name, c]));
  for (const layer of layers) {
    const c = candidates.get(layer.name);
    if (!c)
      throw new RangeError(
        `buildEmulationModel: layer '${layer.name}' is not a candidate of the prepared model`,
      );
    const orig = c.nodes.map((n) => graph.node[prepared.model.graph!.node.indexOf(n)]!);
    byFirstNode.set(orig[0]!, layer);
    for (const n of orig) replaced.add(n);
  }
  const reserved = new Set<string>([
    ...graph.input.map((i) => i.name),
    ...graph.initializer.map((t) => t.name),
  ]);
  for (const n of graph.node) for (const o of [...n.input, ...n.output]) reserved.add(o);
  const absorb = options.absorbClamps ?? true;
  const graphOutputs = new Set(graph.output.map((o) => o.name));
  const lookup = constantLookup(graph);
  if (absorb) sinkClamps(graph, { skip: replaced, lookup, fp16, types, reserved, graphOutputs });
  const ctx = createLoweringContext(reserved);
  const usersOf = consumers(graph);
  /** The tensor to read instead of `node`'s output when the clamp can be left out. */
  const absorbedClamp = (node: NodeProto): string | undefined => {
    const out = node.output[0];
    if (!absorb || !out || !node.input[0] || !isFloat(out) || graphOutputs.has(out)) return;
    const bounds = clampBounds(node, lookup, fp16);
    const users = usersOf.get(out) ?? [];
    if (!bounds || users.length === 0) return;
    for (const user of users) {
      const layer = byFirstNode.get(user);
      if (!layer || layer.input !== out || !clampAbsorbedBy(layer, ...bounds)) return;
    }
    return node.input[0];
  };
  // Activations of a model cannot hold NaN unless the model is broken; skipping the NaN guard
  // saves two operators per tensor and changes nothing for finite values.
  const noNaN = { assumeNoNaN: true } as const;
  const alias = new Map<string, string>();
  const isFloat = (name: string) => types.get(name) === DT.FLOAT;
  if (fp16) {
    for (const input of graph.input) {
      if (!isFloat(input.name) || graph.initializer.some((t) => t.name === input.name)) continue;
      const rounded = fp16InputName(input.name);
      lowerFp16Rounding(ctx, input.name, rounded, noNaN);
      alias.set(input.name, rounded);
    }
  }
  const mapInputs = (n: NodeProto) => {
    n.input = n.input.map((i) => alias.get(i) ?? i);
  };
  for (const node of topologicalOrder(graph)) {
    const layer = byFirstNode.get(node);
    if (layer) {
      // On fp16 paths every float tensor is already rounded (and saturated) to fp16 where produced.
      lowerLayer(
        ctx,
        { ...layer, input: alias.get(layer.input) ?? layer.input },
        { ...noNaN, inputIsFp16: fp16, fast: options.fast ?? true },
      );
      continue;
    }
    if (replaced.has(node)) continue;
    const unclamped = absorbedClamp(node);
    if (unclamped !== undefined) {
      alias.set(node.output[0]!, alias.get(unclamped) ?? unclamped);
      continue;
    }
    mapInputs(node);
    if (fp16 && node.opType !== 'Constant' && !preservesFp16(node)) {
      const outs = node.output.map((o) => (o !== '' && isFloat(o) ? o : undefined));
      node.output = node.output.map((o, k) => (outs[k] ? `${o}${RAW}` : o));
      ctx.nodes.push(node);
      for (const o of outs) if (o) lowerFp16Rounding(ctx, `${o}${RAW}`, o, noNaN);
    } else {
      ctx.nodes.push(node);
    }
  }
  for (const out of graph.output) {
    const a = alias.get(out.name);
    if (a) ctx.nodes.push(makeNode('Identity', [a], [out.name]));
  }
  graph.node = ctx.nodes;
  graph.initializer.push(...ctx.initializers);
  if (fp16) graph.initializer = graph.initializer.map(roundFloatInitializer);
  if (fp16) {
    for (const n of graph.node) if (n.opType === 'Constant') roundConstantNode(n);
  }
  pruneUnusedInitializers(model);
  ensureOpset(model, 13);
  const reads = Object.fromEntries(
    layers.flatMap((l) => {
      const a = alias.get(l.input);
      return a === undefined ? [] : [[l.input, a]];
    }),
  );
  model.metadataProps = model.metadataProps.filter((p) => p.key !== INPUTS_KEY);
  if (Object.keys(reads).length > 0)
    model.metadataProps.push(
      create(StringStringEntryProtoSchema, { key: INPUTS_KEY, value: JSON.stringify(reads) }),
    );
  return model;
}

const fp16InputName = (input: string) => `${input}__fp16`;

/**
 * The tensor an emulated layer reads for the original tensor `name`, when that tensor is a
 * quantized layer's input: on fp16 float paths a graph input is first rounded to fp16 (under a
 * new name), and a clamp its quantizer makes redundant is left out (the layer reads the clamp's
 * input; its quantized values are the same). Every other tensor keeps its name. Models written
 * before the metadata entry existed are read by the fp16 naming rule.
 */
export function emulatedInputName(model: ModelProto, name: string): string {
  const entry = model.metadataProps.find((p) => p.key === INPUTS_KEY);
  if (entry) return (JSON.parse(entry.value) as Record<string, string>)[name] ?? name;
  const rounded = fp16InputName(name);
  return model.graph!.node.some((n) => n.output.includes(rounded)) ? rounded : name;
}

/** Float32 initializers on an fp16 float path hold fp16 values (what the chip stores). */
function roundFloatInitializer(t: TensorProto): TensorProto {
  if (t.dataType !== DT.FLOAT) return t;
  const v = tensorFromProto(t);
  const data = v.data as Float32Array;
  let changed = false;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    out[i] = roundToFp16(data[i]!, 'saturate');
    if (out[i] !== data[i]) changed = true;
  }
  return changed ? tensorToProto(t.name, { type: 'float32', dims: v.dims, data: out }) : t;
}

function roundConstantNode(n: NodeProto): void {
  for (const a of n.attribute) {
    if (a.name === 'value' && a.t) a.t = roundFloatInitializer(a.t);
    if (a.name === 'value_float') a.f = roundToFp16(a.f, 'saturate');
    if (a.name === 'value_floats') a.floats = a.floats.map((f) => roundToFp16(f, 'saturate'));
  }
}

/** The lowering uses opset-13 operators (Round, per-axis DequantizeLinear); raise older models. */
function ensureOpset(model: ModelProto, min: number): void {
  const def = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (def && def.version < BigInt(min)) {
    throw new RangeError(
      `emulation needs opset >= ${min}; the model declares ${def.version} (upgrade the model first)`,
    );
  }
}
