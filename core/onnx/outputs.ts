/** Exposing intermediate tensors as graph outputs (activation capture for calibration). */

import { makeTensorValueInfo } from './builder.ts';
import { OnnxFormatError } from './errors.ts';
import { type GraphProto, type ModelProto, TensorProto_DataType } from './gen/onnx_pb.ts';
import { definedNames } from './graph.ts';
import { tensorInfos } from './shapes.ts';

/**
 * Shallow copy of a protobuf-es message that keeps proto2 field presence (its prototype), with
 * `patch` applied. The copy shares every unpatched field with `m`.
 */
export function shallowCopy<T extends object>(m: T, patch: Partial<T>): T {
  return Object.assign(Object.create(Object.getPrototypeOf(m)) as T, m, patch);
}

/**
 * A copy of `model` whose graph also outputs `tensorNames` (names already outputs are kept
 * once, order preserved). Element type and shape come from what the graph declares
 * (value_info, inputs, initializers, ...); when nothing is known the output is declared
 * FLOAT with unknown shape. The copy shares nodes and weights with `model`: treat both
 * as read-only.
 * @throws OnnxFormatError `invalid-graph` when the model has no graph or a name is not a
 *   tensor of the main graph.
 * @example encodeModel(withOutputs(model, ['/conv1/Conv_output_0']))
 */
export function withOutputs(model: ModelProto, tensorNames: readonly string[]): ModelProto {
  const graph = model.graph;
  if (graph === undefined) throw new OnnxFormatError('invalid-graph', 'the model has no graph');
  const defined = definedNames(graph);
  const infos = tensorInfos(graph);
  const present = new Set(graph.output.map((o) => o.name));
  const added = [];
  for (const name of tensorNames) {
    if (present.has(name)) continue;
    if (!defined.has(name)) {
      throw new OnnxFormatError(
        'invalid-graph',
        `cannot output '${name}': no node, input or initializer of graph '${graph.name}' has that name`,
      );
    }
    const info = infos.get(name);
    added.push(makeTensorValueInfo(name, info?.elemType ?? TensorProto_DataType.FLOAT, info?.dims));
    present.add(name);
  }
  const newGraph: GraphProto = shallowCopy(graph, { output: [...graph.output, ...added] });
  return shallowCopy(model, { graph: newGraph });
}
