import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { TaskManifest } from '../zoo/task.ts';
import { CliError } from './errors.ts';

/** Absolute path of a file inside a zoo task's folder. */
export function zooPath(taskId: string, file: string): string {
  return fileURLToPath(new URL(`../zoo/${taskId}/${file}`, import.meta.url));
}

/** Reads a task's ONNX model and checks it against the sha256 its manifest records. */
export async function readTaskModel(manifest: TaskManifest): Promise<Uint8Array> {
  const path = zooPath(manifest.id, manifest.model.file);
  const bytes = new Uint8Array(await readFile(path));
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== manifest.model.sha256) {
    throw new CliError(
      `${path}: sha256 ${digest} differs from the manifest's ${manifest.model.sha256}`,
    );
  }
  return bytes;
}
