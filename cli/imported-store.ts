/**
 * This machine's store of imported QDQ models (cross-framework quantization, core/import),
 * content-addressed like the service's R2 blobs: `cann-quant score --qdq <file>` puts the file
 * here under its sha256, and every thread of the run (workers, the second execution, the
 * cross-hardware runs, the measured row) reads it back by the recipe's `imported.model`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getTarget } from '../core/formats/targets.ts';
import { importKindRefusal } from '../core/import/layers.ts';
import { importQdq, type QdqImport, QdqImportError } from '../core/import/qdq.ts';
import type { ModelProto } from '../core/onnx/index.ts';
import type { Recipe } from '../core/recipe/schema.ts';
import { CliError } from './errors.ts';
import { readOnnxFile } from './user-model.ts';

/** The store's folder: $CANN_QUANT_IMPORTS_DIR, else <XDG cache>/cann-quant/imported. */
export function importedDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CANN_QUANT_IMPORTS_DIR) return env.CANN_QUANT_IMPORTS_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cann-quant', 'imported');
}

/** sha256 (hex) of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Stores a model (written to a temporary name, then renamed: never half a file); its sha256. */
export async function storeImported(bytes: Uint8Array): Promise<string> {
  const sha = sha256Hex(bytes);
  const dir = importedDir();
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `${sha}.${process.pid}.tmp`);
  await writeFile(tmp, bytes);
  await rename(tmp, join(dir, `${sha}.onnx`));
  return sha;
}

/** A stored model by sha256, checked against it. */
export async function readImported(sha: string): Promise<Uint8Array> {
  const path = join(importedDir(), `${sha}.onnx`);
  const bytes = await readFile(path).then(
    (b) => new Uint8Array(b),
    () => {
      throw new CliError(
        `recipe.imported.model ${sha.slice(0, 12)}... is not in this machine's store (${importedDir()}): give the file with --qdq <file>`,
        2,
      );
    },
  );
  if (sha256Hex(bytes) !== sha)
    throw new CliError(`${path}: its sha256 is not ${sha} (a damaged store entry: delete it)`, 2);
  return bytes;
}

/**
 * A QDQ file read, decoded and taken apart (core/import/qdq.ts), with one readable line (exit
 * code 2) for a missing file, a file that is not ONNX, or one the importer cannot read.
 */
export async function readQdqFile(
  file: string,
): Promise<{ bytes: Uint8Array; model: ModelProto; imported: QdqImport }> {
  const { bytes, model } = await readOnnxFile(file);
  try {
    return { bytes, model, imported: importQdq(model) };
  } catch (err) {
    if (err instanceof QdqImportError) throw new CliError(`${file}: ${err.message}`, 2);
    throw err;
  }
}

/**
 * The file a recipe imports (`--qdq <file>`, for `score` and `submit`), read as
 * {@link readQdqFile} reads it, and refused in one line when the recipe cannot import it: with
 * a QAT model too, or on a target of the other kind (a dynamically quantized file on a target
 * with calibrated activation scales, or a QDQ file on a dynamic one).
 */
export async function readImportFor(
  recipe: Pick<Recipe, 'qat' | 'target'>,
  file: string,
): Promise<{ bytes: Uint8Array; model: ModelProto; imported: QdqImport }> {
  if (recipe.qat) throw new CliError('--qdq and recipe.qat are two submissions: give one', 2);
  const read = await readQdqFile(file);
  const refusal = importKindRefusal(read.imported, getTarget(recipe.target));
  if (refusal) throw new CliError(`${file}: ${refusal}`, 2);
  return read;
}
