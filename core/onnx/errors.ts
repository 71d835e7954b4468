/**
 * The one error type the ONNX layer throws for bad input. Callers (CLI, upload endpoint)
 * switch on `code` and show `message` to the user as is.
 */

/** Why a model or tensor was rejected. */
export type OnnxErrorCode =
  /** Zero bytes. */
  | 'empty'
  /** The bytes end in the middle of a protobuf field. */
  | 'truncated'
  /** The bytes are not a protobuf ModelProto at all (random bytes, JSON, an image...). */
  | 'not-onnx'
  /** `ir_version` missing or outside the supported range. */
  | 'unsupported-ir'
  /** No default-domain opset import, or its version is outside the supported range. */
  | 'unsupported-opset'
  /** Structural problem: no graph, dangling tensor reference, duplicate producer, cycle. */
  | 'invalid-graph'
  /** A tensor keeps its data in an external file, which this code cannot reach. */
  | 'external-data'
  /** A tensor whose data disagrees with its dims, or that has no data at all. */
  | 'invalid-tensor'
  /** A tensor element type that `TensorData` cannot carry (string, bfloat16, float8...). */
  | 'unsupported-dtype'
  /** An attribute of the wrong type for the getter that asked for it. */
  | 'invalid-attribute';

/**
 * A model or tensor that cannot be used, with a machine-readable `code` and a sentence
 * a person can act on.
 * @example
 * try { decodeModel(bytes) } catch (e) { if (e instanceof OnnxFormatError && e.code === 'empty') ... }
 */
export class OnnxFormatError extends Error {
  /** Machine-readable reason. */
  readonly code: OnnxErrorCode;

  /**
   * @param code machine-readable reason
   * @param message readable explanation
   * @param options standard `ErrorOptions`, e.g. `{ cause }` for the underlying decoder error
   */
  constructor(code: OnnxErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OnnxFormatError';
    this.code = code;
  }
}

/** True when `e` is an {@link OnnxFormatError} (optionally with the given code). */
export function isOnnxFormatError(e: unknown, code?: OnnxErrorCode): e is OnnxFormatError {
  return e instanceof OnnxFormatError && (code === undefined || e.code === code);
}
