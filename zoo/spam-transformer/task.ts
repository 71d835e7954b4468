import { argmax, binaryMetrics } from '../../core/metrics/binary.ts';
import { type TensorData, tensor } from '../../core/tensor/index.ts';
import { EMAIL_TOKENIZER } from '../datasets/email-tokenizer.ts';
import type { BenchmarkTask, TaskManifest, TaskSplit } from '../task.ts';
import { loadSpamSplit } from './data.ts';
import manifestJson from './task.json' with { type: 'json' };

/** The manifest written by train.py. */
export const spamTransformerManifest = manifestJson as TaskManifest;

/**
 * `spam-transformer`: spam vs ham on the temporal SpamAssassin split (train on the older
 * folders, evaluate on the newer ones plus the hard ham), a 2-layer pre-LayerNorm transformer over
 * hashed words. Inputs `input_ids` int64 [N, 128]; output `logits` [N, 2], class 1 = spam.
 * Labels are 0/1 per email; predictions are argmax class indices (ties to 0).
 */
export const spamTransformerTask: BenchmarkTask<Uint8Array, number> = {
  manifest: spamTransformerManifest,

  async load(source, split): Promise<TaskSplit<Uint8Array>> {
    const { ids, labels } = await loadSpamSplit(source, split);
    const L = EMAIL_TOKENIZER.maxLength;
    const size = labels.length;
    return {
      split,
      size,
      labels,
      batch(start: number, end: number): Record<string, TensorData> {
        if (
          !Number.isInteger(start) ||
          !Number.isInteger(end) ||
          start < 0 ||
          end > size ||
          start >= end
        ) {
          throw new RangeError(`spam-transformer: batch [${start}, ${end}) outside 0..${size}`);
        }
        const data = BigInt64Array.from(ids.subarray(start * L, end * L), (v) => BigInt(v));
        return { input_ids: tensor('int64', [end - start, L], data) };
      },
    };
  },

  predict(outputs, batchSize): number[] {
    const logits = outputs.logits;
    if (logits?.type !== 'float32') {
      throw new TypeError(`spam-transformer: want a float32 'logits' output, got ${logits?.type}`);
    }
    if (logits.dims.length !== 2 || logits.dims[0] !== batchSize || logits.dims[1] !== 2) {
      throw new RangeError(
        `spam-transformer: logits dims [${logits.dims.join(',')}], want [${batchSize},2]`,
      );
    }
    const out: number[] = new Array(batchSize);
    const data = logits.data as Float32Array;
    for (let i = 0; i < batchSize; i++) out[i] = argmax(data, i * 2, 2);
    return out;
  },

  score(predictions, labels): Record<string, number> {
    return { ...binaryMetrics(predictions, labels) };
  },
};
