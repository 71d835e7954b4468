/**
 * A one-layer ONNX model around a lowered layer (tests, timing, debugging).
 */

import { makeGraph, makeModel, makeTensorValueInfo } from '../../onnx/builder.ts';
import type { ModelProto } from '../../onnx/gen/onnx_pb.ts';
import type { QuantizedLayer } from '../../quantize/layer.ts';
import { createLoweringContext } from './context.ts';
import { type LoweredLayer, type LowerLayerOptions, lowerLayer } from './layer.ts';

/** Options of {@link buildLayerModel}. */
export interface LayerModelOptions extends LowerLayerOptions {
  /** Default-domain opset (default 13, the lowest the lowering needs). */
  opset?: number;
  /** Also expose the quantized activation and the accumulator as graph outputs. */
  exposeIntermediates?: boolean;
}

/**
 * Model with float32 input `layer.input` of `inputDims` and float32 output `layer.output`,
 * computed by {@link lowerLayer}.
 */
export function buildLayerModel(
  layer: QuantizedLayer,
  inputDims: readonly number[],
  options: LayerModelOptions = {},
): { model: ModelProto; lowered: LoweredLayer } {
  const ctx = createLoweringContext([layer.input, layer.output]);
  const lowered = lowerLayer(ctx, layer, options);
  const outputs = [makeTensorValueInfo(layer.output, 'float32')];
  if (options.exposeIntermediates) {
    outputs.push(makeTensorValueInfo(lowered.quantized, 'uint8'));
    outputs.push(makeTensorValueInfo(lowered.accumulator, 'int32'));
  }
  const graph = makeGraph({
    name: `lowered_${layer.name}`,
    nodes: ctx.nodes,
    inputs: [makeTensorValueInfo(layer.input, 'float32', inputDims)],
    outputs,
    initializers: ctx.initializers,
  });
  return { model: makeModel(graph, { opset: options.opset ?? 13 }), lowered };
}
