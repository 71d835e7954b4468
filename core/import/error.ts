/** A model that is not a quantized model the importer can take apart (the message says why). */
export class QdqImportError extends Error {
  override name = 'QdqImportError';
}
