/**
 * Progressive quantization-aware training (issue 9): stage 1 simulates the target's integer
 * arithmetic on the low-sensitivity tier only, stage 2 adds the medium tier, stage 3 quantizes
 * every layer. Each stage: its own epochs, Adam with a cosine learning rate restarted at the
 * stage's start (warm restart), a convergence monitor on a held-out slice of the training split
 * (best checkpoint kept; plateau stops the stage, divergence stops it and rolls back), and a
 * stage log (loss, held-out metric, time) kept as evidence.
 *
 * Optional knowledge distillation (`distill`): the training loss matches the FP32 model's own
 * logits (temperature-softened KL, Hinton et al. 2015) instead of, or beside, the labels, and the
 * monitor keeps the checkpoint closest to the FP32 model on the held-out slice. The FP32 model is
 * the fixed point of that loss, so QAT spends its steps on what quantization changed rather than
 * on refitting a small training subset: what an INT8 target, where PTQ loses almost nothing,
 * needs.
 */
import type { Tier } from '../calibrate/sensitivity.ts';
import type { Target } from '../formats/targets.ts';
import type { QuantizedLayer } from '../quantize/layer.ts';
import { activationParams, integerRange } from '../quantize/params.ts';
import type { PreparedModel } from '../quantize/prepare.ts';
import { seededPrng as rng } from '../random.ts';
import { tf } from './backend.ts';
import { type SimConfig, TrainableModel } from './model.ts';

/** Labelled samples in memory (one float32 input per sample, class labels). */
export interface TrainingSplit {
  /** Graph input name. */
  input: string;
  /** Per-sample dims (e.g. [1, 28, 28], or [128] token ids). */
  sampleDims: number[];
  /** Samples, row-major: float32 inputs (images) or int32 token ids. */
  data: Float32Array | Int32Array;
  labels: Uint8Array;
  size: number;
  /** Classes of a classifier's labels (0 for `maps`). */
  classes: number;
  /**
   * 'classes' (default): one class label per sample, the first output holds logits.
   * 'maps': no labels (detection); QAT learns by distillation on every output map.
   */
  targets?: 'classes' | 'maps';
  /** Where the samples come from (for the log). */
  description: string;
}

/** One checkpoint of the convergence monitor. */
export interface Checkpoint {
  step: number;
  epoch: number;
  /** Mean training loss since the previous checkpoint. */
  trainLoss: number;
  /** Top-1 on the held-out slice with this stage's simulation. */
  heldOut: number;
  heldOutLoss: number;
  /** Distillation runs: the held-out fit to the FP32 model (the monitor's criterion). */
  teacher?: TeacherFit;
  seconds: number;
}

/** Held-out fit to the FP32 model (distillation runs only). */
export interface TeacherFit {
  /** Classifiers: mean KL(FP32 softmax || simulated softmax) at temperature 1. */
  kl?: number;
  /** Maps: sum over outputs of mean((simulated - FP32)^2) / variance of the FP32 output. */
  mse?: number;
  /** Classifiers: fraction of held-out samples whose top-1 equals the FP32 model's. */
  agreement?: number;
}

/** The fit a monitor minimises. */
const fitOf = (t: TeacherFit): number => t.kl ?? t.mse ?? Number.POSITIVE_INFINITY;

/** The record of one stage. */
export interface StageLog {
  stage: number;
  tiers: Tier[];
  /** Layers whose integer arithmetic is simulated in this stage. */
  quantized: string[];
  simulatedArithmetic: boolean;
  epochs: number;
  steps: number;
  stepsRun: number;
  lr: { max: number; min: number; schedule: 'cosine, restarted at the stage start' };
  /** Held-out top-1 and loss when the stage starts (its layers just quantized). */
  start: { heldOut: number; heldOutLoss: number; teacher?: TeacherFit };
  checkpoints: Checkpoint[];
  /** The checkpoint kept (index into checkpoints; -1 = the stage start). */
  kept: number;
  end: { heldOut: number; heldOutLoss: number; teacher?: TeacherFit };
  stopped: 'completed' | 'plateau' | 'divergence';
  rolledBack: boolean;
  /** With range tracking: each simulated layer's input range [lo, hi] at the stage start and end. */
  ranges?: Record<string, { start: [number, number]; end: [number, number] }>;
  seconds: number;
  secondsPerStep: number;
}

/** Options of {@link progressiveQat}. */
export interface QatOptions {
  target: Target;
  /** PTQ layers of the same recipe: activation parameters (ranges from calibration). */
  layers: readonly QuantizedLayer[];
  /** Sensitivity tier of each layer (by name); layers without one count as medium. */
  tiers: ReadonlyMap<string, Tier>;
  train: TrainingSplit;
  heldOut: TrainingSplit;
  /** Epochs per stage (over `train`). */
  epochs: number;
  batchSize?: number;
  /** Peak learning rate of each stage (default 1e-4); the minimum is peak / 100. */
  lr?: number;
  /** Monitor checkpoints per epoch (default 2). */
  checkpointsPerEpoch?: number;
  /** Checkpoints without improvement that stop a stage (default 3). */
  patience?: number;
  /** Held-out top-1 drop (points) below the stage's best that counts as divergence (default 3). */
  divergencePoints?: number;
  seed?: number;
  /**
   * Knowledge distillation from the FP32 model (the prepared weights before training):
   * loss = weight * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - weight) * CE.
   * The monitor then keeps the checkpoint with the lowest held-out KL to the FP32 model.
   */
  distill?: { temperature: number; weight: number };
  /**
   * Track the activation ranges during training: after every step each simulated layer's
   * input range moves to momentum * range + (1 - momentum) * the batch's [min, max], starting
   * from the calibrated range, and its quantization parameters follow (the target's activation
   * scheme). A rollback restores the ranges with the weights. Absent: ranges stay calibrated.
   */
  trackRanges?: { momentum: number };
  onProgress?: (stage: number, done: number, total: number) => void;
}

/** Stages of the progressive schedule: low, low+medium, all. */
export const STAGE_TIERS: readonly Tier[][] = [
  ['low'],
  ['low', 'medium'],
  ['low', 'medium', 'high'],
];

function shuffled(n: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function batchTensor(split: TrainingSplit, idx: readonly number[]): tf.Tensor {
  const per = split.sampleDims.reduce((p, d) => p * d, 1);
  const ints = split.data instanceof Int32Array;
  const out = ints ? new Int32Array(idx.length * per) : new Float32Array(idx.length * per);
  idx.forEach((s, k) => {
    out.set(split.data.subarray(s * per, (s + 1) * per), k * per);
  });
  return tf.tensor(out, [idx.length, ...split.sampleDims], ints ? 'int32' : 'float32');
}

function labelTensor(split: TrainingSplit, idx: readonly number[]): tf.Tensor {
  return tf.oneHot(
    tf.tensor1d(
      idx.map((i) => split.labels[i]!),
      'int32',
    ),
    split.classes,
  );
}

/** Logits of every sample of a split (row-major [size, classes]). */
export function splitLogits(
  model: TrainableModel,
  split: TrainingSplit,
  sim: SimConfig | null,
  batch = 250,
): Float32Array {
  const out = model.outputNames[0]!;
  const logits = new Float32Array(split.size * split.classes);
  for (let s = 0; s < split.size; s += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - s) }, (_, k) => s + k);
    const l = tf.tidy(
      () =>
        model
          .forward({ [split.input]: batchTensor(split, idx) }, sim)
          [out]!.dataSync() as Float32Array,
    );
    logits.set(l, s * split.classes);
  }
  return logits;
}

function rows(logits: Float32Array, classes: number, idx: readonly number[]): tf.Tensor2D {
  const out = new Float32Array(idx.length * classes);
  idx.forEach((s, k) => {
    out.set(logits.subarray(s * classes, (s + 1) * classes), k * classes);
  });
  return tf.tensor2d(out, [idx.length, classes]);
}

/** Mean over the batch of KL(softmax(teacher / T) || softmax(student / T)), times T^2. */
function distillationLoss(
  teacher: tf.Tensor2D,
  student: tf.Tensor,
  temperature: number,
): tf.Scalar {
  const t = tf.logSoftmax(tf.div(teacher, temperature));
  const s = tf.logSoftmax(tf.div(student, temperature));
  const kl = tf.sum(tf.mul(tf.exp(t), tf.sub(t, s)), 1);
  return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
}

/**
 * Top-1 and mean cross-entropy of the model on a split, with a simulation config; with the FP32
 * model's logits of the split (`teacher`), also the fit to them.
 */
export function evaluateSplit(
  model: TrainableModel,
  split: TrainingSplit,
  sim: SimConfig | null,
  batch = 250,
  teacher?: Float32Array,
): { top1: number; loss: number; teacher?: TeacherFit } {
  let correct = 0;
  let agree = 0;
  let lossSum = 0;
  let klSum = 0;
  const out = model.outputNames[0]!;
  for (let s = 0; s < split.size; s += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - s) }, (_, k) => s + k);
    let pred: ArrayLike<number> = [];
    let tPred: ArrayLike<number> | null = null;
    let loss = 0;
    let kl = 0;
    tf.tidy(() => {
      const logits = model.forward({ [split.input]: batchTensor(split, idx) }, sim)[out]!;
      pred = tf.argMax(logits, 1).dataSync();
      loss = tf.losses
        .softmaxCrossEntropy(
          labelTensor(split, idx),
          logits,
          undefined,
          undefined,
          tf.Reduction.SUM,
        )
        .dataSync()[0]!;
      if (teacher) {
        const t = rows(teacher, split.classes, idx);
        kl = distillationLoss(t, logits, 1).dataSync()[0]! * idx.length;
        tPred = tf.argMax(t, 1).dataSync();
      }
    });
    idx.forEach((i, k) => {
      if (pred[k] === split.labels[i]) correct++;
      if (tPred !== null && pred[k] === (tPred as ArrayLike<number>)[k]) agree++;
    });
    lossSum += loss;
    klSum += kl;
  }
  return {
    top1: correct / split.size,
    loss: lossSum / split.size,
    ...(teacher ? { teacher: { kl: klSum / split.size, agreement: agree / split.size } } : {}),
  };
}

/** Every output map of every sample of a split (by output name, row-major [size, ...]). */
export interface SplitMaps {
  values: Record<string, Float32Array>;
  /** Values per sample, by output. */
  per: Record<string, number>;
  /** Variance of each output over the split (the scale of its distillation term). */
  variance: Record<string, number>;
}

/** The outputs of a model over a split (the FP32 model's: the distillation target of maps). */
export function splitMaps(
  model: TrainableModel,
  split: TrainingSplit,
  sim: SimConfig | null,
  batch = 100,
): SplitMaps {
  const chunks: Record<string, Float32Array[]> = {};
  const per: Record<string, number> = {};
  for (let s = 0; s < split.size; s += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - s) }, (_, k) => s + k);
    tf.tidy(() => {
      const outs = model.forward({ [split.input]: batchTensor(split, idx) }, sim);
      for (const name of model.outputNames) {
        const t = outs[name]!;
        per[name] = t.size / idx.length;
        const list = chunks[name] ?? [];
        list.push(t.dataSync() as Float32Array);
        chunks[name] = list;
      }
    });
  }
  const values: Record<string, Float32Array> = {};
  const variance: Record<string, number> = {};
  for (const [name, parts] of Object.entries(chunks)) {
    const v = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      v.set(p, o);
      o += p.length;
    }
    let mean = 0;
    for (const x of v) mean += x;
    mean /= v.length;
    let sq = 0;
    for (const x of v) sq += (x - mean) ** 2;
    values[name] = v;
    variance[name] = Math.max(sq / v.length, 1e-12);
  }
  return { values, per, variance };
}

/** Sum over outputs of mean((student - teacher)^2) / variance(teacher), for the batch `idx`. */
function mapsLoss(
  teacher: SplitMaps,
  variance: Record<string, number>,
  student: Record<string, tf.Tensor>,
  idx: readonly number[],
): tf.Scalar {
  let total: tf.Tensor = tf.scalar(0);
  for (const [name, s] of Object.entries(student)) {
    const per = teacher.per[name]!;
    const t = new Float32Array(idx.length * per);
    idx.forEach((i, k) => {
      t.set(teacher.values[name]!.subarray(i * per, (i + 1) * per), k * per);
    });
    const diff = tf.sub(s, tf.tensor(t, s.shape));
    total = tf.add(total, tf.div(tf.mean(tf.square(diff)), variance[name]!));
  }
  return total as tf.Scalar;
}

/** The held-out fit of a maps model to its FP32 outputs (top-1 does not apply: NaN). */
export function evaluateMaps(
  model: TrainableModel,
  split: TrainingSplit,
  sim: SimConfig | null,
  teacher: SplitMaps,
  variance: Record<string, number>,
  batch = 100,
): { top1: number; loss: number; teacher: TeacherFit } {
  let sum = 0;
  for (let s = 0; s < split.size; s += batch) {
    const idx = Array.from({ length: Math.min(batch, split.size - s) }, (_, k) => s + k);
    sum +=
      tf.tidy(() =>
        mapsLoss(
          teacher,
          variance,
          model.forward({ [split.input]: batchTensor(split, idx) }, sim),
          idx.map((i) => i),
        ).dataSync(),
      )[0]! * idx.length;
  }
  const mse = sum / split.size;
  return { top1: Number.NaN, loss: mse, teacher: { mse } };
}

/**
 * Runs the three-stage schedule on the prepared (BN-folded) model and returns the trained model
 * (weights via `model.weights()`) with the stage logs.
 */
export function progressiveQat(
  prepared: PreparedModel,
  opts: QatOptions,
): { model: TrainableModel; stages: StageLog[] } {
  // options first: a model registers its variables, so nothing may throw after it exists
  const distill = opts.distill;
  if (distill && !(distill.temperature > 0 && distill.weight >= 0 && distill.weight <= 1))
    throw new RangeError(
      `distill needs temperature > 0 and 0 <= weight <= 1, got ${JSON.stringify(distill)}`,
    );
  const track = opts.trackRanges;
  if (track && !(track.momentum >= 0 && track.momentum <= 1))
    throw new RangeError(`trackRanges needs 0 <= momentum <= 1, got ${track.momentum}`);
  const maps = opts.train.targets === 'maps';
  if (maps && !distill)
    throw new RangeError(
      `QAT on ${opts.train.description}: the samples have no labels (output maps), so QAT needs distillation`,
    );
  const model = new TrainableModel(prepared, opts.target);
  const batchSize = opts.batchSize ?? 32;
  const lrMax = opts.lr ?? 1e-4;
  const lrMin = lrMax / 100;
  const perEpoch = Math.ceil(opts.train.size / batchSize);
  const checkpointEvery = Math.max(1, Math.floor(perEpoch / (opts.checkpointsPerEpoch ?? 2)));
  const patience = opts.patience ?? 3;
  const divergence = (opts.divergencePoints ?? 3) / 100;
  const rand = rng(opts.seed ?? 20261126);
  const act = new Map(opts.layers.map((l) => [l.name, l.act]));
  // the float range each layer's activation parameters represent (tracking moves it)
  const actScheme = opts.target.activations;
  const { qmin, qmax } = integerRange(actScheme);
  const ranges = new Map(
    opts.layers.map((l) => [
      l.name,
      { lo: (qmin - l.act.zeroPoint) * l.act.scale, hi: (qmax - l.act.zeroPoint) * l.act.scale },
    ]),
  );
  const names = opts.layers.map((l) => l.name);
  const fp16 = opts.target.floatPath === 'fp16';
  const out = model.outputNames[0]!;
  // The FP32 model's logits (classifiers) or output maps, computed once before any weight moves.
  const teacher =
    distill && !maps
      ? {
          train: splitLogits(model, opts.train, null),
          heldOut: splitLogits(model, opts.heldOut, null),
        }
      : null;
  const teacherMaps = maps
    ? { train: splitMaps(model, opts.train, null), heldOut: splitMaps(model, opts.heldOut, null) }
    : null;
  // one scale per output for train and held-out alike: the training split's variances
  const mapVariance = teacherMaps?.train.variance ?? {};
  const evaluate = (sim: SimConfig) =>
    teacherMaps
      ? evaluateMaps(model, opts.heldOut, sim, teacherMaps.heldOut, mapVariance)
      : evaluateSplit(model, opts.heldOut, sim, 250, teacher?.heldOut);
  /** Is checkpoint a better than b? Distillation: closer to FP32; otherwise held-out top-1. */
  const better = (
    a: { top1: number; loss: number; teacher?: TeacherFit },
    b: { top1: number; loss: number; teacher?: TeacherFit },
  ): boolean =>
    a.teacher && b.teacher
      ? fitOf(a.teacher) < fitOf(b.teacher)
      : a.top1 > b.top1 || (a.top1 === b.top1 && a.loss < b.loss);
  const stages: StageLog[] = [];
  for (const [s, tiers] of STAGE_TIERS.entries()) {
    const t0 = performance.now();
    const quantized = names.filter((n) => tiers.includes(opts.tiers.get(n) ?? 'medium'));
    const sim: SimConfig = { quantized: new Set(quantized), act, fp16 };
    // training forward passes record each simulated layer's input range when tracking
    const trainSim: SimConfig = track ? { ...sim, observe: new Map() } : sim;
    const rangesNow = () => new Map(quantized.map((n) => [n, { ...ranges.get(n)! }] as const));
    const startRanges = rangesNow();
    const start = evaluate(sim);
    let best = { eval: start, snap: model.snapshot(), ranges: startRanges, index: -1 };
    const optimizer = tf.train.adam(lrMax);
    const steps = opts.epochs * perEpoch;
    const checkpoints: Checkpoint[] = [];
    let stopped: StageLog['stopped'] = 'completed';
    let sinceBest = 0;
    let lossAcc = 0;
    let lossN = 0;
    let step = 0;
    outer: for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const order = shuffled(opts.train.size, rand);
      for (let b = 0; b < perEpoch; b++) {
        const idx = order.slice(b * batchSize, (b + 1) * batchSize);
        const lr = lrMin + 0.5 * (lrMax - lrMin) * (1 + Math.cos((Math.PI * step) / steps));
        (optimizer as unknown as { learningRate: number }).learningRate = lr;
        const loss = tf.tidy(() => {
          const x = batchTensor(opts.train, idx);
          if (teacherMaps) {
            const lm = optimizer.minimize(
              () =>
                mapsLoss(
                  teacherMaps.train,
                  mapVariance,
                  model.forward({ [opts.train.input]: x }, trainSim),
                  idx,
                ),
              true,
              model.variables(),
            );
            return lm!.dataSync()[0]!;
          }
          const y = labelTensor(opts.train, idx);
          const t = teacher ? rows(teacher.train, opts.train.classes, idx) : null;
          const l = optimizer.minimize(
            () => {
              const logits = model.forward({ [opts.train.input]: x }, trainSim)[out]!;
              const ce = () => tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
              if (!distill || !t) return ce();
              const kd = distillationLoss(t, logits, distill.temperature);
              return distill.weight === 1
                ? kd
                : (tf.add(
                    tf.mul(kd, distill.weight),
                    tf.mul(ce(), 1 - distill.weight),
                  ) as tf.Scalar);
            },
            true,
            model.variables(),
          );
          return l!.dataSync()[0]!;
        });
        step++;
        if (track && trainSim.observe) {
          for (const [name, o] of trainSim.observe) {
            const r = ranges.get(name)!;
            const lo = track.momentum * r.lo + (1 - track.momentum) * o.lo;
            const hi = track.momentum * r.hi + (1 - track.momentum) * o.hi;
            if (lo === r.lo && hi === r.hi) continue; // unchanged: keep the calibrated parameters
            r.lo = lo;
            r.hi = hi;
            act.set(name, activationParams(r, actScheme));
          }
          trainSim.observe.clear();
        }
        opts.onProgress?.(s, step, steps);
        if (!Number.isFinite(loss)) {
          stopped = 'divergence';
          break outer;
        }
        lossAcc += loss;
        lossN++;
        if (step % checkpointEvery === 0 || step === steps) {
          const h = evaluate(sim);
          checkpoints.push({
            step,
            epoch: epoch + step / perEpoch - Math.floor(step / perEpoch),
            trainLoss: lossAcc / lossN,
            heldOut: h.top1,
            heldOutLoss: h.loss,
            ...(h.teacher ? { teacher: h.teacher } : {}),
            seconds: (performance.now() - t0) / 1000,
          });
          lossAcc = 0;
          lossN = 0;
          if (better(h, best.eval)) {
            best = {
              eval: h,
              snap: model.snapshot(),
              ranges: rangesNow(),
              index: checkpoints.length - 1,
            };
            sinceBest = 0;
          } else {
            sinceBest++;
            const diverged = maps
              ? fitOf(h.teacher!) > 4 * fitOf(best.eval.teacher!)
              : best.eval.top1 - h.top1 > divergence;
            if (diverged) {
              stopped = 'divergence';
              break outer;
            }
            if (sinceBest >= patience) {
              stopped = 'plateau';
              break outer;
            }
          }
        }
      }
    }
    optimizer.dispose();
    const rolledBack = best.index !== checkpoints.length - 1;
    if (rolledBack) {
      model.restore(best.snap);
      for (const [name, r] of best.ranges) {
        ranges.set(name, { ...r });
        act.set(name, activationParams(r, actScheme));
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    stages.push({
      stage: s + 1,
      tiers: [...tiers],
      quantized,
      simulatedArithmetic: true,
      epochs: opts.epochs,
      steps,
      stepsRun: step,
      lr: { max: lrMax, min: lrMin, schedule: 'cosine, restarted at the stage start' },
      start: {
        heldOut: start.top1,
        heldOutLoss: start.loss,
        ...(start.teacher ? { teacher: start.teacher } : {}),
      },
      checkpoints,
      kept: best.index,
      end: {
        heldOut: best.eval.top1,
        heldOutLoss: best.eval.loss,
        ...(best.eval.teacher ? { teacher: best.eval.teacher } : {}),
      },
      stopped,
      rolledBack,
      ...(track
        ? {
            ranges: Object.fromEntries(
              quantized.map((n) => [
                n,
                {
                  start: [startRanges.get(n)!.lo, startRanges.get(n)!.hi] as [number, number],
                  end: [ranges.get(n)!.lo, ranges.get(n)!.hi] as [number, number],
                },
              ]),
            ),
          }
        : {}),
      seconds,
      secondsPerStep: step > 0 ? seconds / step : 0,
    });
  }
  return { model, stages };
}
