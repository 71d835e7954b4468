/**
 * Graph structure: subgraphs, producers/consumers and topological order.
 * Nodes that own subgraphs (If/Loop/Scan: attributes of type GRAPH or GRAPHS) are treated
 * as consuming every outer-scope name their subgraphs use ("implicit inputs").
 */
import { OnnxFormatError } from './errors.ts';
import type { GraphProto, NodeProto } from './gen/onnx_pb.ts';

/** Subgraphs held by a node's attributes (`g` and `graphs`), e.g. If branches, Loop body. */
export function subgraphs(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g !== undefined) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
}

/** Names a graph defines itself: inputs, initializers (dense and sparse) and node outputs. */
export function definedNames(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const v of graph.input) names.add(v.name);
  for (const t of graph.initializer) names.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values) names.add(s.values.name);
  for (const n of graph.node) for (const o of n.output) if (o !== '') names.add(o);
  return names;
}

/** Names a (sub)graph uses but does not define: they come from the enclosing scope. */
export function freeNames(graph: GraphProto): Set<string> {
  const defined = definedNames(graph);
  const free = new Set<string>();
  const use = (name: string) => {
    if (name !== '' && !defined.has(name)) free.add(name);
  };
  for (const n of graph.node) {
    for (const i of n.input) use(i);
    for (const g of subgraphs(n)) for (const name of freeNames(g)) use(name);
  }
  for (const o of graph.output) use(o.name);
  return free;
}

/**
 * Outer-scope names a node's subgraphs read (empty for nodes without subgraphs). They are
 * dependencies of the node just like its explicit inputs.
 */
export function implicitInputs(node: NodeProto): string[] {
  const names = new Set<string>();
  for (const g of subgraphs(node)) for (const name of freeNames(g)) names.add(name);
  for (const i of node.input) names.delete(i);
  return [...names];
}

/** Explicit (non-empty) inputs of a node followed by its implicit subgraph inputs. */
export function nodeInputs(node: NodeProto): string[] {
  const explicit = node.input.filter((i) => i !== '');
  return node.attribute.some((a) => a.g !== undefined || a.graphs.length > 0)
    ? [...new Set([...explicit, ...implicitInputs(node)])]
    : explicit;
}

/** Short readable label of a node for messages: `Conv 'conv1'` or `Conv #3`. */
export function nodeLabel(node: NodeProto, index?: number): string {
  if (node.name) return `${node.opType} '${node.name}'`;
  return index === undefined ? node.opType : `${node.opType} #${index}`;
}

/**
 * Map from tensor name to the node of this graph producing it (graph inputs and
 * initializers have no producer).
 * @throws OnnxFormatError `invalid-graph` when two nodes produce the same name.
 */
export function producers(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  graph.node.forEach((n, idx) => {
    for (const o of n.output) {
      if (o === '') continue;
      const prev = map.get(o);
      if (prev !== undefined) {
        throw new OnnxFormatError(
          'invalid-graph',
          `tensor '${o}' is produced twice (by ${nodeLabel(prev)} and ${nodeLabel(n, idx)})`,
        );
      }
      map.set(o, n);
    }
  });
  return map;
}

/**
 * Map from tensor name to the nodes of this graph reading it, in graph order. Includes
 * nodes that read it only from inside a subgraph (implicit inputs). A node appears once per
 * tensor even if it reads the tensor several times.
 */
export function consumers(graph: GraphProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const name of nodeInputs(n)) {
      const list = map.get(name);
      if (list === undefined) map.set(name, [n]);
      else list.push(n);
    }
  }
  return map;
}

/** Binary min-heap of node indices, so ties keep the original node order. */
class IndexHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(v: number): void {
    const a = this.items;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]! < a[l]! ? r : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/**
 * Nodes of `graph` in an order where every node comes after the producers of its inputs
 * (including outer-scope names used by its subgraphs). Stable: a graph that is already
 * sorted comes back in its own order. Names no node produces (inputs, initializers, outer
 * scope) impose no constraint.
 * @throws OnnxFormatError `invalid-graph` on a cycle (the message names nodes on it) or
 *   when two nodes produce the same tensor.
 */
export function topologicalOrder(graph: GraphProto): NodeProto[] {
  const nodes = graph.node;
  const producerIndex = new Map<string, number>();
  const prod = producers(graph);
  nodes.forEach((n, idx) => {
    for (const o of n.output) if (o !== '' && prod.get(o) === n) producerIndex.set(o, idx);
  });
  const pending = new Array<number>(nodes.length).fill(0);
  const dependents: number[][] = nodes.map(() => []);
  nodes.forEach((n, idx) => {
    for (const name of nodeInputs(n)) {
      const p = producerIndex.get(name);
      if (p === undefined) continue;
      pending[idx]!++;
      dependents[p]!.push(idx);
    }
  });
  const ready = new IndexHeap();
  pending.forEach((c, idx) => {
    if (c === 0) ready.push(idx);
  });
  const order: NodeProto[] = [];
  while (ready.size > 0) {
    const idx = ready.pop();
    order.push(nodes[idx]!);
    for (const d of dependents[idx]!) {
      if (--pending[d]! === 0) ready.push(d);
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes
      .map((n, idx) => ({ n, idx }))
      .filter(({ idx }) => pending[idx]! > 0)
      .slice(0, 5)
      .map(({ n, idx }) => nodeLabel(n, idx));
    throw new OnnxFormatError(
      'invalid-graph',
      `graph '${graph.name}' has a cycle: ${nodes.length - order.length} node(s) depend on each other, e.g. ${stuck.join(', ')}`,
    );
  }
  return order;
}
