/**
 * ONNX models for the pipeline: decode/encode with pre-generated protobuf-es code
 * (workerd-safe, no runtime code generation), validation with typed errors, tensor
 * conversion, graph helpers and builders.
 */

export {
  attrFloat,
  attrFloats,
  attrGraph,
  attrInt,
  attrInts,
  attrString,
  attrStrings,
  attrTensor,
  getAttribute,
} from './attributes.ts';
export {
  type GraphParts,
  irVersionForOpset,
  type ModelOptions,
  makeAttrFloat,
  makeAttrFloats,
  makeAttrGraph,
  makeAttrInt,
  makeAttrInts,
  makeAttrString,
  makeAttrTensor,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  type NodeOptions,
} from './builder.ts';
export { type DecodeOptions, decodeModel, encodeModel } from './codec.ts';
export {
  type ConstantLookup,
  type ConstantOptions,
  constantLookup,
  constantNodeTensor,
  constantTensors,
  isConstantNode,
} from './constants.ts';
export { isOnnxFormatError, type OnnxErrorCode, OnnxFormatError } from './errors.ts';
/** Generated ONNX message types and schemas (onnx.proto, IR 10). */
export {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  type GraphProto,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  type OperatorSetIdProto,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
  type TypeProto,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from './gen/onnx_pb.ts';
export {
  consumers,
  definedNames,
  freeNames,
  implicitInputs,
  nodeInputs,
  nodeLabel,
  producers,
  subgraphs,
  topologicalOrder,
} from './graph.ts';
export { defaultOpset, isDefaultDomain, opsetVersion } from './opset.ts';
export { shallowCopy, withOutputs } from './outputs.ts';
export { type Dim, shapeDims, type TensorInfo, tensorInfos, tensorTypeInfo } from './shapes.ts';
export {
  dataTypeName,
  hasExternalData,
  onnxDataType,
  protoDims,
  tensorFromProto,
  tensorToProto,
  tensorTypeOf,
} from './tensor.ts';
export {
  MAX_IR_VERSION,
  MAX_OPSET,
  MIN_IR_VERSION,
  MIN_OPSET,
  validateModel,
} from './validate.ts';
