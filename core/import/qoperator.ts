/**
 * Cross-framework quantization in the operator style: ONNX Runtime's QOperator format (its
 * `quantize_static(quant_format=QOperator)`, and the format of the ONNX Model Zoo's "-int8"
 * models). Integer tensors flow between integer ops, each carrying its inputs' and output's
 * (scale, zero point):
 *
 *     QuantizeLinear(x) -> QLinearConv(x_q, x_s, x_z, W_q, W_s, W_z, y_s, y_z, B_q) -> y_q -> ...
 *
 * {@link plainQOperator} rewrites each integer op, in place, into the QDQ form of the same
 * arithmetic, which the QDQ reader (core/import/qdq.ts) then takes apart:
 *
 *     DequantizeLinear(x_q) -> Conv(., DequantizeLinear(W_q), DequantizeLinear(B_q)) -> QuantizeLinear(y_s, y_z) -> y_q
 *
 * - a bias is int32 at scale x_s * W_s (per output channel), as the operator defines it;
 * - an output whose zero point is its type's lowest level (uint8 0) gets a Relu before its
 *   QuantizeLinear. ONNX Runtime's quantizer removes a Relu after a Conv or Add and lets the
 *   output's range [0, max] do the clipping; the QuantizeLinear clamps every negative value to
 *   that level, which dequantizes to 0, so the Relu changes nothing in the file's arithmetic.
 *   It puts the Relu back in the float model, where a target whose grid cannot hold the range
 *   as it is (a symmetric one) needs it;
 * - ops that move integers without arithmetic (MaxPool, Flatten, Reshape...) on a quantized
 *   tensor become DequantizeLinear -> op -> QuantizeLinear with the tensor's own parameters:
 *   they commute with a per-tensor dequantization;
 * - rows gathered from an integer table (a quantized embedding: Gather(T_q, ids)) are
 *   dequantized with the parameters the op reading them names; core/import/dynamic.ts then
 *   moves that DequantizeLinear before the Gather, onto the table.
 *
 * Anything else reading an integer tensor is refused, naming the node.
 */
import { attrFloat, attrInt } from '../onnx/attributes.ts';
import { makeAttrInt, makeNode } from '../onnx/builder.ts';
import { constantLookup } from '../onnx/constants.ts';
import type { AttributeProto, ModelProto, NodeProto, TensorProto } from '../onnx/gen/onnx_pb.ts';
import { nodeLabel } from '../onnx/graph.ts';
import { isDefaultDomain } from '../onnx/opset.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { QdqImportError } from './error.ts';

/** What {@link plainQOperator} rewrote. */
export interface QOperatorRewrite {
  /** Integer ops replaced by their float op between DequantizeLinear and QuantizeLinear. */
  integerOps: number;
  /** Relu nodes put back (outputs clipped at 0 by their range). */
  relus: number;
  /** The QuantizeLinear and DequantizeLinear nodes the rewrite added (not the file's own). */
  added: Set<NodeProto>;
}

/** Where an op's quantized inputs, bias and output parameters sit among its inputs. */
interface Spec {
  /** The float op it computes. */
  op: string;
  /** Domain of the integer op ('' for the standard ones). */
  domain: '' | 'com.microsoft';
  /**
   * Start index of each (tensor, scale, zero point) triple; 'rest-from-2': one triple after
   * another from input 2 on (QLinearConcat's variadic inputs).
   */
  triples: number[] | 'rest-from-2';
  /** Index of the output scale and zero point (absent: the output is float). */
  output?: number;
  /** Index of an int32 bias at the first two triples' scales' product. */
  bias?: number;
  /** Attributes the integer op has that the float op does not. */
  dropAttributes?: string[];
}

/** The integer ops read, by op type. */
export const QOPERATOR_OPS: Readonly<Record<string, Spec>> = {
  QLinearConv: { op: 'Conv', domain: '', triples: [0, 3], output: 6, bias: 8 },
  QLinearMatMul: { op: 'MatMul', domain: '', triples: [0, 3], output: 6 },
  QGemm: { op: 'Gemm', domain: 'com.microsoft', triples: [0, 3], bias: 6, output: 7 },
  QLinearAdd: { op: 'Add', domain: 'com.microsoft', triples: [0, 3], output: 6 },
  QLinearMul: { op: 'Mul', domain: 'com.microsoft', triples: [0, 3], output: 6 },
  QLinearGlobalAveragePool: {
    op: 'GlobalAveragePool',
    domain: 'com.microsoft',
    triples: [0],
    output: 3,
    dropAttributes: ['channels_last'],
  },
  QLinearAveragePool: {
    op: 'AveragePool',
    domain: 'com.microsoft',
    triples: [0],
    output: 3,
    dropAttributes: ['channels_last'],
  },
  QLinearSigmoid: { op: 'Sigmoid', domain: 'com.microsoft', triples: [0], output: 3 },
  QLinearLeakyRelu: { op: 'LeakyRelu', domain: 'com.microsoft', triples: [0], output: 3 },
  QLinearConcat: { op: 'Concat', domain: 'com.microsoft', triples: 'rest-from-2', output: 0 },
  QLinearSoftmax: {
    op: 'Softmax',
    domain: 'com.microsoft',
    triples: [0],
    output: 3,
    dropAttributes: ['opset'],
  },
};

/** Ops that move a quantized tensor's integers without arithmetic. */
const MOVES = new Set([
  'MaxPool',
  'Flatten',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Slice',
]);

const specOf = (n: NodeProto): Spec | undefined => {
  const s = QOPERATOR_OPS[n.opType];
  if (!s) return undefined;
  const domainOk = s.domain === '' ? isDefaultDomain(n.domain) : n.domain === s.domain;
  return domainOk ? s : undefined;
};

/** A QuantizeLinear's or DequantizeLinear's inputs (the zero point is optional: '' leaves it out). */
const qdqInputs = (x: string, scale: string, zeroPoint: string) =>
  zeroPoint === '' ? [x, scale] : [x, scale, zeroPoint];

/** The float op an integer op stands for, named without the quantizer's `_quant` suffix. */
const floatName = (n: NodeProto) => n.name.replace(/_quant$/, '');

/** Rewrites an operator-style quantized model into its QDQ form (see the module comment). */
export function plainQOperator(model: ModelProto): QOperatorRewrite {
  const graph = model.graph!;
  const added = new Set<NodeProto>();
  if (!graph.node.some((n) => specOf(n))) return { integerOps: 0, relus: 0, added };
  const lookup = constantLookup(graph);
  /** Integer tensor -> its (scale, zero point) tensor names. */
  const params = new Map<string, { scale: string; zeroPoint: string }>();
  for (const n of graph.node)
    if (n.opType === 'QuantizeLinear' && isDefaultDomain(n.domain))
      params.set(n.output[0] ?? '', { scale: n.input[1] ?? '', zeroPoint: n.input[2] ?? '' });
  const original = new Set(graph.node);
  const producer = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  /** A Gather of an int8/uint8 constant table. */
  const gathersIntegers = (n: NodeProto | undefined) => {
    if (n?.opType !== 'Gather' || !isDefaultDomain(n.domain)) return false;
    const table = lookup.value(n.input[0] ?? '');
    return table?.type === 'int8' || table?.type === 'uint8';
  };
  const inits: TensorProto[] = [];
  const dequantized = new Map<string, string>();
  /** Whether two (scale, zero point) name pairs hold the same values. */
  const sameParams = (a: { scale: string; zeroPoint: string }, b: typeof a) => {
    const values = (p: typeof a) =>
      [p.scale, p.zeroPoint].map((t) => {
        const v = t === '' ? undefined : lookup.value(t);
        return v ? Array.from(v.data as ArrayLike<number>).join(',') : t === '' ? '0' : `?${t}`;
      });
    const [x, y] = [values(a), values(b)];
    return x[0] === y[0] && x[1] === y[1];
  };
  const out: NodeProto[] = [];
  let integerOps = 0;
  let relus = 0;

  /** The float tensor of an integer one (a DequantizeLinear, made once per tensor). */
  const dequantize = (t: string, scale: string, zeroPoint: string, axis?: number) => {
    const seen = dequantized.get(t);
    if (seen) return seen;
    const name = `${t}__dequantized`;
    const s = lookup.value(scale);
    out.push(
      makeNode(
        'DequantizeLinear',
        qdqInputs(t, scale, zeroPoint),
        [name],
        axis !== undefined && s && s.data.length > 1 ? [makeAttrInt('axis', axis)] : [],
        { name: `${t}_DequantizeLinear` },
      ),
    );
    dequantized.set(t, name);
    return name;
  };
  /** The integer tensor `y` the file names, quantized from the float `x` with parameters `p`. */
  const requantize = (x: string, y: string, p: { scale: string; zeroPoint: string }) => {
    out.push(
      makeNode('QuantizeLinear', qdqInputs(x, p.scale, p.zeroPoint), [y], [], {
        name: `${y}_QuantizeLinear`,
      }),
    );
    params.set(y, p);
  };
  /** Quantizes a float result into the integer tensor the file names, a Relu first if clipped. */
  const quantize = (n: NodeProto, y: string, float: string, scale: string, zeroPoint: string) => {
    const label = nodeLabel(n);
    const z = lookup.value(zeroPoint);
    if (!lookup.value(scale) || (zeroPoint !== '' && !z))
      throw new QdqImportError(`${label}: its output scale or zero point is not a constant`);
    let x = float;
    const clipped = z ? (z.type === 'uint8' ? z.data[0] === 0 : z.data[0] === -128) : true;
    if (clipped) {
      out.push(makeNode('Relu', [float], [`${float}__relu`], [], { name: `${floatName(n)}_relu` }));
      x = `${float}__relu`;
      relus++;
    }
    requantize(x, y, { scale, zeroPoint });
  };

  for (const n of graph.node) {
    const spec = specOf(n);
    const label = nodeLabel(n);
    if (!spec) {
      const quantizedIn = n.input.filter((i) => params.has(i));
      if (quantizedIn.length === 0 || n.opType === 'DequantizeLinear') {
        out.push(n);
        continue;
      }
      if (!MOVES.has(n.opType) || !isDefaultDomain(n.domain) || n.input[0] !== quantizedIn[0])
        throw new QdqImportError(
          `${label}: reads the integer tensor '${quantizedIn[0]}' (operator-style files are read when integer tensors go to QLinear ops, ONNX Runtime's contrib QLinear ops, or ops that only move values: ${[...MOVES].join(', ')})`,
        );
      const p = params.get(n.input[0]!)!;
      const x = dequantize(n.input[0]!, p.scale, p.zeroPoint);
      const y = n.output[0] ?? '';
      out.push(
        makeNode(n.opType, [x, ...n.input.slice(1)], [`${y}__float`], n.attribute, {
          name: n.name,
        }),
      );
      requantize(`${y}__float`, y, p);
      continue;
    }
    if (n.opType === 'QGemm' && attrFloat(n, 'alpha', 1) !== 1)
      throw new QdqImportError(`${label}: alpha ${attrFloat(n, 'alpha', 1)} (1 is read)`);
    if (spec.dropAttributes?.includes('channels_last') && attrInt(n, 'channels_last', 0) !== 0)
      throw new QdqImportError(`${label}: channels_last layout (NCHW is read)`);
    const inputs: string[] = [];
    const triples =
      spec.triples === 'rest-from-2'
        ? Array.from({ length: Math.floor((n.input.length - 2) / 3) }, (_, i) => 2 + 3 * i)
        : spec.triples;
    for (const [k, at] of triples.entries()) {
      const [t = '', scale = '', zeroPoint = ''] = n.input.slice(at, at + 3);
      const constant = lookup.value(t);
      // Rows gathered from an integer table (a quantized embedding) are quantized like the
      // table: the op reading them names its parameters.
      if (!constant && !params.has(t) && gathersIntegers(producer.get(t)))
        params.set(t, { scale, zeroPoint });
      const own = params.get(t);
      if (!constant && !own)
        throw new QdqImportError(`${label}: its input '${t}' is not a quantized tensor`);
      if (own && !sameParams(own, { scale, zeroPoint }))
        throw new QdqImportError(
          `${label}: reads '${t}' with a scale or zero point other than the one it was quantized with`,
        );
      // A constant second operand is a weight: per output channel on Conv's axis 0 or a
      // MatMul's / transposed Gemm's last axis.
      const axis =
        k === 1
          ? spec.op === 'Conv' || (spec.op === 'Gemm' && attrInt(n, 'transB', 0) === 1)
            ? 0
            : 1
          : undefined;
      inputs.push(dequantize(t, scale, zeroPoint, constant ? axis : undefined));
    }
    if (spec.bias !== undefined && (n.input[spec.bias] ?? '') !== '') {
      const b = n.input[spec.bias]!;
      const xs = lookup.value(n.input[triples[0]! + 1] ?? '');
      const ws = lookup.value(n.input[triples[1]! + 1] ?? '');
      const bias = lookup.value(b);
      if (!xs || !ws || bias?.type !== 'int32')
        throw new QdqImportError(
          `${label}: its bias '${b}' is not an int32 constant with constant scales`,
        );
      const scale = new Float32Array(bias.data.length);
      for (let c = 0; c < scale.length; c++)
        scale[c] = Math.fround(Number(xs.data[0]) * Number(ws.data[ws.data.length === 1 ? 0 : c]));
      const scaleName = `${b}__scale`;
      inits.push(tensorToProto(scaleName, { type: 'float32', dims: [scale.length], data: scale }));
      const name = `${b}__dequantized`;
      out.push(
        makeNode('DequantizeLinear', [b, scaleName], [name], [makeAttrInt('axis', 0)], {
          name: `${b}_DequantizeLinear`,
        }),
      );
      inputs.push(name);
    }
    const y = n.output[0] ?? '';
    const attributes: AttributeProto[] = n.attribute.filter(
      (a) => !spec.dropAttributes?.includes(a.name),
    );
    const outScale = spec.output !== undefined ? (n.input[spec.output] ?? '') : '';
    const float = outScale === '' ? y : `${y}__float`;
    out.push(makeNode(spec.op, inputs, [float], attributes, { name: floatName(n) }));
    if (outScale !== '') quantize(n, y, float, outScale, n.input[spec.output! + 1] ?? '');
    integerOps++;
  }
  graph.node = out;
  graph.initializer.push(...inits);
  for (const n of out)
    if (!original.has(n) && /^(Q|Deq)uantizeLinear$/.test(n.opType)) added.add(n);
  return { integerOps, relus, added };
}
