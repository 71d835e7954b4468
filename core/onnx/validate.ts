/**
 * Structural checks run after protobuf decoding, so that everything past `decodeModel`
 * can rely on a graph, a supported IR/opset and resolvable tensor references.
 */
import { OnnxFormatError } from './errors.ts';
import type { GraphProto, ModelProto, TensorProto } from './gen/onnx_pb.ts';
import { definedNames, nodeLabel, subgraphs, topologicalOrder } from './graph.ts';
import { isDefaultDomain } from './opset.ts';
import { hasExternalData } from './tensor.ts';

/** Lowest `ir_version` accepted (IR 3 introduced opset imports; PyTorch 1.0 wrote it). */
export const MIN_IR_VERSION = 3;
/** Highest `ir_version` accepted (IR 11: ONNX 1.18; the vendored onnx.proto is IR 10). */
export const MAX_IR_VERSION = 11;
/** Lowest default-domain opset accepted. */
export const MIN_OPSET = 9;
/** Highest default-domain opset accepted. */
export const MAX_OPSET = 21;

function checkTensor(t: TensorProto, where: string): void {
  if (hasExternalData(t)) {
    throw new OnnxFormatError(
      'external-data',
      `${where}: tensor '${t.name}' keeps its data in an external file; re-export the model with the weights embedded`,
    );
  }
}

function checkGraph(graph: GraphProto, outer: ReadonlySet<string>, path: string): void {
  const where = `graph '${graph.name || path}'`;
  for (const t of graph.initializer) checkTensor(t, where);
  for (const s of graph.sparseInitializer) {
    if (s.values) checkTensor(s.values, where);
    if (s.indices) checkTensor(s.indices, where);
  }
  const defined = definedNames(graph);
  const seenOutputs = new Set<string>();
  const bound = new Set<string>();
  for (const v of graph.input) bound.add(v.name);
  for (const t of graph.initializer) bound.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values) bound.add(s.values.name);
  graph.node.forEach((n, idx) => {
    const label = nodeLabel(n, idx);
    if (n.opType === '') {
      throw new OnnxFormatError('invalid-graph', `${where}: node #${idx} has no op_type`);
    }
    for (const o of n.output) {
      if (o === '') continue;
      if (seenOutputs.has(o) || bound.has(o)) {
        throw new OnnxFormatError(
          'invalid-graph',
          `${where}: tensor '${o}' produced by ${label} is already defined`,
        );
      }
      seenOutputs.add(o);
    }
    for (const i of n.input) {
      if (i === '' || defined.has(i) || outer.has(i)) continue;
      throw new OnnxFormatError(
        'invalid-graph',
        `${where}: ${label} reads '${i}', which is not a graph input, an initializer or the output of any node`,
      );
    }
    for (const a of n.attribute) {
      if (a.t) checkTensor(a.t, `${where}, ${label}`);
      for (const t of a.tensors) checkTensor(t, `${where}, ${label}`);
    }
    const sub = subgraphs(n);
    if (sub.length > 0) {
      const scope = new Set([...outer, ...defined]);
      sub.forEach((g, k) => {
        checkGraph(g, scope, `${path}/${label}/${k}`);
      });
    }
  });
  for (const o of graph.output) {
    if (!defined.has(o.name) && !outer.has(o.name)) {
      throw new OnnxFormatError(
        'invalid-graph',
        `${where}: output '${o.name}' is not produced by any node, input or initializer`,
      );
    }
  }
  topologicalOrder(graph);
}

/**
 * Checks a decoded model: it has a graph, `ir_version` in
 * [{@link MIN_IR_VERSION}, {@link MAX_IR_VERSION}], a default-domain opset import in
 * [{@link MIN_OPSET}, {@link MAX_OPSET}], every node input (also inside subgraphs) resolves
 * to a graph input, an initializer, a node output, an outer-scope name or is `''`, every
 * tensor is produced once, the graph is acyclic and no tensor uses external data.
 * @throws OnnxFormatError with code `not-onnx`, `unsupported-ir`, `unsupported-opset`,
 *   `invalid-graph` or `external-data`.
 */
export function validateModel(model: ModelProto): void {
  if (model.irVersion === 0n && model.graph === undefined && model.opsetImport.length === 0) {
    throw new OnnxFormatError(
      'not-onnx',
      'not an ONNX model: no ir_version, opset_import or graph found',
    );
  }
  const ir = model.irVersion;
  if (ir < BigInt(MIN_IR_VERSION) || ir > BigInt(MAX_IR_VERSION)) {
    throw new OnnxFormatError(
      'unsupported-ir',
      ir === 0n
        ? 'the model has no ir_version'
        : `ONNX IR version ${ir} is not supported (supported: ${MIN_IR_VERSION} to ${MAX_IR_VERSION})`,
    );
  }
  const defaults = model.opsetImport.filter((o) => isDefaultDomain(o.domain));
  if (defaults.length === 0) {
    const listed = model.opsetImport.map((o) => `${o.domain}:${o.version}`).join(', ');
    throw new OnnxFormatError(
      'unsupported-opset',
      `the model imports no default-domain (ai.onnx) opset${listed ? ` (only ${listed})` : ''}`,
    );
  }
  for (const o of defaults) {
    if (o.version < BigInt(MIN_OPSET) || o.version > BigInt(MAX_OPSET)) {
      throw new OnnxFormatError(
        'unsupported-opset',
        `opset ${o.version} is not supported (supported: ${MIN_OPSET} to ${MAX_OPSET}); re-export with e.g. torch.onnx.export(..., opset_version=17)`,
      );
    }
  }
  if (model.graph === undefined) {
    throw new OnnxFormatError('invalid-graph', 'the model has no graph');
  }
  checkGraph(model.graph, new Set(), 'main');
}
