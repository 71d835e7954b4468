/**
 * A reader for NumPy's `.npy` format (the file `numpy.save` writes), enough for calibration
 * data: format versions 1.0-3.0, C order, little-endian dtypes `<f4 <f8 <i8 <i4 <i2 <u2` and the
 * one-byte `|i1 |u1 |b1` (no float16, big-endian, complex or structured arrays).
 *
 * Layout (numpy.lib.format): magic `\x93NUMPY`, major and minor version bytes, a little-endian
 * header length (uint16 for 1.0, uint32 for 2.0/3.0), an ASCII (3.0: UTF-8) Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (50, 1, 28, 28), }` padded with spaces and
 * a newline, then the raw array data.
 */

/** dtypes this reader accepts, by their numpy `descr`, with element size in bytes. */
const DTYPES = {
  '<f4': 4,
  '<f8': 8,
  '<i8': 8,
  '<i4': 4,
  '<i2': 2,
  '|i1': 1,
  '|u1': 1,
  '<u2': 2,
  '|b1': 1,
} as const;

/** A numpy dtype descriptor this reader understands. */
export type NpyDtype = keyof typeof DTYPES;

/** A decoded array: its dtype, shape and values (int64 as bigint, everything else as number). */
export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Row-major values. */
  data:
    | Float32Array
    | Float64Array
    | BigInt64Array
    | Int32Array
    | Int16Array
    | Int8Array
    | Uint8Array
    | Uint16Array;
}

/** A file that is not a usable .npy array; the message is one line a user can act on. */
export class NpyError extends Error {
  override name = 'NpyError';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Decodes the bytes of one .npy file. Throws {@link NpyError}. */
export function readNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m))
    throw new NpyError('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError('truncated .npy header');
    headerLen = view.getUint32(8, true);
    start = 12;
  } else throw new NpyError(`unsupported .npy format version ${major}.${bytes[7]}`);
  if (start + headerLen > bytes.length) throw new NpyError('truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(start, start + headerLen),
  );
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new NpyError(`unreadable .npy header: ${header.trim().slice(0, 80)}`);
  if (fortran === 'True')
    throw new NpyError('Fortran-ordered array: save it C-ordered (np.ascontiguousarray)');
  // numpy writes '<u1' for some versions and '|u1' for others; one-byte types have no order.
  const norm = /^[<|=]([iub]1)$/.test(descr) ? `|${descr.slice(1)}` : descr.replace(/^=/, '<');
  if (!(norm in DTYPES))
    throw new NpyError(
      `dtype '${descr}' is not supported (use one of ${Object.keys(DTYPES).join(' ')}; big-endian and complex are not)`,
    );
  const dtype = norm as NpyDtype;
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(n) || n < 0) throw new NpyError(`bad .npy shape (${shapeText})`);
      return n;
    });
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const size = DTYPES[dtype] * count;
  if (bytes.length - offset < size)
    throw new NpyError(
      `truncated .npy data: shape (${shape.join(', ')}) needs ${size} bytes, the file has ${bytes.length - offset}`,
    );
  // A fresh, aligned buffer for the typed array.
  const buf = bytes.slice(offset, offset + size).buffer;
  const data =
    dtype === '<f4'
      ? new Float32Array(buf)
      : dtype === '<f8'
        ? new Float64Array(buf)
        : dtype === '<i8'
          ? new BigInt64Array(buf)
          : dtype === '<i4'
            ? new Int32Array(buf)
            : dtype === '<i2'
              ? new Int16Array(buf)
              : dtype === '|i1'
                ? new Int8Array(buf)
                : dtype === '<u2'
                  ? new Uint16Array(buf)
                  : new Uint8Array(buf);
  return { dtype, shape, data };
}

/** Encodes a .npy file (version 1.0), for tests and for users' tooling. */
export function writeNpy(
  dtype: '<f4' | '<i8' | '|u1',
  shape: readonly number[],
  data: ArrayLike<number> | BigInt64Array,
): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${dims}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = `${header}${' '.repeat(pad % 64)}\n`;
  const body =
    dtype === '<f4'
      ? new Uint8Array(Float32Array.from(data as ArrayLike<number>).buffer)
      : dtype === '<i8'
        ? new Uint8Array(
            (data instanceof BigInt64Array
              ? data
              : BigInt64Array.from(Array.from(data as ArrayLike<number>, (x) => BigInt(x)))
            ).buffer,
          )
        : Uint8Array.from(data as ArrayLike<number>);
  const out = new Uint8Array(10 + header.length + body.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}
