/**
 * Loading zoo tasks into a cann-quant server: the task's model, its two splits packed as
 * content-addressed chunk blobs (core/data/split-store.ts) and the evaluation labels, uploaded
 * through the admin API, then the task registered. Uploads skip blobs the server has, so a
 * second seed costs a few HEAD requests.
 */
import { type BlobStore, memoryBlobStore, packSplit } from '../core/data/split-store.ts';
import { encodeShardOutput } from '../core/pipeline/replay.ts';
import { getTask } from '../zoo/registry.ts';
import { nodeDataSource } from './data-source.ts';
import { CliError } from './errors.ts';
import { fetchRetrying } from './http.ts';
import { readTaskModel } from './zoo-files.ts';

/** A task packed in memory: its blobs and the registration that names them. */
export interface TaskPack {
  id: string;
  blobs: Map<string, Uint8Array>;
  registration: {
    modelKey: string;
    calibrationKey: string;
    evaluationKey: string;
    labelsKey: string;
  };
}

/** Packs a zoo task: model, stored splits (chunks + manifests) and evaluation labels. */
export async function packTask(id: string): Promise<TaskPack> {
  const task = getTask(id);
  const source = nodeDataSource();
  const store: BlobStore & { blobs: Map<string, Uint8Array> } = memoryBlobStore();
  const json = (v: unknown) => store.put(new TextEncoder().encode(JSON.stringify(v)));
  const modelKey = await store.put(await readTaskModel(task.manifest));
  const calibration = await task.load(source, 'calibration');
  const calibrationKey = await json(await packSplit(calibration, store));
  const evaluation = await task.load(source, 'evaluation');
  const evaluationKey = await json(await packSplit(evaluation, store));
  const labelsKey = await store.put(encodeShardOutput(evaluation.labels));
  return {
    id,
    blobs: store.blobs,
    registration: { modelKey, calibrationKey, evaluationKey, labelsKey },
  };
}

/** One admin request (all of a seed's are idempotent: retried when the network drops them). */
function call(url: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetchRetrying(url, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
  });
}

async function problemText(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const p = JSON.parse(text) as { detail?: string };
    return p.detail ?? text;
  } catch {
    return text.slice(0, 200);
  }
}

/** Uploads a packed task to a server and registers it. */
export async function uploadTask(
  server: string,
  adminToken: string,
  pack: TaskPack,
  onBlob?: (done: number, total: number) => void,
): Promise<{ uploaded: number; skipped: number }> {
  const base = server.replace(/\/$/, '');
  let uploaded = 0;
  let skipped = 0;
  let done = 0;
  const one = async ([key, bytes]: [string, Uint8Array]) => {
    const head = await call(
      `${base}/api/v1/admin/blobs/${key.slice('blobs/'.length)}`,
      adminToken,
      {
        method: 'HEAD',
      },
    );
    if (head.status === 401 || head.status === 403)
      throw new CliError(`the server refused the admin token (${head.status})`);
    if (head.ok) skipped++;
    else {
      const res = await call(`${base}/api/v1/admin/blobs`, adminToken, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Blob([bytes as Uint8Array<ArrayBuffer>]),
      });
      if (!res.ok)
        throw new CliError(`upload of ${key} failed: ${res.status} ${await problemText(res)}`);
      const { key: got } = (await res.json()) as { key: string };
      if (got !== key) throw new CliError(`server stored ${key} as ${got}`);
      uploaded++;
    }
    onBlob?.(++done, pack.blobs.size);
  };
  // A few uploads in flight: a local wrangler dev answers each in ~0.3 s.
  const queue = [...pack.blobs];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await one(next);
    }),
  );
  const res = await call(`${base}/api/v1/admin/tasks/${pack.id}`, adminToken, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(pack.registration),
  });
  if (!res.ok)
    throw new CliError(`registering ${pack.id} failed: ${res.status} ${await problemText(res)}`);
  return { uploaded, skipped };
}
