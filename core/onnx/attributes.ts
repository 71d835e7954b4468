/**
 * Typed attribute getters for NodeProto. Each returns the default (or `undefined`) when the
 * attribute is absent and throws {@link OnnxFormatError} `invalid-attribute` when the
 * attribute exists with another type.
 */
import { OnnxFormatError } from './errors.ts';
import {
  AttributeProto_AttributeType as A,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
} from './gen/onnx_pb.ts';
import { nodeLabel } from './graph.ts';

const utf8 = new TextDecoder();

/** The attribute called `name`, or `undefined`. */
export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

function typed(node: NodeProto, name: string, want: A): AttributeProto | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return undefined;
  // IR < 2 writers may omit `type`; accept UNDEFINED and trust the caller's expectation.
  if (a.type !== want && a.type !== A.UNDEFINED) {
    throw new OnnxFormatError(
      'invalid-attribute',
      `${nodeLabel(node)}: attribute '${name}' is ${A[a.type] ?? a.type}, expected ${A[want]}`,
    );
  }
  return a;
}

function toNumber(node: NodeProto, name: string, v: bigint): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    // INT64_MAX / INT64_MIN are common sentinels (e.g. Slice ends); keep them as +-Infinity.
    if (v >= 9223372036854775807n) return Number.POSITIVE_INFINITY;
    if (v <= -9223372036854775808n) return Number.NEGATIVE_INFINITY;
    throw new OnnxFormatError(
      'invalid-attribute',
      `${nodeLabel(node)}: attribute '${name}' value ${v} does not fit a JS number`,
    );
  }
  return n;
}

/** INT attribute as a number (INT64 max/min become +-Infinity). */
export function attrInt(node: NodeProto, name: string): number | undefined;
/** INT attribute as a number, or `fallback` when absent. */
export function attrInt(node: NodeProto, name: string, fallback: number): number;
export function attrInt(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = typed(node, name, A.INT);
  return a === undefined ? fallback : toNumber(node, name, a.i);
}

/** INTS attribute as numbers. */
export function attrInts(node: NodeProto, name: string): number[] | undefined;
/** INTS attribute as numbers, or `fallback` when absent. */
export function attrInts(node: NodeProto, name: string, fallback: readonly number[]): number[];
export function attrInts(
  node: NodeProto,
  name: string,
  fallback?: readonly number[],
): number[] | undefined {
  const a = typed(node, name, A.INTS);
  if (a === undefined) return fallback === undefined ? undefined : [...fallback];
  return a.ints.map((v) => toNumber(node, name, v));
}

/** FLOAT attribute. */
export function attrFloat(node: NodeProto, name: string): number | undefined;
/** FLOAT attribute, or `fallback` when absent. */
export function attrFloat(node: NodeProto, name: string, fallback: number): number;
export function attrFloat(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = typed(node, name, A.FLOAT);
  return a === undefined ? fallback : a.f;
}

/** FLOATS attribute. */
export function attrFloats(node: NodeProto, name: string): number[] | undefined;
/** FLOATS attribute, or `fallback` when absent. */
export function attrFloats(node: NodeProto, name: string, fallback: readonly number[]): number[];
export function attrFloats(
  node: NodeProto,
  name: string,
  fallback?: readonly number[],
): number[] | undefined {
  const a = typed(node, name, A.FLOATS);
  if (a === undefined) return fallback === undefined ? undefined : [...fallback];
  return [...a.floats];
}

/** STRING attribute decoded as UTF-8. */
export function attrString(node: NodeProto, name: string): string | undefined;
/** STRING attribute decoded as UTF-8, or `fallback` when absent. */
export function attrString(node: NodeProto, name: string, fallback: string): string;
export function attrString(node: NodeProto, name: string, fallback?: string): string | undefined {
  const a = typed(node, name, A.STRING);
  return a === undefined ? fallback : utf8.decode(a.s);
}

/** STRINGS attribute decoded as UTF-8. */
export function attrStrings(node: NodeProto, name: string): string[] | undefined {
  const a = typed(node, name, A.STRINGS);
  return a?.strings.map((s) => utf8.decode(s));
}

/** TENSOR attribute (e.g. Constant `value`), or `fallback` when absent. */
export function attrTensor(
  node: NodeProto,
  name: string,
  fallback?: TensorProto,
): TensorProto | undefined {
  const a = typed(node, name, A.TENSOR);
  return a?.t ?? fallback;
}

/** GRAPH attribute (If `then_branch`/`else_branch`, Loop/Scan `body`). */
export function attrGraph(node: NodeProto, name: string): GraphProto | undefined {
  return typed(node, name, A.GRAPH)?.g;
}
