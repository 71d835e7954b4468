/**
 * Small constructors for ONNX messages, for tests and for code that emits graphs
 * (lowering, calibration). Messages are created with protobuf-es `create`, so they encode
 * exactly like decoded ones.
 */
import { create } from '@bufbuild/protobuf';
import type { TensorType } from '../tensor/index.ts';
import {
  AttributeProto_AttributeType as A,
  type AttributeProto,
  AttributeProtoSchema,
  type GraphProto,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  type TensorProto,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from './gen/onnx_pb.ts';
import type { Dim } from './shapes.ts';
import { onnxDataType } from './tensor.ts';

const utf8 = new TextEncoder();

/** INT attribute. */
export function makeAttrInt(name: string, value: number | bigint): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.INT, i: BigInt(value) });
}

/** INTS attribute. */
export function makeAttrInts(name: string, values: readonly (number | bigint)[]): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.INTS, ints: values.map((v) => BigInt(v)) });
}

/** FLOAT attribute. */
export function makeAttrFloat(name: string, value: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.FLOAT, f: value });
}

/** FLOATS attribute. */
export function makeAttrFloats(name: string, values: readonly number[]): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.FLOATS, floats: [...values] });
}

/** STRING attribute (UTF-8). */
export function makeAttrString(name: string, value: string): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.STRING, s: utf8.encode(value) });
}

/** TENSOR attribute, e.g. `makeAttrTensor('value', tensorToProto('', t))` for Constant. */
export function makeAttrTensor(name: string, value: TensorProto): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.TENSOR, t: value });
}

/** GRAPH attribute, e.g. If `then_branch`. */
export function makeAttrGraph(name: string, value: GraphProto): AttributeProto {
  return create(AttributeProtoSchema, { name, type: A.GRAPH, g: value });
}

/** Optional fields of {@link makeNode}. */
export interface NodeOptions {
  /** Node name. */
  name?: string;
  /** Operator domain (default: the ONNX domain, written as absent). */
  domain?: string;
}

/**
 * A node. Use `''` for an omitted optional input.
 * @example makeNode('Conv', ['x', 'w', 'b'], ['y'], [makeAttrInts('pads', [1, 1, 1, 1])], { name: 'conv1' })
 */
export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: readonly AttributeProto[] = [],
  options: NodeOptions = {},
): NodeProto {
  const node = create(NodeProtoSchema, {
    opType,
    input: [...inputs],
    output: [...outputs],
    attribute: [...attributes],
  });
  if (options.name !== undefined) node.name = options.name;
  if (options.domain !== undefined) node.domain = options.domain;
  return node;
}

/**
 * A tensor ValueInfoProto. `dims`: numbers are fixed sizes, strings symbolic sizes, `null`
 * unknown; omit `dims` for an unknown rank.
 * @example makeTensorValueInfo('input', 'float32', ['batch', 1, 28, 28])
 */
export function makeTensorValueInfo(
  name: string,
  elemType: TensorType | number,
  dims?: readonly Dim[],
): ValueInfoProto {
  const tensorType = create(TypeProto_TensorSchema, {
    elemType: typeof elemType === 'number' ? elemType : onnxDataType(elemType),
  });
  if (dims !== undefined) {
    tensorType.shape = create(TensorShapeProtoSchema, {
      dim: dims.map((d) =>
        create(
          TensorShapeProto_DimensionSchema,
          d === null
            ? {}
            : typeof d === 'number'
              ? { value: { case: 'dimValue', value: BigInt(d) } }
              : { value: { case: 'dimParam', value: d } },
        ),
      ),
    });
  }
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }),
  });
}

/** Parts of {@link makeGraph}. */
export interface GraphParts {
  /** Graph name (default `'main'`). */
  name?: string;
  /** Nodes, in topological order. */
  nodes: readonly NodeProto[];
  /** Graph inputs (runtime feeds). */
  inputs: readonly ValueInfoProto[];
  /** Graph outputs. */
  outputs: readonly ValueInfoProto[];
  /** Weights, e.g. from `tensorToProto`. */
  initializers?: readonly TensorProto[];
  /** Types of intermediate tensors. */
  valueInfo?: readonly ValueInfoProto[];
}

/** A graph. */
export function makeGraph(parts: GraphParts): GraphProto {
  return create(GraphProtoSchema, {
    name: parts.name ?? 'main',
    node: [...parts.nodes],
    input: [...parts.inputs],
    output: [...parts.outputs],
    initializer: [...(parts.initializers ?? [])],
    valueInfo: [...(parts.valueInfo ?? [])],
  });
}

/**
 * The lowest IR version that supports a default-domain opset (opset 21 -> IR 10), which is
 * what `onnx.helper.make_model` picks too.
 */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

/** Options of {@link makeModel}. */
export interface ModelOptions {
  /** Default-domain opset (default 17). */
  opset?: number;
  /** IR version (default {@link irVersionForOpset}(opset)). */
  irVersion?: number;
  /** Extra operator domains, e.g. `[{ domain: 'com.microsoft', version: 1 }]`. */
  extraOpsets?: readonly { domain: string; version: number }[];
  /** `producer_name` (default `'cann-quant'`). */
  producerName?: string;
}

/**
 * A model around `graph`.
 * @example encodeModel(makeModel(makeGraph({ nodes, inputs, outputs }), { opset: 13 }))
 */
export function makeModel(graph: GraphProto, options: ModelOptions = {}): ModelProto {
  const opset = options.opset ?? 17;
  return create(ModelProtoSchema, {
    irVersion: BigInt(options.irVersion ?? irVersionForOpset(opset)),
    producerName: options.producerName ?? 'cann-quant',
    graph,
    opsetImport: [
      create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) }),
      ...(options.extraOpsets ?? []).map((o) =>
        create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(o.version) }),
      ),
    ],
  });
}
