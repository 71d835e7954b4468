/** Operator-set versions a model imports. */
import { OnnxFormatError } from './errors.ts';
import type { ModelProto } from './gen/onnx_pb.ts';

/** True for the ONNX default operator domain (`''` or `'ai.onnx'`). */
export function isDefaultDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

/**
 * Imported version of an operator domain (`''`/`'ai.onnx'` are the same domain), or
 * `undefined` when the model does not import it.
 */
export function opsetVersion(model: ModelProto, domain: string): number | undefined {
  const wanted = isDefaultDomain(domain) ? isDefaultDomain : (d: string) => d === domain;
  let best: number | undefined;
  for (const o of model.opsetImport) {
    if (wanted(o.domain)) best = Math.max(best ?? 0, Number(o.version));
  }
  return best;
}

/**
 * Opset version of the default (ai.onnx) domain.
 * @throws OnnxFormatError `unsupported-opset` when the model does not import it.
 */
export function defaultOpset(model: ModelProto): number {
  const v = opsetVersion(model, '');
  if (v === undefined) {
    throw new OnnxFormatError('unsupported-opset', 'the model imports no default-domain opset');
  }
  return v;
}
