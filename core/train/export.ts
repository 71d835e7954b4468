/**
 * Writes trained (BN-folded) layer weights back into the reference ONNX graph: same nodes, same
 * initializer names and shapes; only weight, bias and BatchNorm running-mean values change.
 *
 * A Conv whose BatchNormalization the quantizer folds (w_f = w * k, b_f = (b - mean) * k + beta,
 * k = gamma / sqrt(var + eps), core/quantize/weights.ts) gets w = w_f / k, and the folded bias is
 * restored through the BN's running mean: mean = b - (b_f - beta) / k (b = the conv bias, 0 when
 * the conv has none). Re-folding gives the trained values back up to float32 rounding. The mean
 * is used (not beta) because PyTorch exports may share equal betas between BNs through Identity.
 */
import { clone } from '@bufbuild/protobuf';
import { attrFloat, attrInt } from '../onnx/attributes.ts';
import { type ModelProto, ModelProtoSchema, type NodeProto } from '../onnx/gen/onnx_pb.ts';
import { tensorFromProto, tensorToProto } from '../onnx/tensor.ts';
import type { PreparedModel } from '../quantize/prepare.ts';

/** Trained weights by layer name, in the candidates' canonical layout. */
export type TrainedWeights = ReadonlyMap<string, { weight: Float32Array; bias: Float32Array }>;

const FOLDED_SUFFIX = '__bnfolded';

/** Returns a copy of `reference` with the trained weights written into its initializers. */
export function writeTrainedWeights(
  reference: ModelProto,
  prepared: PreparedModel,
  trained: TrainedWeights,
): ModelProto {
  const model = clone(ModelProtoSchema, reference);
  const graph = model.graph!;
  const inits = new Map(graph.initializer.map((t, i) => [t.name, i]));
  const uses = new Map<string, number>();
  for (const n of graph.node) for (const i of n.input) uses.set(i, (uses.get(i) ?? 0) + 1);
  const identity = new Map<string, string>();
  for (const n of graph.node)
    if (n.opType === 'Identity' && n.input[0] && n.output[0]) identity.set(n.output[0], n.input[0]);
  const read = (input: string): Float32Array => {
    let name = input;
    for (let hops = 0; hops < 64 && !inits.has(name) && identity.has(name); hops++)
      name = identity.get(name)!;
    const i = inits.get(name);
    if (i === undefined) throw new RangeError(`QAT export: '${name}' is not an initializer`);
    const t = tensorFromProto(graph.initializer[i]!);
    if (t.type !== 'float32') throw new RangeError(`QAT export: '${name}' is not float32`);
    return t.data as Float32Array;
  };
  const write = (name: string, data: Float32Array) => {
    const i = inits.get(name);
    if (i === undefined) throw new RangeError(`QAT export: '${name}' is not an initializer`);
    if ((uses.get(name) ?? 0) > 1)
      throw new RangeError(`QAT export: '${name}' is shared by several nodes; not rewritten`);
    const old = graph.initializer[i]!;
    const dims = old.dims.map(Number);
    if (dims.reduce((p, d) => p * d, 1) !== data.length)
      throw new RangeError(`QAT export: '${name}' size changed`);
    graph.initializer[i] = tensorToProto(name, { type: 'float32', dims, data });
  };
  const byName = new Map<string, NodeProto>();
  for (const [i, n] of graph.node.entries())
    byName.set(n.name !== '' ? n.name : `${n.opType}#${i}`, n);
  const consumers = new Map<string, NodeProto[]>();
  for (const n of graph.node)
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  for (const c of prepared.layers) {
    const t = trained.get(c.name);
    if (!t) continue;
    const node = byName.get(c.nodes[0]!.name);
    if (!node || node.opType !== c.nodes[0]!.opType)
      throw new RangeError(`QAT export: node '${c.name}' not found in the reference graph`);
    if (c.kind === 'conv') {
      const wName = node.input[1]!;
      const folded = c.nodes[0]!.input[1] === `${wName}${FOLDED_SUFFIX}`;
      if (!folded) {
        write(wName, t.weight);
        if (node.input[2]) write(node.input[2], t.bias);
        else if (t.bias.some((v) => v !== 0))
          throw new RangeError(`QAT export: conv '${c.name}' has no bias input to hold its bias`);
        continue;
      }
      const bn = consumers.get(node.output[0]!)?.[0];
      if (bn?.opType !== 'BatchNormalization')
        throw new RangeError(`QAT export: no BatchNormalization after '${c.name}'`);
      const [gamma, beta, , variance] = [1, 2, 3, 4].map((i) => read(bn.input[i]!));
      const eps = attrFloat(bn, 'epsilon', 1e-5);
      const channels = t.bias.length;
      const k = Float64Array.from(
        { length: channels },
        (_, ch) => gamma![ch]! / Math.sqrt(variance![ch]! + eps),
      );
      const inner = t.weight.length / channels;
      const w = new Float32Array(t.weight.length);
      for (let i = 0; i < w.length; i++) w[i] = t.weight[i]! / k[Math.floor(i / inner)]!;
      write(wName, w);
      const convBias = node.input[2] ? read(node.input[2]) : new Float32Array(channels);
      const mean = new Float32Array(channels);
      for (let ch = 0; ch < channels; ch++)
        mean[ch] = convBias[ch]! - (t.bias[ch]! - beta![ch]!) / k[ch]!;
      write(bn.input[3]!, mean);
    } else if (c.kind === 'gemm') {
      const alpha = attrFloat(node, 'alpha', 1);
      const betaG = attrFloat(node, 'beta', 1);
      const transB = attrInt(node, 'transB', 0);
      const [n, kk] = c.weight.dims as [number, number];
      const w = new Float32Array(n * kk);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < kk; j++)
          w[transB ? i * kk + j : j * n + i] = t.weight[i * kk + j]! / alpha;
      write(node.input[1]!, w);
      if (node.input[2]) {
        const cur = read(node.input[2]);
        if (cur.length === 1 && n > 1)
          throw new RangeError(`QAT export: gemm '${c.name}' has a scalar C`);
        write(
          node.input[2],
          Float32Array.from(t.bias, (v) => v / betaG),
        );
      }
    } else {
      const wName = c.weightSide === 'left' ? node.input[0]! : node.input[1]!;
      write(wName, t.weight);
      const add = c.nodes[1];
      if (add) {
        const addNode = byName.get(add.name);
        const other = addNode?.input.find((i) => i !== node.output[0]);
        if (other) write(other, t.bias);
      }
    }
  }
  return model;
}

/**
 * True when two models have the same graph: the same nodes (op, domain, inputs, outputs,
 * attributes) in the same order, the same graph inputs and outputs, and initializers with the
 * same names, element types and shapes. Values may differ.
 */
export function sameGraph(a: ModelProto, b: ModelProto): { same: boolean; why?: string } {
  const ga = a.graph!;
  const gb = b.graph!;
  if (ga.node.length !== gb.node.length) return { same: false, why: 'node count differs' };
  for (const [i, na] of ga.node.entries()) {
    const nb = gb.node[i]!;
    const sig = (n: NodeProto) =>
      JSON.stringify([
        n.opType,
        n.domain,
        n.input,
        n.output,
        n.attribute.map((x) => [
          x.name,
          x.type,
          x.i.toString(),
          x.f,
          x.ints.map(String),
          x.floats,
          [...x.s],
        ]),
      ]);
    if (sig(na) !== sig(nb)) return { same: false, why: `node ${i} (${na.name}) differs` };
  }
  const io = (g: typeof ga) =>
    JSON.stringify([g.input.map((x) => x.name), g.output.map((x) => x.name)]);
  if (io(ga) !== io(gb)) return { same: false, why: 'graph inputs or outputs differ' };
  const inits = (g: typeof ga) =>
    JSON.stringify(
      g.initializer
        .map((t) => [t.name, t.dataType, t.dims.map(String)])
        .sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
  if (inits(ga) !== inits(gb))
    return { same: false, why: 'initializer names, types or shapes differ' };
  return { same: true };
}
