/**
 * Concrete shapes of every tensor of a model for one input shape (batch 1 by default).
 *
 * The zoo models carry no value_info, so shapes are not read from the graph: the FP32 model is
 * run once on a zero input (or a given one) with every node output exposed as a graph output,
 * and the dims are read off the results. Pure (no `node:` imports); runs wherever
 * core/runtime runs. The result is a plain JSON-able object, so callers can cache it per model.
 */
import { create } from '@bufbuild/protobuf';
import { encodeModel, type ModelProto, tensorInfos, ValueInfoProtoSchema } from '../onnx/index.ts';
import { createSession } from '../runtime/index.ts';
import { allocate, elementCount, type TensorData, type TensorType } from '../tensor/index.ts';

/** Shape and element type of one tensor. */
export interface TensorShape {
  /** Pipeline element type (`float32`, `int64`, ...), or the ONNX type number when it has none. */
  type: TensorType | number;
  dims: number[];
}

/** Every tensor's shape by name: graph inputs, initializers, Constant outputs, node outputs. */
export interface ModelShapes {
  /** The input dims the shapes hold for. */
  inputs: Record<string, number[]>;
  tensors: Record<string, TensorShape>;
}

/** Options of {@link inferShapes}. */
export interface InferShapesOptions {
  /** Feeds to run (default: zeros of each input's declared shape). */
  feeds?: Record<string, TensorData>;
  /** Value of every symbolic or unknown input dim when feeds are not given (default 1). */
  freeDim?: number;
  /** Dims per input, overriding the declared shape (for models with several free dims). */
  inputDims?: Record<string, number[]>;
}

/**
 * Runs `model` once with every node output fetched and returns all tensor shapes. Outputs are
 * added to the graph untyped (name only): ORT infers their types, which `withOutputs` cannot do
 * for int64 shape tensors when the graph does not declare them.
 * @example const shapes = await inferShapes(prepared.model); shapes.tensors['logits'].dims // [1, 10]
 */
export async function inferShapes(
  model: ModelProto,
  options: InferShapesOptions = {},
): Promise<ModelShapes> {
  const graph = model.graph;
  if (!graph) throw new TypeError('inferShapes: model has no graph');
  const infos = tensorInfos(graph);
  const inits = new Set(graph.initializer.map((t) => t.name));
  const tensors: Record<string, TensorShape> = {};
  // Initializers are exact in the graph; everything else (Constant outputs too) is measured.
  for (const t of graph.initializer) {
    const info = infos.get(t.name)!;
    tensors[t.name] = { type: info.type ?? info.elemType, dims: t.dims.map(Number) };
  }
  const feeds: Record<string, TensorData> = { ...(options.feeds ?? {}) };
  const freeDim = options.freeDim ?? 1;
  for (const input of graph.input) {
    if (inits.has(input.name) || feeds[input.name]) continue;
    const info = infos.get(input.name);
    const type = info?.type;
    if (!type) throw new TypeError(`inferShapes: input '${input.name}' has no supported type`);
    const dims =
      options.inputDims?.[input.name] ??
      (info.dims ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : freeDim));
    feeds[input.name] = { type, dims, data: allocate(type, elementCount(dims)) };
  }

  const present = new Set(graph.output.map((o) => o.name));
  const extra = [];
  for (const node of graph.node)
    for (const o of node.output)
      if (o !== '' && !present.has(o) && !inits.has(o)) {
        extra.push(create(ValueInfoProtoSchema, { name: o }));
        present.add(o);
      }
  const copy: ModelProto = Object.assign(Object.create(Object.getPrototypeOf(model)), model, {
    graph: Object.assign(Object.create(Object.getPrototypeOf(graph)), graph, {
      output: [...graph.output, ...extra],
    }),
  });
  const session = await createSession(encodeModel(copy));
  try {
    const out = await session.run(feeds);
    for (const [name, t] of Object.entries(out))
      tensors[name] = { type: t.type, dims: [...t.dims] };
  } finally {
    await session.release();
  }
  const inputs: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(feeds)) {
    inputs[name] = [...t.dims];
    tensors[name] = { type: t.type, dims: [...t.dims] };
  }
  return { inputs, tensors };
}
