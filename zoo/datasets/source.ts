/**
 * Where a dataset's raw files come from. Readers in zoo/ are pure: they take bytes from a
 * `DataSource`, never from `node:fs`, so they run unchanged in Node, workerd and browsers.
 * The Node adapter (cli/) maps logical names onto the Debian and npm install locations.
 */

import { gunzip } from './idx.ts';

export interface DataSource {
  /** Reads one raw file by logical name, e.g. `fashion-mnist/t10k-images-idx3-ubyte.gz`. */
  read(name: string): Promise<Uint8Array>;
  /** Lists the logical names directly under a prefix, sorted (e.g. `spam-assassin/spam-1`). */
  list(prefix: string): Promise<string[]>;
  /**
   * Optional: a gzipped file's decompressed bytes, for platforms with a faster inflater than the
   * web-standard DecompressionStream the readers use otherwise (Node's zlib takes about half its
   * time on Fashion-MNIST's 26 MB training images). Same bytes as `gunzip(await read(name))`.
   */
  readGunzipped?(name: string): Promise<Uint8Array>;
}

/** A gzipped file's decompressed bytes, by the source's own inflater when it has one. */
export async function readGunzipped(source: DataSource, name: string): Promise<Uint8Array> {
  return source.readGunzipped ? source.readGunzipped(name) : gunzip(await source.read(name));
}
