/**
 * Shared-prefix execution of one-layer models (the sensitivity and search phases).
 *
 * A one-layer model (`buildEmulationModel(prepared, [layer], target)`) differs from the all-float
 * reference (`buildEmulationModel(prepared, [], target)`) only from that layer on: every node
 * upstream of it is the same node, reading the same tensors, with the same weights. Running the
 * whole one-layer model for each layer computes that upstream part again and again. Here it is
 * computed once:
 *
 * - {@link suffixAgainst} finds the nodes of a model that the reference computes identically
 *   (same node, all inputs computed identically, same initializer bytes: by induction in
 *   topological order) and returns the rest as a model of its own, the *suffix*, whose graph
 *   inputs are the *cut*: the identical tensors the rest reads.
 * - {@link PrefixRunner} walks the reference forward over a fixed set of input batches, running
 *   each time only the segment of the reference between the tensors it holds and the next cut
 *   ({@link segmentOf}), and keeps the values of the latest cut.
 *
 * Bit-exactness: sessions run with graph optimisation disabled (core/runtime), so each node runs
 * the same kernel on the same input bytes in the same batches whether its inputs come from an
 * earlier node or from a graph input; a suffix's outputs are the one-layer model's outputs, bit
 * for bit. The sensitivity tests compare both ways on real zoo models.
 */
import { equals } from '@bufbuild/protobuf';
import { makeTensorValueInfo } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';
import {
  type GraphProto,
  type ModelProto,
  type NodeProto,
  NodeProtoSchema,
  type TensorProto,
  TensorProtoSchema,
} from '../onnx/gen/onnx_pb.ts';
import { nodeInputs, producers, topologicalOrder } from '../onnx/graph.ts';
import { shallowCopy } from '../onnx/outputs.ts';
import { elementTypes } from '../quantize/element-types.ts';
import { createSession, type GraphOptimizationLevel } from '../runtime/index.ts';
import type { TensorData } from '../tensor/index.ts';

/** What a model computes beyond what a reference model computes identically. */
export interface ModelSuffix {
  /**
   * The model's nodes that the reference does not compute identically, as a model whose graph
   * inputs are {@link cut} and whose outputs are the original outputs not in {@link shared}.
   */
  model: ModelProto;
  /** Tensors both models compute identically that the suffix reads, in order of first use. */
  cut: string[];
  /** Graph outputs the reference computes identically (the suffix does not output them). */
  shared: string[];
  /** Nodes in the suffix, and in the whole model. */
  nodes: { suffix: number; total: number };
}

/** Per reference model: its nodes by output name, initializers, inputs, element types (computed once). */
interface ReferenceIndex {
  /** Nodes in topological order. */
  order: NodeProto[];
  producer: Map<string, NodeProto>;
  initializers: Map<string, TensorProto>;
  inputs: Set<string>;
  types: Map<string, number>;
}
const indexes = new WeakMap<ModelProto, ReferenceIndex>();

function referenceIndex(reference: ModelProto): ReferenceIndex {
  let ix = indexes.get(reference);
  if (ix) return ix;
  const g = graphOf(reference);
  ix = {
    order: topologicalOrder(g),
    producer: producers(g),
    initializers: new Map(g.initializer.map((t) => [t.name, t])),
    inputs: new Set(g.input.map((i) => i.name)),
    types: elementTypes(g),
  };
  indexes.set(reference, ix);
  return ix;
}

function graphOf(model: ModelProto): GraphProto {
  const g = model.graph;
  if (g === undefined) throw new RangeError('shared prefix: the model has no graph');
  return g;
}

/** A copy of `model` with its graph restricted to `nodes`, fed by `inputs`, giving `outputs`. */
function subModel(
  model: ModelProto,
  nodes: readonly NodeProto[],
  inputs: readonly string[],
  outputs: readonly string[],
  types: ReadonlyMap<string, number>,
): ModelProto {
  const g = graphOf(model);
  const used = new Set(nodes.flatMap((n) => nodeInputs(n)));
  const declared = new Map(g.output.map((o) => [o.name, o]));
  const produced = new Set(nodes.flatMap((n) => n.output));
  const info = (name: string) => {
    const t = types.get(name);
    if (t === undefined)
      throw new RangeError(`shared prefix: no element type for tensor '${name}'`);
    return makeTensorValueInfo(name, t);
  };
  const graph = shallowCopy(g, {
    node: [...nodes],
    input: inputs.map(info),
    output: outputs.map((o) => declared.get(o) ?? info(o)),
    initializer: g.initializer.filter((t) => used.has(t.name)),
    sparseInitializer: [],
    valueInfo: g.valueInfo.filter((v) => produced.has(v.name) && !outputs.includes(v.name)),
  });
  return shallowCopy(model, { graph });
}

/**
 * Splits `model` against `reference`: the nodes the reference computes identically stay
 * behind, the rest becomes {@link ModelSuffix.model}. A node is computed identically when the
 * reference holds the same node (same operator, attributes, input and output names), each of its
 * inputs is a graph input of both, an identical node's output, or an initializer with the same
 * bytes in both. Nothing else is assumed about how the two models were built.
 */
export function suffixAgainst(reference: ModelProto, model: ModelProto): ModelSuffix {
  const ix = referenceIndex(reference);
  const g = graphOf(model);
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const sameInitializer = (name: string): boolean => {
    const theirs = ix.initializers.get(name);
    return theirs !== undefined && equals(TensorProtoSchema, theirs, inits.get(name)!);
  };
  const identical = new Set(
    g.input.filter((i) => !inits.has(i.name) && ix.inputs.has(i.name)).map((i) => i.name),
  );
  const initOk = new Map<string, boolean>();
  const changed: NodeProto[] = [];
  for (const node of topologicalOrder(g)) {
    const theirs = node.output[0] ? ix.producer.get(node.output[0]) : undefined;
    const same =
      theirs !== undefined &&
      equals(NodeProtoSchema, theirs, node) &&
      nodeInputs(node).every((i) => {
        if (identical.has(i)) return true;
        if (!inits.has(i)) return false;
        if (!initOk.has(i)) initOk.set(i, sameInitializer(i));
        return initOk.get(i)!;
      });
    if (!same) changed.push(node);
    else for (const o of node.output) if (o !== '') identical.add(o);
  }
  const cut: string[] = [];
  const seen = new Set<string>();
  for (const node of changed)
    for (const i of nodeInputs(node))
      if (identical.has(i) && !seen.has(i)) {
        seen.add(i);
        cut.push(i);
      }
  const shared = g.output.filter((o) => identical.has(o.name)).map((o) => o.name);
  const outputs = g.output.filter((o) => !identical.has(o.name)).map((o) => o.name);
  return {
    model: subModel(model, changed, cut, outputs, elementTypes(g)),
    cut,
    shared,
    nodes: { suffix: changed.length, total: g.node.length },
  };
}

/**
 * The part of `model` that computes `outputs` from the tensors in `available` (and the graph
 * inputs, initializers and constants): every node on a path from those to an output, as a model
 * whose graph inputs are the available tensors and graph inputs it reads.
 */
export function segmentOf(
  model: ModelProto,
  outputs: readonly string[],
  available: ReadonlySet<string>,
): { model: ModelProto; inputs: string[] } {
  const ix = referenceIndex(model);
  const include = new Set<NodeProto>();
  const inputs = new Set<string>();
  const stack = [...outputs];
  const visited = new Set<string>();
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (visited.has(name)) continue;
    visited.add(name);
    if (available.has(name) || (ix.inputs.has(name) && !ix.initializers.has(name))) {
      inputs.add(name);
      continue;
    }
    if (ix.initializers.has(name)) continue;
    const p = ix.producer.get(name);
    if (p === undefined)
      throw new RangeError(`shared prefix: tensor '${name}' is neither computed nor given`);
    if (include.has(p)) continue;
    include.add(p);
    stack.push(...nodeInputs(p));
  }
  const nodes = ix.order.filter((n) => include.has(n));
  const ordered = [...inputs].sort();
  return { model: subModel(model, nodes, ordered, outputs, ix.types), inputs: ordered };
}

/** Feeds for a batch: the named tensors, in the model's declared input names. */
type Batch = Record<string, TensorData>;

/** Runs a model over every batch with the given per-batch feeds; returns the per-batch outputs. */
export async function runBatches(
  model: ModelProto,
  feeds: readonly Batch[],
  fetches?: readonly string[],
  graphOptimizationLevel: GraphOptimizationLevel = 'disabled',
): Promise<Batch[]> {
  const session = await createSession(encodeModel(model), { graphOptimizationLevel });
  try {
    const out: Batch[] = [];
    for (const f of feeds) out.push(await session.run(f, fetches));
    return out;
  } finally {
    await session.release();
  }
}

/**
 * Walks a reference model forward over fixed input batches. {@link values} of a tensor runs the
 * segment from the held tensors to it, then holds the reference's live frontier there: every
 * tensor computed so far that a later node or a graph output still reads. Requests in
 * topological order therefore run each reference node exactly once; any order is correct (a
 * segment reaches back to the graph inputs when the held tensors do not suffice).
 */
export class PrefixRunner {
  private held = new Map<string, TensorData[]>();
  private readonly inputNames: Set<string>;
  /** Position of each tensor's producer in topological order (-1: graph input). */
  private readonly position = new Map<string, number>();
  /** Position of each tensor's last reader (graph outputs: past the end). */
  private readonly lastUse = new Map<string, number>();
  /** Reference nodes executed so far, summed over segments (a cost measure for tests). */
  nodesRun = 0;

  constructor(
    private readonly reference: ModelProto,
    private readonly batches: readonly Batch[],
  ) {
    const ix = referenceIndex(reference);
    this.inputNames = new Set([...ix.inputs].filter((n) => !ix.initializers.has(n)));
    const g = graphOf(reference);
    for (const n of this.inputNames) this.position.set(n, -1);
    ix.order.forEach((node, k) => {
      for (const o of node.output) if (o !== '') this.position.set(o, k);
      for (const i of nodeInputs(node)) this.lastUse.set(i, k);
    });
    for (const o of g.output) this.lastUse.set(o.name, ix.order.length);
  }

  /** The values of `names` per batch. */
  async values(names: readonly string[]): Promise<Batch[]> {
    const at = Math.max(-1, ...names.map((n) => this.position.get(n) ?? -1));
    const frontier = [...this.position.entries()]
      .filter(([t, p]) => p <= at && (this.lastUse.get(t) ?? -1) > at && !this.inputNames.has(t))
      .map(([t]) => t);
    const keep = [...new Set([...frontier, ...names.filter((n) => !this.inputNames.has(n))])];
    const missing = keep.filter((n) => !this.held.has(n));
    let computed: Batch[] = [];
    if (missing.length > 0) {
      const seg = segmentOf(this.reference, missing, new Set(this.held.keys()));
      this.nodesRun += graphOf(seg.model).node.length;
      computed = await runBatches(
        seg.model,
        this.batches.map((_, b) => this.feed(seg.inputs, b)),
      );
    }
    const value = (n: string, b: number) => computed[b]?.[n] ?? this.lookup(n, b);
    const out = this.batches.map((_, b) => Object.fromEntries(names.map((n) => [n, value(n, b)])));
    this.held = new Map(keep.map((n) => [n, this.batches.map((_, b) => value(n, b))]));
    return out;
  }

  /** Feeds of `names` for batch `b` (from the held tensors or the input batch). */
  private feed(names: readonly string[], b: number): Batch {
    return Object.fromEntries(names.map((n) => [n, this.lookup(n, b)]));
  }

  private lookup(name: string, b: number): TensorData {
    const v = this.held.get(name)?.[b] ?? this.batches[b]![name];
    if (v === undefined) throw new RangeError(`shared prefix: no value for '${name}'`);
    return v;
  }
}
