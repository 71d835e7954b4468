/**
 * Cross-framework quantization of the dynamic kind: a model ONNX Runtime's `quantize_dynamic`
 * wrote (and any file in its layout). Such a model has no activation scales: each quantized
 * layer's input goes through DynamicQuantizeLinear, which computes a uint8 scale and zero point
 * from the tensor at run time, and the layer runs as MatMulInteger or ConvInteger:
 *
 *     DynamicQuantizeLinear(x) -> (x_q, x_scale, x_zp)
 *     MatMulInteger | ConvInteger(x_q, W_q, x_zp, W_zp) -> Cast(float) -> Mul(., Mul(x_scale, W_scale)) -> y
 *
 * {@link plainDynamic} rewrites each such unit, in place, into the float layer reading a
 * dequantized weight,
 *
 *     DequantizeLinear(W_q, W_scale, W_zp) -> MatMul | Conv(x, .) -> y
 *
 * which the QDQ reader (core/import/qdq.ts) then takes apart like any quantized weight: its
 * integers and scales are kept, and the float model gets the values the file multiplies by. `x`
 * is recorded as quantized at run time. The bias stays where the file has it (a float Add).
 *
 * `quantize_dynamic` also quantizes embedding tables: `Gather(T_q, ids) -> DequantizeLinear`.
 * With one scale for the table, dequantizing before the Gather gives the same values (the
 * dequantization is elementwise), so that becomes `DequantizeLinear(T_q) -> Gather(., ids)`: the
 * table is a dequantized weight, and the float model runs the file's embedding values.
 *
 * Anything else in operator style (a MatMulInteger whose input is not a DynamicQuantizeLinear's,
 * a result not scaled by the two scales' product, QLinearConv...) is refused with the node and
 * the reason.
 */
import { attrInt } from '../onnx/attributes.ts';
import { makeAttrInt, makeNode } from '../onnx/builder.ts';
import { constantLookup } from '../onnx/constants.ts';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/gen/onnx_pb.ts';
import { nodeLabel } from '../onnx/graph.ts';
import { isDefaultDomain } from '../onnx/opset.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import { allocate, type TensorData } from '../tensor/index.ts';
import { QdqImportError } from './error.ts';

/** What {@link plainDynamic} found and rewrote. */
export interface DynamicRewrite {
  /** Float tensors the file quantizes at run time (each DynamicQuantizeLinear's input). */
  dynamic: Set<string>;
  /** DynamicQuantizeLinear nodes removed. */
  dynamicQuantizeLinear: number;
  /** MatMulInteger and ConvInteger nodes replaced by their float op. */
  integerOps: number;
  /** The weight DequantizeLinear nodes the rewrite added (not the file's own). */
  added: Set<NodeProto>;
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

const is = (n: NodeProto | undefined, op: string): n is NodeProto =>
  n !== undefined && n.opType === op && isDefaultDomain(n.domain);

/** The float op an integer op stands for, keeping the node's name without quantize_dynamic's suffix. */
const floatName = (n: NodeProto) => n.name.replace(/_quant$/, '');

/** Rewrites a dynamically quantized model into float layers over dequantized weights (see above). */
export function plainDynamic(model: ModelProto): DynamicRewrite {
  const graph = model.graph!;
  const lookup = constantLookup(graph);
  const producer = new Map<string, NodeProto>();
  const readers = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) if (i !== '') readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  const outputs = new Set(graph.output.map((o) => o.name));
  /** The one reader of a tensor that is not a model output. */
  const onlyReader = (t: string) => {
    const r = readers.get(t) ?? [];
    return r.length === 1 && !outputs.has(t) ? r[0] : undefined;
  };
  const replace = new Map<NodeProto, NodeProto[]>();
  const drop = new Set<NodeProto>();
  const dynamic = new Set<string>();
  const quantizers = new Set<NodeProto>();
  const added = new Set<NodeProto>();
  const inits: TensorProto[] = [];

  for (const n of graph.node) {
    const conv = is(n, 'ConvInteger');
    if (!conv && !is(n, 'MatMulInteger')) continue;
    const label = nodeLabel(n);
    const [a = '', b = '', aZp = '', bZp = ''] = n.input;
    const dql = producer.get(a);
    if (!is(dql, 'DynamicQuantizeLinear') || dql.output[0] !== a || aZp !== dql.output[2])
      throw new QdqImportError(
        `${label}: its input '${a}' is not quantized by a DynamicQuantizeLinear with that node's zero point (operator-style models are read in ONNX Runtime's quantize_dynamic layout only; export others in the QDQ format)`,
      );
    const w = lookup.value(b);
    if (!w || (w.type !== 'int8' && w.type !== 'uint8'))
      throw new QdqImportError(`${label}: its weight '${b}' is not an int8 or uint8 constant`);
    const cast = onlyReader(n.output[0] ?? '');
    if (!is(cast, 'Cast') || attrInt(cast, 'to', 0) !== FLOAT)
      throw new QdqImportError(`${label}: its int32 result is not read by one Cast to float`);
    const mul = onlyReader(cast.output[0] ?? '');
    if (!is(mul, 'Mul'))
      throw new QdqImportError(`${label}: its result is not scaled by one Mul after the Cast`);
    const scaleName = (mul.input[0] === cast.output[0] ? mul.input[1] : mul.input[0]) ?? '';
    const scaleMul = producer.get(scaleName);
    const xScale = dql.output[1] ?? '';
    if (!is(scaleMul, 'Mul') || onlyReader(scaleName) !== mul || !scaleMul.input.includes(xScale))
      throw new QdqImportError(
        `${label}: its result is not scaled by Mul(input scale, weight scale), as quantize_dynamic writes it`,
      );
    const wScaleName = (scaleMul.input[0] === xScale ? scaleMul.input[1] : scaleMul.input[0]) ?? '';
    const wScale = lookup.value(wScaleName);
    if (wScale?.type !== 'float32')
      throw new QdqImportError(
        `${label}: its weight scale '${wScaleName}' is not a float32 constant`,
      );
    const channels = wScale.data.length;
    // Output channels: Conv's OIHW axis 0, MatMul's [K, N] axis 1.
    const axis = conv ? 0 : w.dims.length - 1;
    if (channels > 1 && w.dims[axis] !== channels)
      throw new QdqImportError(
        `${label}: ${channels} weight scales for ${w.dims[axis]} output channels`,
      );
    const zeroPoint = allocate(w.type, channels) as Int8Array | Uint8Array;
    if (bZp !== '') {
      const z = lookup.value(bZp);
      if (!z || z.type !== w.type || (z.data.length !== 1 && z.data.length !== channels))
        throw new QdqImportError(
          `${label}: its weight zero point '${bZp}' is not a ${w.type} constant with one value or one per output channel`,
        );
      for (let i = 0; i < channels; i++) zeroPoint[i] = Number(z.data[z.data.length === 1 ? 0 : i]);
    }
    // The weight's DequantizeLinear, with a scale and zero point of its own (the file's may be
    // shared, or scalar beside per-channel scales).
    const base = `${b}__dequantized`;
    const dims = channels === 1 ? [] : [channels];
    inits.push(
      tensorToProto(`${base}_scale`, {
        type: 'float32',
        dims,
        data: Float32Array.from(wScale.data as Float32Array),
      }),
      tensorToProto(`${base}_zero_point`, { type: w.type, dims, data: zeroPoint } as TensorData),
    );
    const dq = makeNode(
      'DequantizeLinear',
      [b, `${base}_scale`, `${base}_zero_point`],
      [base],
      channels > 1 ? [makeAttrInt('axis', axis)] : [],
      { name: `${floatName(n)}_weight_DequantizeLinear` },
    );
    added.add(dq);
    const op = makeNode(
      conv ? 'Conv' : 'MatMul',
      [dql.input[0] ?? '', base],
      [mul.output[0] ?? ''],
      conv ? n.attribute : [],
      { name: floatName(n) },
    );
    replace.set(n, [dq, op]);
    drop.add(cast).add(mul).add(scaleMul);
    dynamic.add(dql.input[0] ?? '');
    quantizers.add(dql);
  }

  // Embedding tables quantized per tensor: dequantize the table, then gather.
  for (const g of graph.node) {
    if (!is(g, 'Gather')) continue;
    const table = lookup.value(g.input[0] ?? '');
    if (!table || (table.type !== 'int8' && table.type !== 'uint8')) continue;
    const dq = onlyReader(g.output[0] ?? '');
    const scale = dq ? lookup.value(dq.input[1] ?? '') : undefined;
    if (!is(dq, 'DequantizeLinear') || !scale || scale.data.length !== 1)
      throw new QdqImportError(
        `${nodeLabel(g)}: gathers from the integer table '${g.input[0]}' but its output is not read by one per-tensor DequantizeLinear`,
      );
    const dequantized = `${g.input[0]}__dequantized`;
    replace.set(g, [
      makeNode(
        'DequantizeLinear',
        [g.input[0]!, ...dq.input.slice(1)],
        [dequantized],
        dq.attribute,
        {
          name: dq.name,
        },
      ),
      makeNode('Gather', [dequantized, ...g.input.slice(1)], [dq.output[0] ?? ''], g.attribute, {
        name: g.name,
      }),
    ]);
    drop.add(dq);
  }

  // A DynamicQuantizeLinear goes when every reader of its outputs went.
  const gone = (n: NodeProto) => drop.has(n) || replace.has(n);
  for (const q of quantizers) {
    for (const o of q.output)
      for (const r of readers.get(o) ?? [])
        if (!gone(r))
          throw new QdqImportError(
            `${nodeLabel(q)}: its output '${o}' is read by ${nodeLabel(r)}, which is not a quantized layer`,
          );
    drop.add(q);
  }
  for (const n of graph.node)
    if (is(n, 'DynamicQuantizeLinear') && !quantizers.has(n))
      throw new QdqImportError(`${nodeLabel(n)}: its output feeds no MatMulInteger or ConvInteger`);

  graph.node = graph.node.flatMap((n) => replace.get(n) ?? (drop.has(n) ? [] : [n]));
  graph.initializer.push(...inits);
  return { dynamic, dynamicQuantizeLinear: quantizers.size, integerOps: added.size, added };
}
