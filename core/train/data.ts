/**
 * Training data of QAT: the task's training split (never its calibration or evaluation split).
 * Fashion-MNIST tasks trained on train images 0..54999 and calibrate on 55000..59999 (see
 * zoo/image-classification.ts); QAT draws its training subset from 0..53999 and holds out
 * 54000..54999 for the convergence monitor.
 */
import { normalisePixels, readFashionMnist } from '../../zoo/datasets/fashion-mnist.ts';
import type { DataSource } from '../../zoo/datasets/source.ts';
import type { TaskManifest } from '../../zoo/task.ts';
import type { TrainingSplit } from './qat.ts';

/** Train images QAT may draw from, and the held-out slice (Fashion-MNIST train indices). */
export const FMNIST_QAT_POOL = { start: 0, count: 54_000 } as const;
export const FMNIST_QAT_HELD_OUT = { start: 54_000, count: 1_000 } as const;

/** Deterministic subset of `count` indices out of `n` (seeded Fisher-Yates prefix), sorted. */
export function subsetIndices(n: number, count: number, seed: number): number[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  const k = Math.min(count, n);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k).sort((x, y) => x - y);
}

/**
 * QAT splits of a Fashion-MNIST image-classification task: `trainCount` images drawn from the
 * pool (seeded), and the first `heldOutCount` images of the held-out slice.
 */
export async function fashionMnistQatSplits(
  manifest: TaskManifest,
  source: DataSource,
  opts: { trainCount: number; heldOutCount: number; seed: number },
): Promise<{ train: TrainingSplit; heldOut: TrainingSplit }> {
  // image-classification tasks, and the smoke task (the same 10-class 28x28 classifier, small)
  if (
    manifest.dataset.name !== 'Fashion-MNIST' ||
    (manifest.kind !== 'image-classification' && manifest.kind !== 'smoke')
  )
    throw new RangeError(
      `QAT training data: task ${manifest.id} is not a Fashion-MNIST classifier (only those have a training-split reader here)`,
    );
  const part = await readFashionMnist(source, 'train');
  const input = manifest.model.inputs[0]!.name;
  const make = (indices: number[], description: string): TrainingSplit => {
    const pixels = new Uint8Array(indices.length * 784);
    indices.forEach((s, k) => {
      pixels.set(part.images.subarray(s * 784, (s + 1) * 784), k * 784);
    });
    return {
      input,
      sampleDims: [1, 28, 28],
      data: normalisePixels(pixels),
      labels: Uint8Array.from(indices, (i) => part.labels[i]!),
      size: indices.length,
      classes: 10,
      description,
    };
  };
  const pool = subsetIndices(FMNIST_QAT_POOL.count, opts.trainCount, opts.seed).map(
    (i) => i + FMNIST_QAT_POOL.start,
  );
  const held = Array.from(
    { length: Math.min(opts.heldOutCount, FMNIST_QAT_HELD_OUT.count) },
    (_, i) => FMNIST_QAT_HELD_OUT.start + i,
  );
  return {
    train: make(
      pool,
      `Fashion-MNIST train: ${pool.length} images drawn (seed ${opts.seed}) from 0..${FMNIST_QAT_POOL.count - 1}`,
    ),
    heldOut: make(
      held,
      `Fashion-MNIST train ${held[0]}..${held.at(-1)} (held out; not in the calibration split 55000..59999)`,
    ),
  };
}
