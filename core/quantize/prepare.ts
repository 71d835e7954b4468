import { clone } from '@bufbuild/protobuf';
import type { Target } from '../formats/targets.ts';
import { attrFloat, attrInt, attrInts } from '../onnx/attributes.ts';
import { type ConstantLookup, constantLookup } from '../onnx/constants.ts';
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
} from '../onnx/gen/onnx_pb.ts';
import { consumers, subgraphs, topologicalOrder } from '../onnx/graph.ts';
import { isDefaultDomain, opsetVersion } from '../onnx/opset.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { isOpsetUpgradeError, UPGRADE_OPSET, upgradeOpset } from '../onnx/upgrade.ts';
import { tensor } from '../tensor/index.ts';
import { type FloatWeight, foldBatchNorm } from './weights.ts';

/** A weighted layer the target can run in integers, with its float weight in canonical layout. */
export interface LayerCandidate {
  /** Report key: the node name, or `<op>#<index>` when the node has none. */
  name: string;
  kind: 'conv' | 'gemm' | 'matmul';
  /** The node(s) the layer replaces (MatMul + bias Add count as one layer). */
  nodes: NodeProto[];
  input: string;
  output: string;
  /** Conv: OIHW axis 0; Gemm: [N, K] axis 0; MatMul right: [K, N] axis 1; left: [M, K] axis 0. */
  weight: FloatWeight;
  weightSide?: 'right' | 'left';
  bias: Float32Array;
  conv?: { strides: number[]; pads: number[]; dilations: number[]; group: number };
  /** Number of multiply-accumulates per sample is computed later from shapes (scoring). */
}

/** A node the target would quantize by op type but that stays float, and why. */
export interface SkippedLayer {
  name: string;
  opType: string;
  reason: string;
}

/** The float model ready for quantization: BatchNorm folded, layers found. */
export interface PreparedModel {
  /**
   * BN-folded float model at opset >= 13 (older models are upgraded, see core/onnx/upgrade.ts);
   * tensor names of everything kept are the original names.
   */
  model: ModelProto;
  layers: LayerCandidate[];
  skipped: SkippedLayer[];
  foldedBatchNorms: number;
  /** The model's opset when it was upgraded to 13 for quantization. */
  upgradedFrom?: number;
  /**
   * Set when the whole model stays float (e.g. an operator the opset upgrader does not know):
   * the reason, also given for every layer in `skipped`. `model` is then the unchanged input.
   */
  keptInFloat?: string;
}

/**
 * Constant lookup that also sees through Identity nodes (PyTorch deduplicates equal
 * initializers, e.g. the zero biases of a fresh torchvision model, into `Identity(first)`).
 */
function constants(graph: GraphProto): ConstantLookup {
  const base = constantLookup(graph);
  const identity = new Map<string, string>();
  for (const n of graph.node)
    if (n.opType === 'Identity' && isDefaultDomain(n.domain) && n.input[0] && n.output[0])
      identity.set(n.output[0], n.input[0]);
  const resolve = (name: string) => {
    let n = name;
    for (let hops = 0; hops < 64 && !base.has(n) && identity.has(n); hops++) n = identity.get(n)!;
    return n;
  };
  return {
    has: (name) => base.has(resolve(name)),
    proto: (name) => base.proto(resolve(name)),
    value: (name) => base.value(resolve(name)),
    names: () => base.names(),
  };
}

const layerName = (node: NodeProto, index: number) =>
  node.name !== '' ? node.name : `${node.opType}#${index}`;

/**
 * Weighted nodes of the target's op types inside the subgraphs (If/Loop/Scan) of `nodes`, or
 * also among `nodes` themselves when `where` is given: they stay float, with this reason.
 */
function nestedLayers(
  nodes: readonly NodeProto[],
  quantizable: ReadonlySet<string>,
  reason: (where: string) => string,
  out: SkippedLayer[],
  where?: string,
): void {
  for (const [index, node] of nodes.entries()) {
    const name = where ? `${layerName(node, index)} (in ${where})` : layerName(node, index);
    if (where !== undefined && quantizable.has(node.opType) && isDefaultDomain(node.domain))
      out.push({ name, opType: node.opType, reason: reason(where) });
    for (const g of subgraphs(node)) nestedLayers(g.node, quantizable, reason, out, name);
  }
}

const f32 = (t: { type: string; data: unknown } | undefined): Float32Array | undefined =>
  t && t.type === 'float32' ? (t.data as Float32Array) : undefined;

/**
 * Folds inference BatchNormalization into the Conv before it (when the Conv output feeds only
 * that BN and its weights are constant), then lists the target's quantizable layers: Conv (2-D)
 * and Gemm with a constant weight, MatMul with a constant 2-D operand on either side (a
 * following Add of a constant [N] vector becomes its bias). Everything else stays float and,
 * when its op type is one the target quantizes, is reported in `skipped` with the reason.
 */
export function prepareModel(source: ModelProto, target: Target): PreparedModel {
  if (!source.graph) throw new TypeError('prepareModel: model has no graph');
  const quantizable = new Set(target.quantizedOps);
  const from = opsetVersion(source, '') ?? 0;
  let model: ModelProto;
  try {
    model = upgradeOpset(source);
    if (model === source) model = clone(ModelProtoSchema, source);
  } catch (e) {
    if (!isOpsetUpgradeError(e)) throw e;
    // Emulation and QDQ graphs need opset 13: the whole model stays float, and says why.
    const keptInFloat = `model kept in float: ${e.message}`;
    const skipped: SkippedLayer[] = [];
    nestedLayers(source.graph.node, quantizable, () => keptInFloat, skipped, '');
    return {
      model: clone(ModelProtoSchema, source),
      layers: [],
      skipped,
      foldedBatchNorms: 0,
      keptInFloat,
    };
  }
  const graph = model.graph!;
  const foldedBatchNorms = foldBatchNorms(model);
  const consts = constants(graph);
  const users = consumers(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const layers: LayerCandidate[] = [];
  const skipped: SkippedLayer[] = [];
  const order = topologicalOrder(graph);
  for (const [index, node] of order.entries()) {
    if (!quantizable.has(node.opType) || node.domain !== '') continue;
    // Layer name = node name (what users see in Netron and name in recipes), else op#index.
    const name = node.name !== '' ? node.name : `${node.opType}#${index}`;
    const skip = (reason: string) => skipped.push({ name, opType: node.opType, reason });
    if (node.opType === 'Conv') {
      const w = consts.value(node.input[1] ?? '');
      if (w?.type !== 'float32') {
        skip('weight is not a constant float32 tensor');
        continue;
      }
      if (w.dims.length !== 4) {
        skip(`Conv with a ${w.dims.length - 2}-D kernel (only 2-D convolutions are emulated)`);
        continue;
      }
      if (consts.has(node.input[0] ?? '')) {
        skip('input is constant');
        continue;
      }
      const autoPad = node.attribute.find((a) => a.name === 'auto_pad');
      const autoPadValue = autoPad ? new TextDecoder().decode(autoPad.s) : 'NOTSET';
      if (autoPadValue !== 'NOTSET' && autoPadValue !== 'VALID') {
        skip(`auto_pad=${autoPadValue} (explicit pads only)`);
        continue;
      }
      const b = node.input[2] ? f32(consts.value(node.input[2])) : undefined;
      if (node.input[2] && !b) {
        skip('bias is not a constant float32 tensor');
        continue;
      }
      layers.push({
        name,
        kind: 'conv',
        nodes: [node],
        input: node.input[0]!,
        output: node.output[0]!,
        weight: { dims: w.dims, data: w.data as Float32Array, axis: 0 },
        bias: b ?? new Float32Array(w.dims[0]!),
        conv: {
          strides: attrInts(node, 'strides', [1, 1]),
          pads: attrInts(node, 'pads', [0, 0, 0, 0]),
          dilations: attrInts(node, 'dilations', [1, 1]),
          group: attrInt(node, 'group', 1),
        },
      });
    } else if (node.opType === 'Gemm') {
      const w = consts.value(node.input[1] ?? '');
      if (w?.type !== 'float32' || w.dims.length !== 2) {
        skip('B is not a constant 2-D float32 tensor');
        continue;
      }
      if (attrInt(node, 'transA', 0) !== 0) {
        skip('transA=1');
        continue;
      }
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const transB = attrInt(node, 'transB', 0);
      const [d0, d1] = w.dims as [number, number];
      const n = transB ? d0 : d1;
      const k = transB ? d1 : d0;
      const data = new Float32Array(n * k);
      const src = w.data as Float32Array;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < k; j++) data[i * k + j] = alpha * src[transB ? i * k + j : j * n + i]!;
      const c = node.input[2] ? consts.value(node.input[2]) : undefined;
      if (
        node.input[2] &&
        (c?.type !== 'float32' || (c.data.length !== n && c.data.length !== 1))
      ) {
        skip('C is not a constant [N] or scalar float32');
        continue;
      }
      const bias = new Float32Array(n);
      if (c)
        for (let i = 0; i < n; i++)
          bias[i] = beta * (c.data as Float32Array)[c.data.length === 1 ? 0 : i]!;
      layers.push({
        name,
        kind: 'gemm',
        nodes: [node],
        input: node.input[0]!,
        output: node.output[0]!,
        weight: { dims: [n, k], data, axis: 0 },
        bias,
      });
    } else if (node.opType === 'MatMul') {
      const [a, b] = [node.input[0] ?? '', node.input[1] ?? ''];
      const right = consts.value(b);
      const left = consts.value(a);
      if (right && left) {
        skip('both operands constant');
        continue;
      }
      const w = right ?? left;
      if (w?.type !== 'float32') {
        skip('no constant float32 operand (activation x activation MatMul stays float)');
        continue;
      }
      if (w.dims.length !== 2) {
        skip(`constant operand has rank ${w.dims.length} (2 needed)`);
        continue;
      }
      const side = right ? 'right' : 'left';
      const channels = side === 'right' ? w.dims[1]! : w.dims[0]!;
      let output = node.output[0]!;
      const nodes = [node];
      let bias = new Float32Array(channels);
      // PyTorch exports Linear on 3-D inputs as MatMul + Add(bias): fold that Add into the layer.
      const next = users.get(output);
      if (
        side === 'right' &&
        next?.length === 1 &&
        next[0]!.opType === 'Add' &&
        !outputs.has(output)
      ) {
        const add = next[0]!;
        const other = add.input[0] === output ? add.input[1]! : add.input[0]!;
        const c = f32(consts.value(other));
        if (c && c.length === channels) {
          bias = new Float32Array(c);
          output = add.output[0]!;
          nodes.push(add);
        }
      }
      layers.push({
        name,
        kind: 'matmul',
        nodes,
        input: side === 'right' ? a : b,
        output,
        weight: { dims: w.dims, data: w.data as Float32Array, axis: side === 'right' ? 1 : 0 },
        weightSide: side,
        bias,
      });
    }
  }
  nestedLayers(
    graph.node,
    quantizable,
    (where) => `inside a subgraph of ${where} (subgraphs are left in float)`,
    skipped,
  );
  return {
    model,
    layers,
    skipped,
    foldedBatchNorms,
    ...(from < UPGRADE_OPSET ? { upgradedFrom: from } : {}),
  };
}

/** Folds Conv -> BatchNormalization pairs in place; returns how many were folded. */
function foldBatchNorms(model: ModelProto): number {
  const graph = model.graph!;
  const consts = constants(graph);
  const users = consumers(graph);
  const producerOf = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) producerOf.set(o, n);
  const outputs = new Set(graph.output.map((o) => o.name));
  const removed = new Set<NodeProto>();
  let folded = 0;
  for (const bn of graph.node) {
    if (
      bn.opType !== 'BatchNormalization' ||
      (bn.output.length > 1 && bn.output.slice(1).some((o) => o !== ''))
    )
      continue;
    const conv = producerOf.get(bn.input[0] ?? '');
    if (conv?.opType !== 'Conv' || removed.has(conv)) continue;
    const convOut = conv.output[0]!;
    if (outputs.has(convOut) || (users.get(convOut)?.length ?? 0) !== 1) continue;
    const w = consts.value(conv.input[1] ?? '');
    const b = conv.input[2] ? consts.value(conv.input[2]) : undefined;
    const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) =>
      f32(consts.value(bn.input[i] ?? '')),
    );
    if (
      w?.type !== 'float32' ||
      (conv.input[2] && b?.type !== 'float32') ||
      !scale ||
      !bias ||
      !mean ||
      !variance
    )
      continue;
    // A weight shared with another node cannot be rewritten in place.
    if ((users.get(conv.input[1]!)?.length ?? 0) !== 1) continue;
    const result = foldBatchNorm(
      { dims: w.dims, data: w.data as Float32Array, axis: 0 },
      b?.data as Float32Array | undefined,
      {
        scale,
        bias,
        mean,
        variance,
        epsilon: attrFloat(bn, 'epsilon', 1e-5),
      },
    );
    const wName = `${conv.input[1]}__bnfolded`;
    const bName = `${conv.input[1]}__bnfolded_bias`;
    graph.initializer.push(tensorToProto(wName, tensor('float32', w.dims, result.weight)));
    graph.initializer.push(
      tensorToProto(bName, tensor('float32', [result.bias.length], result.bias)),
    );
    conv.input[1] = wName;
    conv.input[2] = bName;
    conv.output[0] = bn.output[0]!;
    removed.add(bn);
    folded++;
  }
  graph.node = graph.node.filter((n) => !removed.has(n));
  pruneUnusedInitializers(model);
  return folded;
}

/**
 * Drops initializers (and their graph-input entries) and Constant nodes that no node or output
 * uses any more.
 */
export function pruneUnusedInitializers(model: ModelProto): void {
  const graph = model.graph!;
  const used = new Set<string>(graph.output.map((o) => o.name));
  const visit = (nodes: NodeProto[]) => {
    for (const n of nodes) {
      for (const i of n.input) used.add(i);
      for (const a of n.attribute) {
        if (a.g) visit(a.g.node);
        for (const g of a.graphs) visit(g.node);
      }
    }
  };
  visit(graph.node);
  // Constant nodes nobody reads any more (e.g. weights of replaced layers) go as well.
  graph.node = graph.node.filter(
    (n) => !(n.opType === 'Constant' && isDefaultDomain(n.domain) && !used.has(n.output[0] ?? '')),
  );
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  const inits = new Set(graph.initializer.map((t) => t.name));
  graph.input = graph.input.filter((i) => used.has(i.name) || !inits.has(i.name));
}
