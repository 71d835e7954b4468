import { clone } from '@bufbuild/protobuf';
import type { Target } from '../formats/targets.ts';
import { makeAttrInt, makeNode } from '../onnx/builder.ts';
import {
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  type TensorProto,
} from '../onnx/gen/onnx_pb.ts';
import { topologicalOrder } from '../onnx/graph.ts';
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
  for (const node of topologicalOrder(graph)) {
    const l = byNode.get(node);
    if (!l) {
      if (!replaced.has(node)) nodes.push(node);
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
