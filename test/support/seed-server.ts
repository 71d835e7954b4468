/**
 * A Node HTTP server that hands the workers-pool tests what workerd cannot read itself: zoo
 * tasks packed for the service (cli/seed.ts) and, for the parity test, the result of scoring a
 * recipe locally the way `cann-quant score` does (so the service's answer is compared with a
 * live local run, never with a stored number).
 *
 *   GET /tasks/:id          -> { registration, keys }      (packs the task on first use)
 *   GET /blobs/:sha256      -> the blob's bytes
 *   POST /score?shards=n    -> local score of the posted recipe (paramsDigest, metrics, QQI)
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRecipe } from '../../cli/commands/score.ts';
import { storeImported } from '../../cli/imported-store.ts';
import { packTask, type TaskPack } from '../../cli/seed.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { ZOO_DIR } from '../../core/onnx/testing.ts';
import { parseRecipe } from '../../core/recipe/schema.ts';
import { scoreRun } from '../../core/score/score-run.ts';
import { getTask } from '../../zoo/registry.ts';

/**
 * The zoo's quantized files from other frameworks (zoo/<task>/pytorch-ptq/model.onnx, PyTorch's
 * QDQ; zoo/<task>/ort-dynamic/model.onnx, ONNX Runtime's quantize_dynamic) put in this process's
 * store of imported models, so that a posted recipe importing one (recipe.imported) finds its
 * bytes by sha256 as `cann-quant score --qdq` would; the bytes by sha256.
 */
let zooImports: Promise<Map<string, Uint8Array>> | undefined;
function storeZooImports(): Promise<Map<string, Uint8Array>> {
  zooImports ??= (async () => {
    process.env.CANN_QUANT_IMPORTS_DIR ??= mkdtempSync(join(tmpdir(), 'cq-seed-imports-'));
    const out = new Map<string, Uint8Array>();
    for (const task of readdirSync(ZOO_DIR))
      for (const kind of ['pytorch-ptq', 'ort-dynamic']) {
        const file = join(ZOO_DIR, task, kind, 'model.onnx');
        if (!existsSync(file)) continue;
        const bytes = new Uint8Array(readFileSync(file));
        out.set(await storeImported(bytes), bytes);
      }
    return out;
  })();
  return zooImports;
}

/** `cann-quant score` of a recipe in this process (two executions, as the CLI does). */
async function localScore(text: string, shards: number): Promise<string> {
  const recipe = parseRecipe(JSON.parse(text));
  const imported = recipe.imported
    ? (await storeZooImports()).get(recipe.imported.model)
    : undefined;
  if (recipe.imported && !imported)
    throw new Error(`no zoo quantized file has sha256 ${recipe.imported.model}`);
  const r = await runRecipe(recipe, { shards, progress: false });
  const second = await runRecipe(recipe, { shards: shards + 1, progress: false });
  const task = getTask(recipe.task);
  const scored = await scoreRun(r, {
    model: await readTaskModel(task.manifest),
    ...(imported ? { imported } : {}),
    evaluationSplitSize: task.manifest.splits.evaluation.size,
    runId: 'local',
    second,
  });
  return JSON.stringify({
    paramsDigest: scored.paramsDigest,
    int8: r.evaluation!.int8,
    fp32: r.evaluation!.fp32,
    qqi: scored.qqi.value,
    level: scored.level,
    samples: r.calibration.samples,
  });
}

export async function startSeedServer(): Promise<{ url: string; server: Server }> {
  const packs = new Map<string, Promise<TaskPack>>();
  const blobs = new Map<string, Uint8Array>();
  const scores = new Map<string, Promise<string>>();
  const pack = (id: string) => {
    let p = packs.get(id);
    if (!p) {
      p = packTask(id).then((t) => {
        for (const [k, v] of t.blobs) blobs.set(k.slice('blobs/'.length), v);
        return t;
      });
      packs.set(id, p);
    }
    return p;
  };
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const task = /^\/tasks\/([\w-]+)$/.exec(url.pathname);
      if (task) {
        const t = await pack(task[1]!);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ registration: t.registration, keys: [...t.blobs.keys()] }));
        return;
      }
      const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname);
      if (blob) {
        const b = blobs.get(blob[1]!);
        res.statusCode = b ? 200 : 404;
        res.end(b ?? 'not packed');
        return;
      }
      if (url.pathname === '/score' && req.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString('utf8');
        const shards = Number(url.searchParams.get('shards') ?? '1');
        const key = `${shards}:${text}`;
        let p = scores.get(key);
        if (!p) {
          p = localScore(text, shards);
          p.catch(() => scores.delete(key));
          scores.set(key, p);
        }
        const body = await p;
        res.setHeader('content-type', 'application/json');
        res.end(body);
        return;
      }
      res.statusCode = 404;
      res.end('no such route');
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err instanceof Error ? err.stack : err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('seed server: no port');
  return { url: `http://127.0.0.1:${address.port}`, server };
}
