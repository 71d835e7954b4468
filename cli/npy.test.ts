import { describe, expect, it } from 'vitest';
import { NpyError, readNpy, writeNpy } from './npy.ts';

/** A .npy file with a hand-written header (what numpy.save writes for these dtypes). */
function npy(header: string, body: Uint8Array, major = 1): Uint8Array {
  const h = new TextEncoder().encode(header);
  const pre = major === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const v = new DataView(out.buffer);
  if (major === 1) v.setUint16(8, h.length, true);
  else v.setUint32(8, h.length, true);
  out.set(h, pre);
  out.set(body, pre + h.length);
  return out;
}

describe('readNpy', () => {
  it('round-trips float32, int64 and uint8 arrays written by writeNpy', () => {
    const f = readNpy(writeNpy('<f4', [2, 3], [1, 2, 3, 4, 5, 6.5]));
    expect(f.dtype).toBe('<f4');
    expect(f.shape).toEqual([2, 3]);
    expect([...f.data]).toEqual([1, 2, 3, 4, 5, 6.5]);
    const i = readNpy(writeNpy('<i8', [3], [7, -1, 2 ** 40]));
    expect(i.shape).toEqual([3]);
    expect([...(i.data as BigInt64Array)]).toEqual([7n, -1n, 2n ** 40n]);
    const u = readNpy(writeNpy('|u1', [1, 2, 2], [0, 1, 254, 255]));
    expect(u.shape).toEqual([1, 2, 2]);
    expect([...u.data]).toEqual([0, 1, 254, 255]);
    // Header + padding is a multiple of 64 bytes, like numpy's.
    expect((writeNpy('<f4', [5], [0, 0, 0, 0, 0]).length - 20) % 64).toBe(0);
  });

  it('reads version 2.0 headers, float64, scalars and unaligned buffers', () => {
    const body = new Uint8Array(Float64Array.from([0.25, -3]).buffer);
    const a = readNpy(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", body, 2));
    expect(a.dtype).toBe('<f8');
    expect([...a.data]).toEqual([0.25, -3]);
    const s = readNpy(
      npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n",
        new Uint8Array(Float32Array.of(3).buffer),
      ),
    );
    expect(s.shape).toEqual([]);
    expect([...s.data]).toEqual([3]);
    // The same bytes at an odd offset inside a larger buffer.
    const bytes = writeNpy('<f4', [2], [1.5, 2.5]);
    const big = new Uint8Array(bytes.length + 1);
    big.set(bytes, 1);
    expect([...readNpy(big.subarray(1)).data]).toEqual([1.5, 2.5]);
  });

  it('one-line errors for what it cannot read', () => {
    const four = new Uint8Array(16);
    expect(() => readNpy(new TextEncoder().encode('{"not": "npy"}'))).toThrow(
      /no \\x93NUMPY magic/,
    );
    expect(() =>
      readNpy(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", four)),
    ).toThrow(/Fortran-ordered/);
    expect(() =>
      readNpy(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }\n", four)),
    ).toThrow(/dtype '>f4' is not supported/);
    expect(() =>
      readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n", four)),
    ).toThrow(/truncated .npy data: shape \(5\) needs 20 bytes, the file has 16/);
    expect(() => readNpy(npy("{'descr': '<f4'}\n", four))).toThrow(NpyError);
  });
});
