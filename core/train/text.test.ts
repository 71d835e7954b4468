/**
 * QAT on the text classifier: spam-transformer (token embedding Gather, attention, GELU via Erf,
 * LayerNorm from primitives, the padding mask from Equal/Not) mapped onto TensorFlow.js equals
 * onnxruntime-web, and its QAT training data partitions the training messages without touching
 * the calibration split.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { useNodeTraining } from '../../cli/train-backend.ts';
import { readTaskModel } from '../../cli/zoo-files.ts';
import { getTask } from '../../zoo/registry.ts';
import { listSpamSplit, SPAM_SPLITS } from '../../zoo/spam-transformer/data.ts';
import { getTarget } from '../formats/targets.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';
import { prepareModel } from '../quantize/prepare.ts';
import { createSession } from '../runtime/index.ts';
import { tf } from './backend.ts';
import { spamQatPools, spamQatSplits } from './data.ts';
import { TrainableModel } from './model.ts';

beforeAll(async () => {
  useNodeRuntime();
  await useNodeTraining('wasm');
});

describe('spam-transformer on TensorFlow.js', () => {
  it('FP32 forward equals onnxruntime-web on 40 calibration messages (|diff| <= 1e-5 * max|logit|)', async () => {
    const task = getTask('spam-transformer');
    const split = await task.load(nodeDataSource(), 'calibration');
    const feeds = await split.batch(0, 40);
    const model = decodeModel(await readTaskModel(task.manifest));
    const ort = await createSession(encodeModel(model));
    const ref = Object.values(await ort.run(feeds))[0]!.data as Float32Array;
    await ort.release();
    const target = getTarget('ascend310');
    const tm = new TrainableModel(prepareModel(model, target), target);
    const [name, ids] = Object.entries(feeds)[0]!;
    const got = tf.tidy(
      () =>
        Object.values(
          tm.forward(
            {
              [name]: tf.tensor(
                Int32Array.from(ids.data as BigInt64Array, Number),
                [...ids.dims],
                'int32',
              ),
            },
            null,
          ),
        )[0]!.dataSync() as Float32Array,
    );
    tm.dispose();
    expect(got.length).toBe(ref.length);
    const scale = Math.max(...ref.map(Math.abs));
    let diff = 0;
    for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(got[i]! - ref[i]!));
    expect(diff).toBeLessThanOrEqual(1e-5 * scale);
  });

  it('QAT data: training and held-out messages partition the non-calibration older messages', async () => {
    const source = nodeDataSource();
    const pools = await spamQatPools(source);
    const calibration = new Set((await listSpamSplit(source, 'calibration')).map((e) => e.file));
    const train = new Set(pools.train.map((e) => e.file));
    const held = new Set(pools.heldOut.map((e) => e.file));
    let older = 0;
    for (const { folder } of SPAM_SPLITS.older)
      older += (await source.list(`spam-assassin/${folder}`)).filter((f) =>
        f.endsWith('.txt'),
      ).length;
    expect(train.size + held.size + calibration.size).toBe(older);
    for (const f of train) expect(calibration.has(f) || held.has(f)).toBe(false);
    for (const f of held) expect(calibration.has(f)).toBe(false);
    const task = getTask('spam-transformer');
    const splits = await spamQatSplits(task.manifest, source, {
      trainCount: 64,
      heldOutCount: 32,
      seed: 7,
    });
    expect(splits.train.data).toBeInstanceOf(Int32Array);
    expect(splits.train.data.length).toBe(64 * 128);
    expect(splits.heldOut.size).toBe(32);
    expect(new Set(splits.train.labels)).toEqual(new Set([0, 1]));
  });
});
