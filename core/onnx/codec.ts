/**
 * Bytes <-> ModelProto with the pre-generated protobuf-es code in ./gen (no runtime code
 * generation, so it runs in Cloudflare workerd too).
 *
 * Round trips are byte-identical for models written by the reference (C++/Python) protobuf
 * serializer, which is what PyTorch and onnx use: protobuf-es writes fields in field-number
 * order, keeps proto2 presence (explicit defaults are re-emitted), packs exactly the fields
 * onnx.proto marks `[packed = true]`, and keeps unknown fields (re-emitted at the end of
 * their message, which is where the reference serializer puts them too).
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { OnnxFormatError } from './errors.ts';
import { type ModelProto, ModelProtoSchema } from './gen/onnx_pb.ts';
import { validateModel } from './validate.ts';

/** Options of {@link decodeModel}. */
export interface DecodeOptions {
  /**
   * Run {@link validateModel} after decoding (default true). Turn off only to inspect
   * models outside the supported IR/opset range.
   */
  validate?: boolean;
}

/** Wire type each known ModelProto field must use (0 varint, 2 length-delimited). */
const MODEL_FIELDS = new Map<number, number>([
  [1, 0], // ir_version
  [2, 2], // producer_name
  [3, 2], // producer_version
  [4, 2], // domain
  [5, 0], // model_version
  [6, 2], // doc_string
  [7, 2], // graph
  [8, 2], // opset_import
  [14, 2], // metadata_props
  [20, 2], // training_info
  [25, 2], // functions
]);

/** Highest field number accepted as an unknown (future) ModelProto field. */
const MAX_UNKNOWN_FIELD = 1000;

type Scan = { ok: true } | { ok: false; code: 'truncated' | 'not-onnx'; reason: string };

/**
 * Walks the top-level fields of a ModelProto without decoding them, to tell a truncated
 * model (a field runs past the end) from bytes that are not a ModelProto at all.
 */
function scanTopLevel(bytes: Uint8Array): Scan {
  let pos = 0;
  const varint = (): number | undefined => {
    let result = 0;
    let scale = 1;
    for (let k = 0; k < 10; k++) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    return Number.NaN;
  };
  while (pos < bytes.length) {
    const at = pos;
    const tag = varint();
    if (tag === undefined)
      return { ok: false, code: 'truncated', reason: `field tag at byte ${at}` };
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (!Number.isFinite(tag) || field === 0) {
      return { ok: false, code: 'not-onnx', reason: `invalid field tag at byte ${at}` };
    }
    const expected = MODEL_FIELDS.get(field);
    if (
      expected !== undefined
        ? wire !== expected
        : field > MAX_UNKNOWN_FIELD || wire > 5 || wire === 3 || wire === 4
    ) {
      return {
        ok: false,
        code: 'not-onnx',
        reason: `field ${field} with wire type ${wire} at byte ${at} is not part of an ONNX model`,
      };
    }
    if (wire === 0) {
      const v = varint();
      if (v === undefined)
        return { ok: false, code: 'truncated', reason: `field ${field} at byte ${at}` };
      if (Number.isNaN(v))
        return { ok: false, code: 'not-onnx', reason: `invalid varint at byte ${at}` };
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || (Number.isFinite(len) && pos + len > bytes.length)) {
        return {
          ok: false,
          code: 'truncated',
          reason: `field ${field} at byte ${at} needs ${len ?? '?'} bytes, ${bytes.length - pos} left`,
        };
      }
      if (Number.isNaN(len))
        return { ok: false, code: 'not-onnx', reason: `invalid length at byte ${at}` };
      pos += len;
    } else {
      const size = wire === 1 ? 8 : 4;
      if (pos + size > bytes.length)
        return { ok: false, code: 'truncated', reason: `field ${field} at byte ${at}` };
      pos += size;
    }
  }
  return { ok: true };
}

/**
 * Decodes an ONNX model and (by default) validates it with {@link validateModel}.
 * Never hangs and never throws anything but {@link OnnxFormatError} for bad bytes.
 * The returned model's `bytes` fields (e.g. `raw_data` of initializers) are views into
 * `bytes` (protobuf-es does not copy them): do not overwrite `bytes` while the model is used.
 * @throws OnnxFormatError `empty`, `truncated`, `not-onnx`, or a validation code
 *   (`unsupported-ir`, `unsupported-opset`, `invalid-graph`, `external-data`).
 * @example const model = decodeModel(new Uint8Array(await file.arrayBuffer()));
 */
export function decodeModel(bytes: Uint8Array, options: DecodeOptions = {}): ModelProto {
  if (bytes.length === 0) {
    throw new OnnxFormatError('empty', 'the model file is empty (0 bytes)');
  }
  const scan = scanTopLevel(bytes);
  if (!scan.ok) {
    throw new OnnxFormatError(
      scan.code,
      scan.code === 'truncated'
        ? `the model file is truncated (${bytes.length} bytes): ${scan.reason}`
        : `not an ONNX model: ${scan.reason}`,
    );
  }
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const truncated = /premature EOF/i.test(why);
    throw new OnnxFormatError(
      truncated ? 'truncated' : 'not-onnx',
      truncated
        ? `the model file is truncated or corrupt (${bytes.length} bytes): ${why}`
        : `not a valid ONNX model: ${why}`,
      { cause },
    );
  }
  if (options.validate !== false) validateModel(model);
  return model;
}

/**
 * Serializes a model. For a model returned by {@link decodeModel} and left unchanged the
 * bytes are identical to the input (see module notes).
 * @example const bytes = encodeModel(withOutputs(model, ['conv1_out']));
 */
export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}
