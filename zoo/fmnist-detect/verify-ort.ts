/**
 * One-off check that onnxruntime-web (WASM, 1 thread, graph optimisation disabled) over the whole
 * evaluation split, decoded by decode.ts and scored by core/metrics/detection.ts, reproduces the
 * manifest's reference.fp32 (written by train.py from torch outputs) exactly.
 * If train.py's torch detections are in /tmp (see DETS below), also counts the detections that
 * differ between ORT and torch.
 *
 *   npx tsx zoo/fmnist-detect/verify-ort.ts
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { predictRange } from '../../core/evaluate/predict.ts';
import type { Detection } from '../../core/metrics/detection.ts';
import { createSession } from '../../core/runtime/index.ts';
import { fmnistDetectTask as task } from './task.ts';

const DETS = '/tmp/cann-quant-fmnist-detect-torch-dets.json';

const model = new Uint8Array(await readFile(new URL('./model.onnx', import.meta.url)));
const sha = createHash('sha256').update(model).digest('hex');
console.log(
  `model sha256 ${sha} (${sha === task.manifest.model.sha256 ? 'matches' : 'DIFFERS from'} manifest)`,
);
useNodeRuntime();
const session = await createSession(model);
const split = await task.load(nodeDataSource(), 'evaluation');
const t0 = performance.now();
const preds = await predictRange(session, split, (o, n) => task.predict(o, n));
await session.release();
const seconds = (performance.now() - t0) / 1000;
const score = task.score(preds, split.labels);
const ref = task.manifest.reference.fp32;
for (const k of ['mAP50', 'mAP75']) {
  console.log(
    `${k}: ORT ${score[k]} reference ${ref[k]} -> ${score[k] === ref[k] ? 'EXACT' : `DIFFERS by ${score[k]! - ref[k]!}`}`,
  );
}
console.log(`${split.size} canvases in ${seconds.toFixed(1)}s`);
try {
  const torchDets = JSON.parse(await readFile(DETS, 'utf8')) as Detection[][];
  let differ = 0;
  let maxBox = 0;
  let maxScore = 0;
  let total = 0;
  preds.forEach((list, i) => {
    const want = torchDets[i]!;
    if (list.length !== want.length || list.some((d, k) => d.cls !== want[k]!.cls)) differ++;
    list.forEach((d, k) => {
      const w = want[k];
      if (!w || w.cls !== d.cls) return;
      total++;
      maxScore = Math.max(maxScore, Math.abs(d.score - w.score));
      for (const key of ['x1', 'y1', 'x2', 'y2'] as const)
        maxBox = Math.max(maxBox, Math.abs(d[key] - w[key]));
    });
  });
  console.log(
    `vs torch: ${differ} canvases with a different detection list (classes/order); over ${total} paired detections max |score diff| ${maxScore}, max |box diff| ${maxBox}`,
  );
} catch {
  console.log(`(no ${DETS}: torch comparison skipped)`);
}
