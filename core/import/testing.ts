/** Test helpers of core/import. */
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { QdqImportError } from './error.ts';
import { importQdq } from './qdq.ts';

/**
 * The message of the QdqImportError that importing `model` throws; any other outcome (the model
 * imports, or another error) is an error itself, so a test asserting the message fails.
 */
export function importRefusal(model: ModelProto): string {
  try {
    importQdq(model);
  } catch (err) {
    if (err instanceof QdqImportError) return err.message;
    throw err;
  }
  throw new Error('the model was imported');
}
