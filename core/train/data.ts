/**
 * Training data of QAT: the task's training split (never its calibration or evaluation split).
 * - Fashion-MNIST tasks trained on train images 0..54999 and calibrate on 55000..59999 (see
 *   zoo/image-classification.ts); QAT draws its training subset from 0..53999 and holds out
 *   54000..54999 for the convergence monitor.
 * - fmnist-detect trained on canvases composed from train images 0..54999 (seed 1) and
 *   calibrates on canvases of 55000..59999; QAT composes its own canvases (with its --seed)
 *   from 0..53999 and held-out canvases (seed 12) from 54000..54999. It has no labels to train on:
 *   QAT learns it by distillation from the FP32 model's three output maps.
 * - spam-transformer trained on the older SpamAssassin folders except every 10th message (the
 *   calibration split, zoo/spam-transformer/data.ts); QAT draws from the messages whose sorted
 *   index % 10 is neither 0 (calibration) nor 5 (held out for the monitor).
 */

import { CANVAS_SIZE, composeCanvases } from '../../zoo/datasets/canvas.ts';
import { EMAIL_TOKENIZER, tokenizeEmail } from '../../zoo/datasets/email-tokenizer.ts';
import { normalisePixels, readFashionMnist } from '../../zoo/datasets/fashion-mnist.ts';
import type { DataSource } from '../../zoo/datasets/source.ts';
import { SPAM_SPLITS } from '../../zoo/spam-transformer/data.ts';
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

/** Index % 10 of the older SpamAssassin messages held out for the QAT monitor. */
export const SPAM_QAT_HELD_OUT_RESIDUE = 5;

/** The older SpamAssassin messages QAT may train on, and those held out for its monitor. */
export async function spamQatPools(source: DataSource): Promise<{
  train: { file: string; label: number }[];
  heldOut: { file: string; label: number }[];
}> {
  const train: { file: string; label: number }[] = [];
  const heldOut: { file: string; label: number }[] = [];
  for (const { folder, label } of SPAM_SPLITS.older) {
    const files = (await source.list(`spam-assassin/${folder}`)).filter((f) => f.endsWith('.txt'));
    files.sort();
    files.forEach((file, i) => {
      const r = i % SPAM_SPLITS.calibrationEvery;
      if (r === 0) return; // calibration split
      (r === SPAM_QAT_HELD_OUT_RESIDUE ? heldOut : train).push({ file, label });
    });
  }
  return { train, heldOut };
}

/**
 * QAT splits of the spam-transformer task: `trainCount` messages drawn (seeded) from its
 * training messages, and the first `heldOutCount` of the held-out tenth; token ids [N, 128].
 */
export async function spamQatSplits(
  manifest: TaskManifest,
  source: DataSource,
  opts: { trainCount: number; heldOutCount: number; seed: number },
): Promise<{ train: TrainingSplit; heldOut: TrainingSplit }> {
  if (manifest.kind !== 'text-classification')
    throw new RangeError(`QAT training data: task ${manifest.id} is not a text classifier`);
  const { train: trainPool, heldOut: heldPool } = await spamQatPools(source);
  const L = EMAIL_TOKENIZER.maxLength;
  const input = manifest.model.inputs[0]!.name;
  const make = async (
    emails: { file: string; label: number }[],
    description: string,
  ): Promise<TrainingSplit> => {
    const ids = new Int32Array(emails.length * L);
    const raws = await Promise.all(emails.map((e) => source.read(e.file)));
    raws.forEach((raw, i) => {
      tokenizeEmail(raw, ids, i * L);
    });
    return {
      input,
      sampleDims: [L],
      data: ids,
      labels: Uint8Array.from(emails, (e) => e.label),
      size: emails.length,
      classes: 2,
      description,
    };
  };
  const picked = subsetIndices(trainPool.length, opts.trainCount, opts.seed).map(
    (i) => trainPool[i]!,
  );
  const held = heldPool.slice(0, opts.heldOutCount);
  return {
    train: await make(
      picked,
      `SpamAssassin older folders: ${picked.length} messages drawn (seed ${opts.seed}) from the ${trainPool.length} training messages (sorted index % 10 not 0 or ${SPAM_QAT_HELD_OUT_RESIDUE})`,
    ),
    heldOut: await make(
      held,
      `SpamAssassin older folders: ${held.length} held-out messages (sorted index % 10 = ${SPAM_QAT_HELD_OUT_RESIDUE}; not in the calibration split, index % 10 = 0)`,
    ),
  };
}

/** Canvas specs of fmnist-detect's QAT splits (see the module comment). */
export const DETECT_QAT_CANVASES = {
  train: { part: 'train', start: 0, count: 54_000 },
  heldOut: { part: 'train', start: 54_000, count: 1_000, seed: 12 },
} as const;

/**
 * QAT splits of the detection task: `trainCount` canvases composed (seeded) from train images
 * 0..53999 and `heldOutCount` from 54000..54999; no labels (`maps`).
 */
export async function detectQatSplits(
  manifest: TaskManifest,
  source: DataSource,
  opts: { trainCount: number; heldOutCount: number; seed: number },
): Promise<{ train: TrainingSplit; heldOut: TrainingSplit }> {
  if (manifest.kind !== 'detection')
    throw new RangeError(`QAT training data: task ${manifest.id} is not the detection task`);
  const part = await readFashionMnist(source, 'train');
  const input = manifest.model.inputs[0]!.name;
  const make = (
    spec: { part: 'train'; start: number; count: number; seed: number },
    canvases: number,
    description: string,
  ): TrainingSplit => {
    const set = composeCanvases(part, { ...spec, canvases });
    return {
      input,
      sampleDims: [1, CANVAS_SIZE, CANVAS_SIZE],
      data: normalisePixels(set.pixels),
      labels: new Uint8Array(0),
      size: set.count,
      classes: 0,
      targets: 'maps',
      description,
    };
  };
  const seed = opts.seed;
  return {
    train: make(
      { ...DETECT_QAT_CANVASES.train, seed },
      opts.trainCount,
      `fmnist-detect canvases: ${opts.trainCount} composed (seed ${seed}) from Fashion-MNIST train 0..53999`,
    ),
    heldOut: make(
      DETECT_QAT_CANVASES.heldOut,
      opts.heldOutCount,
      `fmnist-detect canvases: ${opts.heldOutCount} composed (seed ${DETECT_QAT_CANVASES.heldOut.seed}) from Fashion-MNIST train 54000..54999 (held out; not in the calibration canvases' 55000..59999)`,
    ),
  };
}

/** The QAT splits of a task, by its dataset: Fashion-MNIST classifiers, detection and text. */
export function qatSplits(
  manifest: TaskManifest,
  source: DataSource,
  opts: { trainCount: number; heldOutCount: number; seed: number },
): Promise<{ train: TrainingSplit; heldOut: TrainingSplit }> {
  if (manifest.kind === 'text-classification') return spamQatSplits(manifest, source, opts);
  if (manifest.kind === 'detection') return detectQatSplits(manifest, source, opts);
  return fashionMnistQatSplits(manifest, source, opts);
}
