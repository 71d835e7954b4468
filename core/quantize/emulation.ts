import { clone } from '@bufbuild/protobuf';
import { roundToFp16 } from '../emulator/fp16.ts';
import {
  createLoweringContext,
  lowerFp16Rounding,
  lowerLayer,
} from '../emulator/lowering/index.ts';
import type { Target } from '../formats/targets.ts';
import { makeNode } from '../onnx/builder.ts';
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  type TensorProto,
} from '../onnx/gen/onnx_pb.ts';
import { topologicalOrder } from '../onnx/graph.ts';
import { tensorFromProto, tensorToProto } from '../onnx/tensor.ts';
import { DT, elementTypes } from './element-types.ts';
import type { QuantizedLayer } from './layer.ts';
import { type PreparedModel, pruneUnusedInitializers } from './prepare.ts';

/** Suffix of a float op's raw output before it is rounded to fp16. */
const RAW = '__fp32';

/**
 * Ops whose float outputs are fp16 values whenever their float inputs (and float constants) are:
 * they select, move or compare values without arithmetic. No rounding is inserted after them.
 * (Clip bounds and Max/Min operands are fp16 too: constants are rounded, tensors are rounded
 * where produced.) Resize counts only in `nearest` mode.
 */
const VALUE_PRESERVING = new Set([
  'Relu',
  'MaxPool',
  'GlobalMaxPool',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Concat',
  'Slice',
  'Gather',
  'GatherElements',
  'GatherND',
  'Identity',
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
  'DepthToSpace',
  'SpaceToDepth',
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
}

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
  const ctx = createLoweringContext(reserved);
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
  return model;
}

const fp16InputName = (input: string) => `${input}__fp16`;

/**
 * The tensor an emulated layer reads for the original tensor `name`: on fp16 float paths a graph
 * input is first rounded to fp16 (under a new name); every other tensor keeps its name.
 */
export function emulatedInputName(graph: GraphProto, name: string): string {
  const rounded = fp16InputName(name);
  return graph.node.some((n) => n.output.includes(rounded)) ? rounded : name;
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
