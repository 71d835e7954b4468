/**
 * One-off check that onnxruntime-web (WASM, 1 thread, no graph optimisation) reproduces a zoo
 * image-classification task's FP32 reference from its committed model.onnx: top-1, predictions
 * sha256, and (if zoo/common/trainer.py left its torch logits in /tmp) the largest logit
 * difference and the samples whose argmax differs.
 *
 *   npx tsx zoo/common/verify-ort.ts fmnist-resnet
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { argmaxRows } from '../../core/metrics/classification.ts';
import { createSession } from '../../core/runtime/index.ts';
import { getTask } from '../registry.ts';

const id = process.argv[2] ?? 'smoke-fmnist';
const task = getTask(id);
const model = new Uint8Array(await readFile(new URL(`../${id}/model.onnx`, import.meta.url)));
const modelSha = createHash('sha256').update(model).digest('hex');
useNodeRuntime();
const session = await createSession(model);
const split = await task.load(nodeDataSource(), 'evaluation');
const started = performance.now();
const logits = new Float32Array(split.size * 10);
const predictions: number[] = [];
for (let start = 0; start < split.size; start += 50) {
  const end = Math.min(split.size, start + 50);
  const outputs = await session.run(split.batch(start, end));
  logits.set(outputs.logits!.data as Float32Array, start * 10);
  predictions.push(...(task.predict(outputs, end - start) as number[]));
}
await session.release();
const seconds = (performance.now() - started) / 1000;
const digest = createHash('sha256')
  .update(new Uint8Array(Int32Array.from(predictions).buffer))
  .digest('hex');
const score = task.score(predictions, split.labels);
const ref = task.manifest.reference;
console.log(
  `${id}: model sha256 ${modelSha} (manifest ${task.manifest.model.sha256 === modelSha ? 'matches' : 'DIFFERS'})`,
);
console.log(
  `ORT top1 ${score.top1} vs reference ${ref.fp32.top1}; predictions sha256 ${digest === ref.predictionsSha256 ? 'EQUAL' : `DIFFERS (${digest})`}; ${seconds.toFixed(1)}s`,
);
try {
  const raw = await readFile(`/tmp/cann-quant-${id}-torch-logits.f32`);
  const torchLogits = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  let maxDiff = 0;
  for (let i = 0; i < logits.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - torchLogits[i]!));
  }
  const torchPred = argmaxRows(torchLogits, split.size, 10);
  const differing = torchPred.flatMap((p, i) => (p === predictions[i] ? [] : [i]));
  console.log(
    `max |ORT - torch| logit difference ${maxDiff.toExponential(3)}; argmax differs on ${differing.length} samples ${JSON.stringify(differing.slice(0, 20))}`,
  );
} catch (err) {
  console.log(`no torch logits to compare (${(err as Error).message})`);
}
