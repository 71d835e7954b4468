import { attrInt, attrTensor } from '../onnx/attributes.ts';
import type { GraphProto } from '../onnx/gen/onnx_pb.ts';
import { topologicalOrder } from '../onnx/graph.ts';
import { tensorInfos } from '../onnx/shapes.ts';

/** ONNX TensorProto.DataType numbers used here. */
export const DT = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

const BOOL_OPS = new Set([
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
]);
const INT64_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'NonMaxSuppression']);

/**
 * Element type of every tensor of a graph (outer graph only), from declared types where the
 * model has them and otherwise propagated through the nodes: Shape/ArgMax/... give int64,
 * comparisons give bool, Cast gives its `to`, ConstantOfShape/Constant their value's type,
 * everything else the type of its first typed input. Subgraph internals are not typed.
 */
export function elementTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  for (const [name, info] of tensorInfos(graph)) if (info.elemType) types.set(name, info.elemType);
  for (const node of topologicalOrder(graph)) {
    let out: number | undefined;
    if (BOOL_OPS.has(node.opType)) out = DT.BOOL;
    else if (INT64_OPS.has(node.opType)) out = DT.INT64;
    else if (node.opType === 'Cast') out = attrInt(node, 'to');
    else if (node.opType === 'Constant' || node.opType === 'ConstantOfShape')
      out = attrTensor(node, 'value')?.dataType ?? DT.FLOAT;
    else if (node.opType === 'QuantizeLinear') out = types.get(node.input[2] ?? '') ?? DT.UINT8;
    else if (node.opType === 'DequantizeLinear') out = DT.FLOAT;
    else if (node.opType === 'Where') out = types.get(node.input[1] ?? '');
    else {
      for (const i of node.input) {
        const t = i === '' ? undefined : types.get(i);
        if (t !== undefined) {
          out = t;
          break;
        }
      }
    }
    for (const [k, o] of node.output.entries()) {
      if (o === '' || types.has(o)) continue;
      // Multi-output ops whose later outputs differ (e.g. TopK indices) are int64.
      const t = node.opType === 'TopK' && k === 1 ? DT.INT64 : out;
      if (t !== undefined) types.set(o, t);
    }
  }
  return types;
}
