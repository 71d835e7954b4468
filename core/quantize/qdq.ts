import { clone } from '@bufbuild/protobuf';
import { isDynamic, type Target } from '../formats/targets.ts';
import {
  makeAttrGraph,
  makeAttrInt,
  makeGraph,
  makeNode,
  makeTensorValueInfo,
} from '../onnx/builder.ts';
import {
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  type TensorProto,
} from '../onnx/gen/onnx_pb.ts';
import { topologicalOrder } from '../onnx/graph.ts';
import { tensorInfos } from '../onnx/shapes.ts';
import { tensorToProto } from '../onnx/tensor.ts';
import type { TensorData } from '../tensor/index.ts';
import type { QuantizedLayer } from './layer.ts';
import type { ActivationParams } from './params.ts';
import { type PreparedModel, pruneUnusedInitializers } from './prepare.ts';

/** Output quantization of each layer (what ORT needs to fuse DQ -> op -> Q into QLinear ops). */
export type OutputParams = ReadonlyMap<string, ActivationParams>;

const intTensor = (
  type: 'int8' | 'uint8',
  dims: number[],
  values: ArrayLike<number>,
): TensorData =>
  type === 'int8'
    ? { type, dims, data: Int8Array.from(values) }
    : { type, dims, data: Uint8Array.from(values) };

/**
 * Exports a standard QDQ ONNX model (QuantizeLinear/DequantizeLinear around each quantized
 * layer, int8 per-channel weights with `axis`, int32 bias) with the target's integer scheme.
 * Any ONNX runtime can execute it; onnxruntime fuses the DQ -> Conv/MatMul -> Q units into its
 * integer kernels (QLinearConv, QLinearMatMul), which is what the `cpu-wasm` target measures.
 * It captures the scheme but not a chip's rounding details (those live in the emulation model).
 */
export function buildQdqModel(
  prepared: PreparedModel,
  layers: readonly QuantizedLayer[],
  target: Target,
  outputParams?: OutputParams,
): ModelProto {
  const model = clone(ModelProtoSchema, prepared.model);
  // The QDQ model is this tool's product and names it as its producer (cann-quant import reads
  // a file's producer as the framework that quantized it).
  model.producerName = 'cann-quant';
  model.producerVersion = '';
  const graph = model.graph!;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const byNode = new Map<NodeProto, QuantizedLayer>();
  const replaced = new Set<NodeProto>();
  const candidates = new Map(prepared.layers.map((c) => [c.name, c]));
  for (const l of layers) {
    const c = candidates.get(l.name)!;
    const orig = c.nodes.map((n) => graph.node[prepared.model.graph!.node.indexOf(n)]!);
    byNode.set(orig[0]!, l);
    for (const n of orig) replaced.add(n);
  }
  const actType = target.activations.type === 'uint8' ? 'uint8' : 'int8';
  const wType = target.weights.type === 'uint8' ? 'uint8' : 'int8';
  const quantized = new Map<string, string>();
  const perTensor = new Map<string, number>();
  const qdq = (tensor: string, p: ActivationParams, baseTag: string): string => {
    const key = `${tensor}|${p.scale}|${p.zeroPoint}`;
    const hit = quantized.get(key);
    if (hit) return hit;
    // A tensor read by several layers with different parameters (e.g. per-layer methods) gets
    // one Q/DQ pair per parameter set, each with its own names.
    const n = perTensor.get(tensor) ?? 0;
    perTensor.set(tensor, n + 1);
    const tag = n === 0 ? baseTag : `${baseTag}${n}`;
    const s = `${tensor}__${tag}_scale`;
    const z = `${tensor}__${tag}_zp`;
    inits.push(tensorToProto(s, { type: 'float32', dims: [], data: new Float32Array([p.scale]) }));
    inits.push(tensorToProto(z, intTensor(actType, [], [p.zeroPoint])));
    nodes.push(makeNode('QuantizeLinear', [tensor, s, z], [`${tensor}__${tag}_q`]));
    nodes.push(
      makeNode('DequantizeLinear', [`${tensor}__${tag}_q`, s, z], [`${tensor}__${tag}_dq`]),
    );
    quantized.set(key, `${tensor}__${tag}_dq`);
    return `${tensor}__${tag}_dq`;
  };
  const dynamic = isDynamic(target);
  const infos = dynamic ? tensorInfos(graph) : undefined;
  for (const node of topologicalOrder(graph)) {
    const l = byNode.get(node);
    if (!l) {
      if (!replaced.has(node)) nodes.push(node);
      continue;
    }
    if (dynamic) {
      // Axis 0 is the batch, except for a left-constant MatMul's input of rank 2 (W @ X, X [K, N])
      // or of unknown rank: that one is quantized whole.
      const rank = infos!.get(l.input)?.dims?.length ?? 0;
      const perSample = l.kind !== 'matmul' || l.weightSide !== 'left' || rank >= 3;
      const d = dynamicLayer(l, node, perSample);
      nodes.push(...d.nodes);
      inits.push(...d.initializers);
      continue;
    }
    const x = qdq(l.input, l.act, 'in');
    const channels = l.deqScale.length;
    const w = l.weight;
    const wq = `${l.name}__w_q`;
    const ws = `${l.name}__w_scale`;
    const wz = `${l.name}__w_zp`;
    const perChannel = w.scales.length > 1;
    inits.push(tensorToProto(wq, intTensor(wType, [...w.dims], w.q)));
    inits.push(
      tensorToProto(ws, {
        type: 'float32',
        dims: perChannel ? [w.scales.length] : [],
        data: Float32Array.from(w.scales),
      }),
    );
    inits.push(
      tensorToProto(wz, intTensor(wType, perChannel ? [w.zeroPoints.length] : [], w.zeroPoints)),
    );
    nodes.push(
      makeNode(
        'DequantizeLinear',
        [wq, ws, wz],
        [`${l.name}__w_dq`],
        perChannel ? [makeAttrInt('axis', w.axis)] : [],
      ),
    );
    const bq = `${l.name}__b_q`;
    const bs = `${l.name}__b_scale`;
    inits.push(tensorToProto(bq, { type: 'int32', dims: [channels], data: l.bias }));
    inits.push(
      tensorToProto(bs, { type: 'float32', dims: [channels], data: Float32Array.from(l.deqScale) }),
    );
    inits.push(
      tensorToProto(`${l.name}__b_zp`, {
        type: 'int32',
        dims: [channels],
        data: new Int32Array(channels),
      }),
    );
    nodes.push(
      makeNode(
        'DequantizeLinear',
        [bq, bs, `${l.name}__b_zp`],
        [`${l.name}__b_dq`],
        [makeAttrInt('axis', 0)],
      ),
    );
    const out = outputParams?.get(l.name) ? `${l.output}__raw` : l.output;
    if (l.kind === 'conv') {
      nodes.push(
        makeNode('Conv', [x, `${l.name}__w_dq`, `${l.name}__b_dq`], [out], [...node.attribute]),
      );
    } else if (l.kind === 'gemm') {
      nodes.push(
        makeNode(
          'Gemm',
          [x, `${l.name}__w_dq`, `${l.name}__b_dq`],
          [out],
          [makeAttrInt('transB', 1)],
        ),
      );
    } else {
      const mm = `${l.name}__mm`;
      const inputs = l.weightSide === 'left' ? [`${l.name}__w_dq`, x] : [x, `${l.name}__w_dq`];
      nodes.push(makeNode('MatMul', inputs, [mm]));
      if (l.weightSide === 'left') {
        // Bias of a left-constant MatMul is per row: reshape [M] -> [M, 1] for broadcasting.
        const shape = `${l.name}__b_shape`;
        inits.push(
          tensorToProto(shape, {
            type: 'int64',
            dims: [2],
            data: new BigInt64Array([BigInt(channels), 1n]),
          }),
        );
        nodes.push(makeNode('Reshape', [`${l.name}__b_dq`, shape], [`${l.name}__b_col`]));
        nodes.push(makeNode('Add', [mm, `${l.name}__b_col`], [out]));
      } else {
        nodes.push(makeNode('Add', [mm, `${l.name}__b_dq`], [out]));
      }
    }
    const op = outputParams?.get(l.name);
    if (op) {
      const dq = qdq(out, op, 'out');
      nodes.push(makeNode('Identity', [dq], [l.output]));
    }
  }
  graph.node = nodes;
  graph.initializer.push(...inits);
  pruneUnusedInitializers(model);
  return model;
}

/**
 * One layer of a dynamic target, as ONNX Runtime's `quantize_dynamic` writes it:
 * DynamicQuantizeLinear(x) -> MatMulInteger / ConvInteger (uint8 x int8, exact int32) -> Cast
 * -> Mul(scale_x * scale_w) -> Add(float bias). With `perSample` the unit runs inside a Scan
 * over the batch axis (each sample unsqueezed to a batch of one), so every sample gets its own
 * scale and zero point, as a batch-1 deployment computes them, whatever batch it runs in.
 * Without it (a left-constant MatMul whose input has no batch axis) the whole input is one tensor.
 */
function dynamicLayer(
  l: QuantizedLayer,
  node: NodeProto,
  perSample: boolean,
): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const w = l.weight;
  const channels = l.deqScale.length;
  if (!l.floatBias) throw new RangeError(`layer '${l.name}': a dynamic layer needs its float bias`);
  if (w.zeroPoints.some((z) => z !== 0))
    throw new RangeError(`layer '${l.name}': dynamic export takes symmetric weights only`);
  const p = `${l.name}__dyn`;
  const inits: TensorProto[] = [];
  // Weight in the integer op's layout: Gemm's [N, K] transposed to MatMulInteger's [K, N].
  let wq: Int8Array = Int8Array.from(w.q);
  let wDims = [...w.dims];
  if (l.kind === 'gemm') {
    const [n, k] = wDims as [number, number];
    wq = new Int8Array(n * k);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) wq[j * n + i] = w.q[i * k + j]!;
    wDims = [k, n];
  }
  // Per output channel scales and bias, shaped to broadcast over the accumulator.
  const channelDims =
    l.kind === 'conv'
      ? [channels, 1, 1]
      : l.kind === 'matmul' && l.weightSide === 'left'
        ? [channels, 1]
        : [channels];
  const scales = Float32Array.from(
    { length: channels },
    (_, c) => w.scales[w.scales.length === 1 ? 0 : c]!,
  );
  inits.push(tensorToProto(`${p}_w`, { type: 'int8', dims: wDims, data: wq }));
  inits.push(tensorToProto(`${p}_wzp`, { type: 'int8', dims: [], data: new Int8Array(1) }));
  inits.push(tensorToProto(`${p}_wscale`, { type: 'float32', dims: channelDims, data: scales }));
  inits.push(
    tensorToProto(`${p}_bias`, {
      type: 'float32',
      dims: channelDims,
      data: Float32Array.from(l.floatBias),
    }),
  );
  const x = perSample ? `${p}_x1` : l.input;
  const acc = `${p}_acc`;
  const integerOp =
    l.kind === 'conv'
      ? makeNode(
          'ConvInteger',
          [`${p}_xq`, `${p}_w`, `${p}_xzp`, `${p}_wzp`],
          [acc],
          [...node.attribute],
        )
      : l.kind === 'matmul' && l.weightSide === 'left'
        ? makeNode('MatMulInteger', [`${p}_w`, `${p}_xq`, `${p}_wzp`, `${p}_xzp`], [acc])
        : makeNode('MatMulInteger', [`${p}_xq`, `${p}_w`, `${p}_xzp`, `${p}_wzp`], [acc]);
  const y = perSample ? `${p}_y1` : l.output;
  const unit = [
    makeNode('DynamicQuantizeLinear', [x], [`${p}_xq`, `${p}_xs`, `${p}_xzp`]),
    integerOp,
    makeNode('Cast', [acc], [`${p}_accf`], [makeAttrInt('to', 1)]),
    makeNode('Mul', [`${p}_xs`, `${p}_wscale`], [`${p}_scale`]),
    makeNode('Mul', [`${p}_accf`, `${p}_scale`], [`${p}_deq`]),
    makeNode('Add', [`${p}_deq`, `${p}_bias`], [y]),
  ];
  if (!perSample) return { nodes: unit, initializers: inits };
  // Scan body: one sample (the batch axis removed) -> a batch of one -> the unit -> one sample.
  inits.push(
    tensorToProto(`${p}_axis0`, { type: 'int64', dims: [1], data: new BigInt64Array([0n]) }),
  );
  const body = makeGraph({
    name: `${p}_body`,
    nodes: [
      makeNode('Unsqueeze', [`${p}_xi`, `${p}_axis0`], [x]),
      ...unit,
      makeNode('Squeeze', [y, `${p}_axis0`], [`${p}_yi`]),
    ],
    inputs: [makeTensorValueInfo(`${p}_xi`, 'float32')],
    outputs: [makeTensorValueInfo(`${p}_yi`, 'float32')],
  });
  return {
    nodes: [
      makeNode(
        'Scan',
        [l.input],
        [l.output],
        [makeAttrGraph('body', body), makeAttrInt('num_scan_inputs', 1)],
        { name: p },
      ),
    ],
    initializers: inits,
  };
}
