import { attrInt, attrTensor } from '../onnx/attributes.ts';
import { constantNodeTensor } from '../onnx/constants.ts';
import type { GraphProto, NodeProto } from '../onnx/gen/onnx_pb.ts';
import { subgraphs, topologicalOrder } from '../onnx/graph.ts';
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

/** Ops producing sequences (not tensors): their outputs get no element type. */
const SEQUENCE_OPS = new Set([
  'SequenceConstruct',
  'SequenceEmpty',
  'SequenceInsert',
  'SequenceErase',
  'SplitToSequence',
  'Optional',
]);
/** Ops whose later outputs are int64 indices (MaxPool indices, Unique indices/counts, TopK). */
const INT64_LATER_OUTPUTS = new Set(['MaxPool', 'Unique', 'TopK']);

/** Element type of output `k` of a node holding subgraphs (If/Loop/Scan), from the body. */
function subgraphOutputType(
  node: NodeProto,
  k: number,
  outer: ReadonlyMap<string, number>,
): number | undefined {
  const bodies = subgraphs(node);
  // Loop outputs skip the body's first output (the condition); If/Scan map one to one.
  const index = node.opType === 'Loop' ? k + 1 : k;
  for (const g of bodies) {
    const out = g.output[index];
    if (!out) continue;
    const t = elementTypes(g, outer).get(out.name);
    if (t !== undefined) return t;
  }
  return undefined;
}

/**
 * Element type of every tensor of a graph (types of subgraph-internal tensors are only used
 * to type the outputs of If/Loop/Scan), from declared types where the model has them and
 * otherwise propagated through the nodes: Shape/ArgMax/... give int64, comparisons give bool,
 * Cast gives its `to`, Constant/ConstantOfShape their value's type, If/Loop/Scan the types of
 * their bodies' outputs, later outputs of MaxPool/TopK/Unique int64, Dropout's mask bool,
 * sequences nothing, everything else the type of its first typed input. `outer` holds the
 * types of enclosing-scope tensors (for subgraphs).
 */
export function elementTypes(
  graph: GraphProto,
  outer: ReadonlyMap<string, number> = new Map(),
): Map<string, number> {
  const types = new Map<string, number>(outer);
  for (const [name, info] of tensorInfos(graph)) if (info.elemType) types.set(name, info.elemType);
  for (const node of topologicalOrder(graph)) {
    const op = node.opType;
    const dtype = attrInt(node, 'dtype');
    let out: number | undefined;
    if (SEQUENCE_OPS.has(op)) out = undefined;
    else if (BOOL_OPS.has(op)) out = DT.BOOL;
    else if (INT64_OPS.has(op)) out = DT.INT64;
    else if (op === 'Cast') out = attrInt(node, 'to');
    else if (op === 'CastLike') out = types.get(node.input[1] ?? '');
    else if (op === 'Constant') out = constantNodeTensor(node)?.dataType;
    else if (op === 'ConstantOfShape') out = attrTensor(node, 'value')?.dataType ?? DT.FLOAT;
    else if (op === 'QuantizeLinear') out = types.get(node.input[2] ?? '') ?? DT.UINT8;
    else if (op === 'DequantizeLinear') out = DT.FLOAT;
    else if (op === 'DynamicQuantizeLinear') out = DT.UINT8;
    else if (op === 'MatMulInteger' || op === 'ConvInteger') out = DT.INT32;
    else if (op === 'QLinearConv' || op === 'QLinearMatMul') out = types.get(node.input[7] ?? '');
    else if (op === 'Where') out = types.get(node.input[1] ?? '');
    else if (op === 'OneHot') out = types.get(node.input[2] ?? '');
    else if (dtype !== undefined) out = dtype;
    else if (op === 'RandomNormal' || op === 'RandomUniform') out = DT.FLOAT;
    else if (op === 'Multinomial') out = DT.INT32;
    else if (subgraphs(node).length === 0) {
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
      let t = out;
      if (subgraphs(node).length > 0) t = subgraphOutputType(node, k, types);
      else if (k > 0 && INT64_LATER_OUTPUTS.has(op)) t = DT.INT64;
      else if (k === 1 && op === 'Dropout') t = DT.BOOL;
      else if (k === 1 && op === 'DynamicQuantizeLinear') t = DT.FLOAT;
      if (t !== undefined) types.set(o, t);
    }
  }
  return types;
}
