/**
 * IDX files (the MNIST / Fashion-MNIST container): a big-endian header of magic, element type
 * and dimensions, then the raw elements. Gzip is undone with the web-standard
 * DecompressionStream, available in Node, workerd and browsers alike (a DataSource may bring a
 * faster inflater of its own: source.ts, `readGunzipped`).
 */

/** A decoded IDX array of unsigned bytes (the only element type the MNIST family uses). */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Raised for bytes that are not a well-formed IDX file. */
export class IdxFormatError extends Error {
  override name = 'IdxFormatError';
}

/** Gunzips `bytes` (RFC 1952) with DecompressionStream. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Parses an uncompressed IDX file of unsigned bytes (type code 0x08). */
export function parseIdx(bytes: Uint8Array): IdxArray {
  if (bytes.length < 4) throw new IdxFormatError(`IDX: ${bytes.length} bytes is too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0)
    throw new IdxFormatError('IDX: magic must start with two zero bytes');
  const type = view.getUint8(2);
  if (type !== 0x08)
    throw new IdxFormatError(
      `IDX: element type 0x${type.toString(16)} unsupported (want 0x08, ubyte)`,
    );
  const rank = view.getUint8(3);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) throw new IdxFormatError('IDX: truncated header');
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i);
    dims.push(d);
    count *= d;
  }
  if (bytes.length !== headerBytes + count) {
    throw new IdxFormatError(
      `IDX: expected ${headerBytes + count} bytes for [${dims}], got ${bytes.length}`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}
