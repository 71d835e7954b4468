/**
 * Opset upgrade of the default ONNX domain to opset 13 (what the quantizer's emulation and QDQ
 * graphs need: Round, Clip with inputs, per-axis DequantizeLinear), for models exported at
 * opsets 9 to 12. Operators whose signature or semantics changed between 9 and 13 are
 * rewritten; operators known to be unchanged are kept; anything else raises an
 * {@link OpsetUpgradeError} naming the operator (the caller keeps such a model in float).
 *
 * Rewrites (the version a node has is the latest of its op <= the model's opset):
 * - Clip < 11: `min`/`max` attributes -> scalar float inputs.
 * - Pad < 11: `pads`/`value` attributes -> inputs.
 * - Upsample (7..10) and Resize-10 -> Resize-13 with `coordinate_transformation_mode=asymmetric`
 *   and, for nearest, `nearest_mode=floor` (`ceil` when every constant scale is < 1): what
 *   onnxruntime computes for the old operators.
 * - Slice < 10: `starts`/`ends`/`axes` attributes -> int64 inputs.
 * - Split, Squeeze, Unsqueeze, ReduceSum < 13: `split`/`axes` attribute -> int64 input.
 * - TopK < 10: `k` attribute -> int64 input. Scatter -> ScatterElements.
 * - Dropout < 12: attributes dropped (inference: identity either way).
 * - BatchNormalization: legacy `spatial`/`is_test` attributes dropped (spatial=0 is refused).
 * - Softmax, LogSoftmax, Hardmax < 13 (coerce to 2-D at `axis`): kept as is when `axis` is the
 *   last axis, otherwise Flatten(axis) -> op(axis=-1) -> Reshape(Shape(x)).
 * Subgraphs (If/Loop/Scan bodies) are upgraded too. Nodes of other domains are left alone.
 */
import { clone, create } from '@bufbuild/protobuf';
import { attrFloat, attrInt, attrString, getAttribute } from './attributes.ts';
import { makeAttrInt, makeAttrString, makeNode } from './builder.ts';
import { constantLookup } from './constants.ts';
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  OperatorSetIdProtoSchema,
} from './gen/onnx_pb.ts';
import { isDefaultDomain, opsetVersion } from './opset.ts';
import { tensorInfos } from './shapes.ts';
import { tensorToProto } from './tensor.ts';

/** The opset {@link upgradeOpset} raises models to. */
export const UPGRADE_OPSET = 13;

/** An operator (or model) the upgrader cannot bring to opset 13. */
export class OpsetUpgradeError extends Error {
  /** The operator type that cannot be upgraded ('' for a model-level problem). */
  readonly op: string;
  /** The model's default-domain opset. */
  readonly from: number;
  constructor(op: string, from: number, message: string) {
    super(message);
    this.name = 'OpsetUpgradeError';
    this.op = op;
    this.from = from;
  }
}

/** True when `e` is an {@link OpsetUpgradeError}. */
export function isOpsetUpgradeError(e: unknown): e is OpsetUpgradeError {
  return e instanceof OpsetUpgradeError;
}

/** Operators whose behaviour for valid models is the same at every opset from 9 to 13. */
const UNCHANGED = new Set([
  'Abs',
  'Acos',
  'Acosh',
  'Add',
  'And',
  'ArgMax',
  'ArgMin',
  'Asin',
  'Asinh',
  'Atan',
  'Atanh',
  'AveragePool',
  'BitShift',
  'Cast',
  'Ceil',
  'Celu',
  'Compress',
  'Concat',
  'Constant',
  'ConstantOfShape',
  'Conv',
  'ConvInteger',
  'ConvTranspose',
  'Cos',
  'Cosh',
  'CumSum',
  'DepthToSpace',
  'DequantizeLinear',
  'Det',
  'Div',
  'DynamicQuantizeLinear',
  'Einsum',
  'Elu',
  'Equal',
  'Erf',
  'Exp',
  'Expand',
  'EyeLike',
  'Flatten',
  'Floor',
  'GRU',
  'Gather',
  'GatherElements',
  'GatherND',
  'Gemm',
  'GlobalAveragePool',
  'GlobalLpPool',
  'GlobalMaxPool',
  'Greater',
  'GreaterOrEqual',
  'HardSigmoid',
  'Identity',
  'If',
  'InstanceNormalization',
  'IsInf',
  'IsNaN',
  'LRN',
  'LSTM',
  'LeakyRelu',
  'Less',
  'LessOrEqual',
  'Log',
  'Loop',
  'LpNormalization',
  'LpPool',
  'MatMul',
  'MatMulInteger',
  'Max',
  'MaxPool',
  'MaxRoiPool',
  'MaxUnpool',
  'Mean',
  'MeanVarianceNormalization',
  'Min',
  'Mod',
  'Mul',
  'Neg',
  'NonMaxSuppression',
  'NonZero',
  'Not',
  'OneHot',
  'Or',
  'PRelu',
  'Pow',
  'QLinearConv',
  'QLinearMatMul',
  'QuantizeLinear',
  'RNN',
  'RandomNormal',
  'RandomNormalLike',
  'RandomUniform',
  'RandomUniformLike',
  'Range',
  'Reciprocal',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceMax',
  'ReduceMean',
  'ReduceMin',
  'ReduceProd',
  'ReduceSumSquare',
  'Relu',
  'Reshape',
  'ReverseSequence',
  'RoiAlign',
  'Round',
  'Scan',
  'ScatterElements',
  'ScatterND',
  'Selu',
  'Shape',
  'Shrink',
  'Sigmoid',
  'Sign',
  'Sin',
  'Sinh',
  'Size',
  'Softplus',
  'Softsign',
  'SpaceToDepth',
  'Sqrt',
  'Sub',
  'Sum',
  'Tan',
  'Tanh',
  'ThresholdedRelu',
  'Tile',
  'Transpose',
  'Unique',
  'Where',
  'Xor',
]);

/** Fresh tensor/node names that collide with nothing in the model. */
function nameSource(model: ModelProto): (base: string) => string {
  const used = new Set<string>();
  const visit = (g: GraphProto) => {
    for (const v of [...g.input, ...g.output, ...g.valueInfo]) used.add(v.name);
    for (const t of g.initializer) used.add(t.name);
    for (const n of g.node) {
      for (const x of [...n.input, ...n.output]) used.add(x);
      used.add(n.name);
      for (const a of n.attribute) {
        if (a.g) visit(a.g);
        for (const s of a.graphs) visit(s);
      }
    }
  };
  if (model.graph) visit(model.graph);
  return (base) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
}

/**
 * A copy of `model` whose default domain is opset 13 (and IR version at least 7), or `model`
 * itself when it already imports opset >= 13.
 * @throws OpsetUpgradeError for an operator it cannot upgrade, or a model below opset 9.
 */
export function upgradeOpset(model: ModelProto): ModelProto {
  const from = opsetVersion(model, '');
  if (from === undefined) throw new OpsetUpgradeError('', 0, 'the model imports no ONNX opset');
  if (from >= UPGRADE_OPSET) return model;
  if (from < 9) {
    throw new OpsetUpgradeError('', from, `opset ${from} is below 9 (not upgraded)`);
  }
  const out = clone(ModelProtoSchema, model);
  const fresh = nameSource(out);
  upgradeGraph(out.graph!, from, fresh);
  out.opsetImport = [
    ...out.opsetImport.filter((o) => !isDefaultDomain(o.domain)),
    create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(UPGRADE_OPSET) }),
  ];
  if (out.irVersion < 7n) out.irVersion = 7n;
  return out;
}

function upgradeGraph(graph: GraphProto, from: number, fresh: (base: string) => string): void {
  const consts = constantLookup(graph);
  const ranks = new Map<string, number>();
  for (const [name, info] of tensorInfos(graph)) if (info.dims) ranks.set(name, info.dims.length);
  const nodes: NodeProto[] = [];
  const int64 = (base: string, values: readonly bigint[]): string => {
    const name = fresh(base);
    graph.initializer.push(
      tensorToProto(name, {
        type: 'int64',
        dims: [values.length],
        data: BigInt64Array.from(values),
      }),
    );
    return name;
  };
  const float = (base: string, value: number): string => {
    const name = fresh(base);
    graph.initializer.push(
      tensorToProto(name, { type: 'float32', dims: [], data: new Float32Array([value]) }),
    );
    return name;
  };
  const ints = (n: NodeProto, name: string): bigint[] | undefined => getAttribute(n, name)?.ints;
  const drop = (n: NodeProto, ...names: string[]) => {
    n.attribute = n.attribute.filter((a) => !names.includes(a.name));
  };
  const label = (n: NodeProto) => n.name || n.output[0] || n.opType;
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.g) upgradeGraph(a.g, from, fresh);
      for (const g of a.graphs) upgradeGraph(g, from, fresh);
    }
    if (!isDefaultDomain(node.domain)) {
      nodes.push(node);
      continue;
    }
    const op = node.opType;
    const base = label(node);
    const fail = (why: string): never => {
      throw new OpsetUpgradeError(
        op,
        from,
        `${op} '${base}' cannot be upgraded from opset ${from} to ${UPGRADE_OPSET}: ${why}`,
      );
    };
    switch (op) {
      case 'Clip':
        if (from < 11) {
          const min = attrFloat(node, 'min');
          const max = attrFloat(node, 'max');
          drop(node, 'min', 'max');
          node.input = [
            node.input[0]!,
            min !== undefined ? float(`${base}_min`, min) : '',
            max !== undefined ? float(`${base}_max`, max) : '',
          ];
          while (node.input.at(-1) === '') node.input.pop();
        }
        break;
      case 'Pad':
        if (from < 11) {
          const pads = ints(node, 'pads') ?? fail('no pads attribute');
          const value = attrFloat(node, 'value', 0);
          drop(node, 'pads', 'value');
          node.input = [node.input[0]!, int64(`${base}_pads`, pads)];
          if (value !== 0) node.input.push(float(`${base}_value`, value));
        }
        break;
      case 'Upsample':
      case 'Resize': {
        if (op === 'Resize' && from >= 11) break;
        let mode = attrString(node, 'mode', 'nearest');
        if (mode === 'bilinear') mode = 'linear';
        if (mode !== 'nearest' && mode !== 'linear') fail(`mode '${mode}'`);
        let scales = node.input[1];
        if (!scales) {
          const attr = getAttribute(node, 'scales')?.floats;
          if (!attr) fail('no scales');
          scales = fresh(`${base}_scales`);
          graph.initializer.push(
            tensorToProto(scales, {
              type: 'float32',
              dims: [attr!.length],
              data: Float32Array.from(attr!),
            }),
          );
        }
        const s = consts.value(scales);
        const values = s?.type === 'float32' ? [...(s.data as Float32Array)] : undefined;
        // onnxruntime's pre-11 nearest: truncation when upsampling, ceil when downsampling.
        // (per axis, so a mix of both has no Resize-13 equivalent; scale 1 reads either way).
        let nearest = 'floor';
        if (values?.some((v) => v < 1)) {
          if (mode === 'nearest' && values.some((v) => v > 1))
            fail('nearest with scales both below and above 1');
          nearest = 'ceil';
        }
        node.opType = 'Resize';
        node.input = [node.input[0]!, '', scales];
        node.attribute = [
          makeAttrString('mode', mode),
          makeAttrString('coordinate_transformation_mode', 'asymmetric'),
          ...(mode === 'nearest' ? [makeAttrString('nearest_mode', nearest)] : []),
        ];
        break;
      }
      case 'Slice':
        if (from < 10) {
          const starts = ints(node, 'starts') ?? fail('no starts');
          const ends = ints(node, 'ends') ?? fail('no ends');
          const axes = ints(node, 'axes');
          drop(node, 'starts', 'ends', 'axes');
          node.input = [
            node.input[0]!,
            int64(`${base}_starts`, starts),
            int64(`${base}_ends`, ends),
            ...(axes ? [int64(`${base}_axes`, axes)] : []),
          ];
        }
        break;
      case 'Split': {
        const split = ints(node, 'split');
        drop(node, 'split');
        if (split) node.input = [node.input[0]!, int64(`${base}_split`, split)];
        break;
      }
      case 'Squeeze':
      case 'Unsqueeze':
      case 'ReduceSum': {
        const axes = ints(node, 'axes');
        drop(node, 'axes');
        if (axes) node.input = [node.input[0]!, int64(`${base}_axes`, axes)];
        else if (op === 'Unsqueeze') fail('no axes');
        break;
      }
      case 'TopK':
        if (from < 10) {
          const k = attrInt(node, 'k') ?? fail('no k');
          drop(node, 'k');
          node.input = [node.input[0]!, int64(`${base}_k`, [BigInt(k)])];
        }
        break;
      case 'Scatter':
        node.opType = 'ScatterElements';
        break;
      case 'Dropout':
        drop(node, 'ratio', 'is_test', 'seed');
        node.input = [node.input[0]!];
        break;
      case 'BatchNormalization':
        if (attrInt(node, 'spatial', 1) !== 1) fail('spatial=0');
        drop(node, 'spatial', 'is_test');
        break;
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax': {
        const axis = attrInt(node, 'axis', 1);
        drop(node, 'axis');
        const rank = ranks.get(node.input[0]!);
        if (axis === -1 || (rank !== undefined && axis === rank - 1)) {
          node.attribute.push(makeAttrInt('axis', -1));
          break;
        }
        // Old semantics: coerce to 2-D [prod(d < axis), prod(d >= axis)], normalise each row.
        const x = node.input[0]!;
        const y = node.output[0]!;
        const shape = fresh(`${base}_shape`);
        const flat = fresh(`${base}_flat`);
        const soft = fresh(`${base}_2d`);
        nodes.push(makeNode('Shape', [x], [shape], [], { name: fresh(`${base}_Shape`) }));
        nodes.push(
          makeNode('Flatten', [x], [flat], [makeAttrInt('axis', axis)], {
            name: fresh(`${base}_Flatten`),
          }),
        );
        node.input = [flat];
        node.output = [soft];
        node.attribute.push(makeAttrInt('axis', -1));
        nodes.push(node);
        nodes.push(makeNode('Reshape', [soft, shape], [y], [], { name: fresh(`${base}_Reshape`) }));
        continue;
      }
      default:
        if (!UNCHANGED.has(op)) fail('operator not known to the upgrader');
    }
    nodes.push(node);
  }
  graph.node = nodes;
}
