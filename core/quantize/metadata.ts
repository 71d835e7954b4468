import { create } from '@bufbuild/protobuf';
import type { TargetId } from '../formats/targets.ts';
import { type ModelProto, StringStringEntryProtoSchema } from '../onnx/gen/onnx_pb.ts';
import type { QuantizedLayer } from './layer.ts';

/** What a quantized model file says about itself (ONNX metadata_props `cann_quant`). */
export interface QuantizedModelInfo {
  kind: 'emulation' | 'qdq';
  target: TargetId;
  /** Task the model was calibrated for, when it came from the zoo. */
  task?: string;
  layers: {
    name: string;
    kind: QuantizedLayer['kind'];
    output: string;
    weightSide?: 'left' | 'right';
  }[];
  skipped: { name: string; opType: string; reason: string }[];
  calibrationSamples: number;
  /** Which execution it needs: lowered emulators run as written; QDQ runs through ORT's fusions. */
  graphOptimization: 'disabled' | 'all';
  /**
   * The loss the pipeline predicted from unlabelled calibration data before any labelled
   * evaluation (points of the primary metric), when the model came from a pipeline run.
   */
  estimatedLossPoints?: number;
}

const KEY = 'cann_quant';

/** Attaches {@link QuantizedModelInfo} to a model (replacing an earlier one). */
export function setQuantizedInfo(model: ModelProto, info: QuantizedModelInfo): ModelProto {
  model.metadataProps = model.metadataProps.filter((p) => p.key !== KEY);
  model.metadataProps.push(
    create(StringStringEntryProtoSchema, { key: KEY, value: JSON.stringify(info) }),
  );
  return model;
}

/** Reads {@link QuantizedModelInfo}, or undefined for a model cann-quant did not write. */
export function getQuantizedInfo(model: ModelProto): QuantizedModelInfo | undefined {
  const p = model.metadataProps.find((e) => e.key === KEY);
  return p ? (JSON.parse(p.value) as QuantizedModelInfo) : undefined;
}
