/**
 * Cross-framework quantization, step 1: reading a model that another framework quantized.
 *
 * PyTorch (torch.ao.quantization, exported with torch.onnx), ONNX Runtime's quantizer, TensorRT's
 * pytorch-quantization toolkit and others write quantized models in the ONNX "QDQ" format: each
 * quantized tensor passes through QuantizeLinear -> DequantizeLinear, and each quantized weight
 * is an integer initializer behind a DequantizeLinear (or a float one behind a Q -> DQ pair).
 * The graph between them is the float model. This module takes such a model apart:
 * - the float model: every activation Q -> DQ pair removed (its readers read the float tensor),
 *   every weight DQ replaced by the float initializer it computes, in float32 exactly as
 *   DequantizeLinear does;
 * - the framework's activation parameters, by float tensor name (scale, zero point, type);
 * - the framework's integer weights with their scales, by the float initializer's name.
 *
 * What a target then makes of those parameters (core/import/layers.ts) is step 2.
 * Two operator-style formats are first rewritten into that form: ONNX Runtime's QOperator
 * format (QLinearConv, QGemm, QLinearAdd...: core/import/qoperator.ts) and a dynamically
 * quantized model (its quantize_dynamic: DynamicQuantizeLinear -> MatMulInteger/ConvInteger,
 * core/import/dynamic.ts), whose weights read like any QDQ weight and whose activations are
 * listed as quantized at run time. Other integer ops are refused with a clear error.
 */
import { clone } from '@bufbuild/protobuf';
import { attrInt, attrTensor } from '../onnx/attributes.ts';
import { makeNode } from '../onnx/builder.ts';
import { constantLookup } from '../onnx/constants.ts';
import { type ModelProto, ModelProtoSchema, type NodeProto } from '../onnx/gen/onnx_pb.ts';
import { nodeLabel } from '../onnx/graph.ts';
import { isDefaultDomain } from '../onnx/opset.ts';
import { tensorFromProto, tensorToProto, tensorTypeOf } from '../onnx/tensor.ts';
import { roundHalfEven } from '../quantize/params.ts';
import { pruneUnusedInitializers } from '../quantize/prepare.ts';
import { allocate, elementCount, type TensorData } from '../tensor/index.ts';
import { plainDynamic } from './dynamic.ts';
import { QdqImportError } from './error.ts';
import { plainQOperator, QOPERATOR_OPS } from './qoperator.ts';

/** Integer element types of the QDQ format that the importer reads. */
export type QdqType = 'int8' | 'uint8';

/** An activation's quantization as the foreign framework wrote it (per tensor). */
export interface ForeignActivation {
  scale: number;
  zeroPoint: number;
  type: QdqType;
}

/** A weight as the foreign framework quantized it. */
export interface ForeignWeight {
  dims: readonly number[];
  /** Integer values, row-major in the initializer's own layout. */
  q: Int32Array;
  /** One scale (per tensor) or one per index of `axis`. */
  scales: Float64Array;
  zeroPoints: Int32Array;
  /** The DequantizeLinear's axis (meaningful when there are several scales). */
  axis: number;
  type: QdqType;
}

/** A QDQ model taken apart. */
export interface QdqImport {
  /** The float model (QDQ nodes removed, weights dequantized). */
  model: ModelProto;
  /** Activation parameters by the float tensor's name (the QuantizeLinear's input). */
  activations: Map<string, ForeignActivation>;
  /** Quantized weights by the float initializer's name in `model`. */
  weights: Map<string, ForeignWeight>;
  /**
   * Float tensors the file quantizes at run time (a dynamically quantized file, in ONNX Runtime's
   * quantize_dynamic layout: core/import/dynamic.ts). Empty for a QDQ file; a file is one or the
   * other.
   */
  dynamic: Set<string>;
  /**
   * How the file is quantized: QDQ pairs around float ops; operator style (ONNX Runtime's
   * QOperator: QLinearConv, QLinearAdd, QGemm..., core/import/qoperator.ts); or dynamically
   * (quantize_dynamic: DynamicQuantizeLinear + MatMulInteger/ConvInteger, core/import/dynamic.ts).
   */
  format: 'qdq' | 'qoperator' | 'dynamic';
  /**
   * The file's own nodes read and removed: activation QuantizeLinear, DequantizeLinear of
   * activations or weights, DynamicQuantizeLinear, and the integer ops (QLinear ops, or
   * MatMulInteger/ConvInteger) replaced by their float op.
   */
  removed: {
    quantizeLinear: number;
    dequantizeLinear: number;
    dynamicQuantizeLinear: number;
    integerOps: number;
  };
  /** The producer the file names (e.g. "pytorch 1.13.0"). */
  producer: string;
}

export { QdqImportError };

/**
 * Operator-style quantized ops. The QOperator ops core/import/qoperator.ts reads and the
 * dynamic layout core/import/dynamic.ts reads are rewritten before this list is checked; any
 * left (another layout, or an op neither reads) is refused.
 */
const OPERATOR_STYLE = new Set([
  ...Object.keys(QOPERATOR_OPS),
  'ConvInteger',
  'MatMulInteger',
  'DynamicQuantizeLinear',
  'QAttention',
  'QEmbedLayerNormalization',
  'QLinearReduceMean',
  'QLinearWhere',
  'QOrderedMatMul',
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
  'DynamicQuantizeLSTM',
]);

const qdqType = (t: TensorData | undefined, what: string): QdqType | 'int32' => {
  if (t === undefined || t.type === 'uint8') return 'uint8';
  if (t.type === 'int8' || t.type === 'int32') return t.type;
  throw new QdqImportError(
    `${what}: zero point of type ${t.type} (int8 and uint8 are read, int32 for a bias)`,
  );
};

const typeRange = (type: QdqType): readonly [number, number] =>
  type === 'int8' ? [-128, 127] : [0, 255];

/** The (scale, zero point) inputs of a Q or DQ node, read from constants. */
function params(
  node: NodeProto,
  lookup: ReturnType<typeof constantLookup>,
): { scales: Float64Array; zeroPoints: Int32Array; type: QdqType | 'int32'; axis: number } {
  const label = nodeLabel(node);
  const s = lookup.value(node.input[1] ?? '');
  if (!s) throw new QdqImportError(`${label}: its scale '${node.input[1]}' is not a constant`);
  if (s.type !== 'float32')
    throw new QdqImportError(`${label}: scale of type ${s.type} (float32 expected)`);
  const zpName = node.input[2] ?? '';
  const z = zpName === '' ? undefined : lookup.value(zpName);
  if (zpName !== '' && !z)
    throw new QdqImportError(`${label}: its zero point '${zpName}' is not a constant`);
  const type = qdqType(z, label);
  const scales = Float64Array.from(s.data as Float32Array);
  const zeroPoints =
    z === undefined ? new Int32Array(scales.length) : Int32Array.from(z.data as ArrayLike<number>);
  if (zeroPoints.length !== scales.length)
    throw new QdqImportError(
      `${label}: ${scales.length} scales but ${zeroPoints.length} zero points`,
    );
  for (const v of scales)
    if (!(v > 0) || !Number.isFinite(v))
      throw new QdqImportError(`${label}: scale ${v} (a positive finite number expected)`);
  return { scales, zeroPoints, type, axis: attrInt(node, 'axis', 1) };
}

/** DequantizeLinear in float32, as ONNX defines it: (x - zero_point) * scale. */
function dequantize(
  w: Pick<ForeignWeight, 'dims' | 'q' | 'scales' | 'zeroPoints' | 'axis'>,
): Float32Array {
  const out = new Float32Array(w.q.length);
  const perAxis = w.scales.length > 1;
  const axis = w.axis < 0 ? w.axis + w.dims.length : w.axis;
  let inner = 1;
  for (let i = axis + 1; i < w.dims.length; i++) inner *= w.dims[i]!;
  const n = w.dims[axis] ?? 1;
  for (let i = 0; i < out.length; i++) {
    const c = perAxis ? Math.floor(i / inner) % n : 0;
    out[i] = Math.fround(Math.fround(w.q[i]! - w.zeroPoints[c]!) * Math.fround(w.scales[c]!));
  }
  return out;
}

/** QuantizeLinear in float32: saturate(round_half_even(x / scale) + zero_point). */
function quantizeConstant(
  x: Float32Array,
  dims: readonly number[],
  p: { scales: Float64Array; zeroPoints: Int32Array; type: QdqType; axis: number },
): Int32Array {
  const [lo, hi] = typeRange(p.type);
  const perAxis = p.scales.length > 1;
  const axis = p.axis < 0 ? p.axis + dims.length : p.axis;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const n = dims[axis] ?? 1;
  const q = new Int32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = perAxis ? Math.floor(i / inner) % n : 0;
    const v = roundHalfEven(Math.fround(x[i]! / Math.fround(p.scales[c]!))) + p.zeroPoints[c]!;
    q[i] = v < lo ? lo : Math.min(v, hi);
  }
  return q;
}

function checkAxis(
  dims: readonly number[],
  p: { scales: Float64Array; axis: number },
  label: string,
) {
  if (p.scales.length === 1) return;
  const axis = p.axis < 0 ? p.axis + dims.length : p.axis;
  if (axis < 0 || axis >= dims.length || dims[axis] !== p.scales.length)
    throw new QdqImportError(
      `${label}: ${p.scales.length} scales on axis ${p.axis} of a [${dims.join(',')}] tensor`,
    );
}

/**
 * What exporters write around the QDQ pairs, made plain so the pairs can be read:
 * - constant subexpressions of ConstantOfShape and Cast (PyTorch computes a bias's zero point
 *   as `Cast(ConstantOfShape(shape))`) become initializers;
 * - a Cast of a QuantizeLinear's output to the type it already has (PyTorch writes
 *   `QuantizeLinear -> Cast(uint8) -> DequantizeLinear`) is dropped, its readers reading the
 *   QuantizeLinear's output.
 */
function plainQdq(model: ModelProto): void {
  const graph = model.graph!;
  const lookup = () => constantLookup(graph);
  let constants = lookup();
  const kept: NodeProto[] = [];
  const rename = new Map<string, string>();
  const qType = new Map<string, number>();
  for (const n of graph.node) {
    n.input = n.input.map((i) => rename.get(i) ?? i);
    const out = n.output[0] ?? '';
    if (
      n.opType === 'ConstantOfShape' &&
      isDefaultDomain(n.domain) &&
      constants.has(n.input[0] ?? '')
    ) {
      const shape = constants.value(n.input[0]!)!;
      const dims = Array.from(shape.data as ArrayLike<number | bigint>, Number);
      const valueProto = attrTensor(n, 'value');
      const value = valueProto
        ? tensorFromProto(valueProto)
        : { type: 'float32' as const, dims: [1], data: new Float32Array(1) };
      const data = allocate(value.type, elementCount(dims));
      (data as { fill(v: unknown): void }).fill((value.data as ArrayLike<unknown>)[0]);
      graph.initializer.push(tensorToProto(out, { type: value.type, dims, data } as TensorData));
      constants = lookup();
      continue;
    }
    if (
      n.opType === 'Identity' &&
      isDefaultDomain(n.domain) &&
      constants.has(n.input[0] ?? '') &&
      !graph.output.some((o) => o.name === out)
    ) {
      // PyTorch dedups equal scale/zero-point constants into Identity nodes.
      graph.initializer.push(tensorToProto(out, constants.value(n.input[0]!)!));
      constants = lookup();
      continue;
    }
    if (n.opType === 'Cast' && isDefaultDomain(n.domain)) {
      const to = tensorTypeOf(attrInt(n, 'to', 0));
      const x = constants.value(n.input[0] ?? '');
      if (x && to && to !== 'float16' && to !== 'bool' && x.type !== 'float16') {
        const data = allocate(to, x.data.length);
        const src = x.data as ArrayLike<number | bigint>;
        for (let i = 0; i < src.length; i++)
          (data as unknown as (number | bigint)[])[i] =
            to === 'int64' ? BigInt(Math.trunc(Number(src[i]))) : Number(src[i]);
        graph.initializer.push(tensorToProto(out, { type: to, dims: x.dims, data } as TensorData));
        constants = lookup();
        continue;
      }
      const fromQ = qType.get(n.input[0] ?? '');
      if (fromQ !== undefined && attrInt(n, 'to', 0) === fromQ) {
        rename.set(out, n.input[0]!);
        continue;
      }
    }
    if (n.opType === 'QuantizeLinear' && isDefaultDomain(n.domain)) {
      const zp = n.input[2] ? constants.proto(n.input[2]) : undefined;
      qType.set(out, zp ? zp.dataType : 2 /* uint8, the default */);
    }
    kept.push(n);
  }
  graph.node = kept;
  for (const o of graph.output)
    if (rename.has(o.name))
      throw new QdqImportError(
        `model output '${o.name}' is an integer tensor (only float outputs are read)`,
      );
}

/**
 * Takes a QDQ model apart (see the module comment). Throws {@link QdqImportError} with the node
 * and the reason for what it cannot read; a model with no QuantizeLinear/DequantizeLinear at all
 * is an error too (there is nothing to import: calibrate it instead).
 */
export function importQdq(source: ModelProto): QdqImport {
  if (!source.graph) throw new QdqImportError('the model has no graph');
  const model = clone(ModelProtoSchema, source);
  const graph = model.graph!;
  plainQdq(model);
  const operatorStyle = plainQOperator(model);
  const dynamicFile = plainDynamic(model);
  if (operatorStyle.integerOps > 0 && dynamicFile.integerOps > 0)
    throw new QdqImportError(
      'the file has both QLinear ops and dynamically quantized ones (DynamicQuantizeLinear): a file is read as one kind or the other',
    );
  for (const n of graph.node) {
    if (OPERATOR_STYLE.has(n.opType))
      throw new QdqImportError(
        `${nodeLabel(n)}: this operator-style quantized op is not read (ONNX Runtime's QOperator ops ${Object.keys(QOPERATOR_OPS).join(', ')} and quantize_dynamic's layout are); export the model in the QDQ format (QuantizeLinear/DequantizeLinear around float ops)`,
      );
    if (!isDefaultDomain(n.domain) && /^(Q|Deq)uantizeLinear$/.test(n.opType))
      throw new QdqImportError(
        `${nodeLabel(n)}: a QuantizeLinear/DequantizeLinear of domain '${n.domain}' (only the standard ONNX ops are read)`,
      );
  }
  const lookup = constantLookup(graph);
  const producerOf = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) producerOf.set(o, n);
  const isQ = (n: NodeProto | undefined) =>
    n?.opType === 'QuantizeLinear' && isDefaultDomain(n.domain);
  const isDQ = (n: NodeProto) => n.opType === 'DequantizeLinear' && isDefaultDomain(n.domain);

  const activations = new Map<string, ForeignActivation>();
  const weights = new Map<string, ForeignWeight>();
  /** DQ output -> the float tensor its readers read instead. */
  const rename = new Map<string, string>();
  /** DQ outputs that become float initializers. */
  const floatInits: { name: string; dims: readonly number[]; data: Float32Array }[] = [];
  const drop = new Set<NodeProto>();
  const usedQ = new Set<NodeProto>();

  for (const dq of graph.node.filter(isDQ)) {
    const label = nodeLabel(dq);
    const x = dq.input[0] ?? '';
    const out = dq.output[0] ?? '';
    const raw = params(dq, lookup);
    const constant = lookup.value(x);
    const q = producerOf.get(x);
    if (constant?.type === 'int32') {
      // An int32 bias (ONNX Runtime's quantizer and PyTorch's exporter write them): dequantized
      // along its one axis.
      const bias = { ...raw, axis: 0, dims: constant.dims, q: constant.data as Int32Array };
      floatInits.push({ name: out, dims: constant.dims, data: dequantize(bias) });
      drop.add(dq);
      continue;
    }
    if (raw.type === 'int32')
      throw new QdqImportError(`${label}: an int32 zero point on a non-int32 input '${x}'`);
    const p = { ...raw, type: raw.type };
    /** A weight: its integers are kept, and the float model gets its dequantized values. */
    const addWeight = (dims: readonly number[], ints: Int32Array) => {
      const w: ForeignWeight = { ...p, dims: [...dims], q: ints };
      weights.set(out, w);
      floatInits.push({ name: out, dims: w.dims, data: dequantize(w) });
      drop.add(dq);
    };
    if (constant) {
      if (constant.type !== p.type)
        throw new QdqImportError(
          `${label}: a ${constant.type} constant with a ${p.type} zero point`,
        );
      checkAxis(constant.dims, p, label);
      addWeight(constant.dims, Int32Array.from(constant.data as ArrayLike<number>));
      continue;
    }
    if (!isQ(q))
      throw new QdqImportError(
        `${label}: its input '${x}' is neither a constant nor a QuantizeLinear output (integer model inputs are not read)`,
      );
    const qp = params(q!, lookup);
    if (
      qp.type !== p.type ||
      qp.scales.length !== p.scales.length ||
      qp.scales.some((s, i) => s !== p.scales[i] || qp.zeroPoints[i] !== p.zeroPoints[i])
    )
      throw new QdqImportError(
        `${label}: its scale or zero point differs from ${nodeLabel(q!)}'s (a requantization, which the QDQ format does not express this way)`,
      );
    usedQ.add(q!);
    const floatIn = q!.input[0] ?? '';
    const floatConst = lookup.value(floatIn);
    if (floatConst) {
      // A fake-quantized weight: float constant -> Q -> DQ.
      if (floatConst.type !== 'float32')
        throw new QdqImportError(`${label}: quantizes a ${floatConst.type} constant`);
      checkAxis(floatConst.dims, p, label);
      addWeight(
        floatConst.dims,
        quantizeConstant(floatConst.data as Float32Array, floatConst.dims, p),
      );
      continue;
    }
    if (p.scales.length !== 1)
      throw new QdqImportError(
        `${label}: per-channel quantization of an activation ('${floatIn}'); every target quantizes activations per tensor`,
      );
    const act: ForeignActivation = {
      scale: p.scales[0]!,
      zeroPoint: p.zeroPoints[0]!,
      type: p.type,
    };
    const seen = activations.get(floatIn);
    if (
      seen &&
      (seen.scale !== act.scale || seen.zeroPoint !== act.zeroPoint || seen.type !== act.type)
    )
      throw new QdqImportError(
        `tensor '${floatIn}' is quantized twice with different parameters (scale ${seen.scale} / ${act.scale}); one set per tensor is read`,
      );
    activations.set(floatIn, act);
    rename.set(out, floatIn);
    drop.add(dq);
  }
  if (dynamicFile.dynamic.size > 0 && activations.size > 0)
    throw new QdqImportError(
      `the file quantizes ${dynamicFile.dynamic.size} tensors at run time (DynamicQuantizeLinear) and ${activations.size} with fixed scales (QuantizeLinear): a file is read as one kind or the other`,
    );
  if (drop.size === 0)
    throw new QdqImportError(
      'no QuantizeLinear/DequantizeLinear found: this is a float model (calibrate it with `cann-quant calibrate` or `score` instead)',
    );
  for (const q of graph.node.filter((n) => isQ(n))) {
    if (!usedQ.has(q))
      throw new QdqImportError(
        `${nodeLabel(q)}: its output is not read by a DequantizeLinear (integer model outputs are not read)`,
      );
    // Every reader of a used Q must be a DQ we remove.
    const y = q.output[0] ?? '';
    for (const n of graph.node)
      if (n.input.includes(y) && !drop.has(n))
        throw new QdqImportError(
          `${nodeLabel(q)}: its integer output is read by ${nodeLabel(n)} (only DequantizeLinear readers are read)`,
        );
    drop.add(q);
  }

  const outputs = new Set(graph.output.map((o) => o.name));
  const kept: NodeProto[] = [];
  for (const n of graph.node) {
    if (!drop.has(n)) {
      n.input = n.input.map((i) => rename.get(i) ?? i);
      kept.push(n);
      continue;
    }
    // A removed DQ whose output is a graph output keeps the name through an Identity.
    if (isDQ(n) && outputs.has(n.output[0] ?? '') && rename.has(n.output[0]!))
      kept.push(
        makeNode('Identity', [rename.get(n.output[0]!)!], [n.output[0]!], [], { name: n.name }),
      );
  }
  // Identity nodes left between float tensors (an exporter's renames around the removed pairs,
  // e.g. cann-quant's own `X__raw -> Q -> DQ -> Identity -> X`) are dropped, their readers
  // reading the tensor itself, so that the float model is the plain graph; a model output keeps
  // its Identity (and its name).
  const alias = new Map<string, string>();
  const nested = kept.some((n) => n.attribute.some((a) => a.g || a.graphs.length > 0));
  graph.node = kept.filter((n) => {
    if (nested) return true; // a subgraph may read a tensor by name: keep every node as it is
    n.input = n.input.map((i) => alias.get(i) ?? i);
    const out = n.output[0] ?? '';
    if (n.opType !== 'Identity' || !isDefaultDomain(n.domain) || outputs.has(out)) return true;
    alias.set(out, n.input[0] ?? '');
    return false;
  });
  const inits = new Set(graph.initializer.map((t) => t.name));
  for (const f of floatInits) {
    if (inits.has(f.name)) throw new QdqImportError(`initializer '${f.name}' is defined twice`);
    graph.initializer.push(tensorToProto(f.name, { type: 'float32', dims: f.dims, data: f.data }));
  }
  pruneUnusedInitializers(model);
  const removedDq = [...drop].filter(isDQ);
  const added = (n: NodeProto) => dynamicFile.added.has(n) || operatorStyle.added.has(n);
  const ownDq = removedDq.filter((n) => !added(n)).length;
  const ownQ = [...drop].filter((n) => !isDQ(n) && !added(n)).length;
  return {
    model,
    activations,
    weights,
    dynamic: dynamicFile.dynamic,
    format:
      dynamicFile.integerOps > 0 ? 'dynamic' : operatorStyle.integerOps > 0 ? 'qoperator' : 'qdq',
    removed: {
      quantizeLinear: ownQ,
      dequantizeLinear: ownDq,
      dynamicQuantizeLinear: dynamicFile.dynamicQuantizeLinear,
      integerOps: dynamicFile.integerOps + operatorStyle.integerOps,
    },
    producer: `${source.producerName} ${source.producerVersion}`.trim(),
  };
}
