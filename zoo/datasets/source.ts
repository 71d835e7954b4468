/**
 * Where a dataset's raw files come from. Readers in zoo/ are pure: they take bytes from a
 * `DataSource`, never from `node:fs`, so they run unchanged in Node, workerd and browsers.
 * The Node adapter (cli/) maps logical names onto the Debian and npm install locations.
 */
export interface DataSource {
  /** Reads one raw file by logical name, e.g. `fashion-mnist/t10k-images-idx3-ubyte.gz`. */
  read(name: string): Promise<Uint8Array>;
  /** Lists the logical names directly under a prefix, sorted (e.g. `spam-assassin/spam-1`). */
  list(prefix: string): Promise<string[]>;
}
