/**
 * The CLI's store for shared phases (core/pipeline/shared-cache.ts): the FP32 reference pass of
 * a task is computed by the first run and read back by every later run with the same model,
 * data and runtime, whatever the recipe.
 *
 * Location: `$CANN_QUANT_CACHE_DIR`, else `$XDG_CACHE_HOME/cann-quant/shared`, else
 * `~/.cache/cann-quant/shared`. `CANN_QUANT_CACHE=off` (or `--no-cache`) turns it off. Files are
 * written to a temporary name and renamed, so a crashed or concurrent writer never leaves a
 * partial entry behind.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { BatchSource } from '../core/evaluate/predict.ts';
import {
  runtimeIdentity,
  type SharedIdentity,
  type SharedStore,
} from '../core/pipeline/shared-cache.ts';
import { makeOutputDir } from './output-dir.ts';

/** The cache folder, or undefined when caching is off. */
export function sharedCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CANN_QUANT_CACHE === 'off') return undefined;
  if (env.CANN_QUANT_CACHE_DIR) return env.CANN_QUANT_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'cann-quant', 'shared');
}

/** A folder of `<key>.bin` files (two-character fan-out). */
export function fileStore(dir: string): SharedStore {
  const path = (key: string) => join(dir, key.slice(0, 2), `${key}.bin`);
  return {
    async get(key) {
      try {
        return new Uint8Array(await readFile(path(key)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async put(key, bytes) {
      const p = path(key);
      await makeOutputDir(dirname(p), 'cache directory');
      const tmp = `${p}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, p);
    },
  };
}

/** sha256 of a split's model inputs, in batches of 1,000 (names, dims and bytes). */
export async function splitDigest(source: BatchSource): Promise<string> {
  const h = createHash('sha256');
  h.update(`size ${source.size}\n`);
  for (let i = 0; i < source.size; i += 1000) {
    const batch = await source.batch(i, Math.min(source.size, i + 1000));
    for (const name of Object.keys(batch).sort()) {
      const t = batch[name]!;
      const d = t.data as ArrayBufferView;
      h.update(`${name} ${t.type} ${t.dims.join('x')}\n`);
      h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
  }
  return h.digest('hex');
}

/** What a run's shared outputs depend on: model bytes, both splits, the ORT version. */
export async function localIdentity(
  model: Uint8Array,
  calibration: BatchSource,
  evaluation: BatchSource,
): Promise<SharedIdentity> {
  return {
    model: createHash('sha256').update(model).digest('hex'),
    calibration: await splitDigest(calibration),
    evaluation: await splitDigest(evaluation),
    runtime: await runtimeIdentity(),
  };
}
