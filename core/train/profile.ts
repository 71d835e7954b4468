/**
 * Where a QAT training step spends its time: TensorFlow.js's kernel profiler (`tf.profile`)
 * over a few steps, kernel times summed by kernel and by category, beside the wall time (the
 * difference is JavaScript and engine overhead: tape, tensor bookkeeping, allocation).
 */
import { tf } from './backend.ts';
import type { SimConfig, TrainableModel } from './model.ts';
import type { TrainingSplit } from './qat.ts';

/** Kernel categories of the profile. */
const CATEGORY: Record<string, string> = {
  Conv2D: 'convolution',
  FusedConv2D: 'convolution',
  DepthwiseConv2dNative: 'convolution',
  BatchMatMul: 'matmul',
  _FusedMatMul: 'matmul',
  Transpose: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Pad: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  PadV2: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Slice: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Reshape: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Reverse: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Concat: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Identity: 'layout (transpose/pad/slice/reshape/reverse/concat)',
  Max: 'reductions',
  Sum: 'reductions',
  Mean: 'reductions',
};

/** One kernel's share of the profiled steps. */
export interface KernelTime {
  kernel: string;
  category: string;
  ms: number;
  calls: number;
}

/** The profile of `steps` training steps. */
export interface StepProfile {
  steps: number;
  batch: number;
  wallMsPerStep: number;
  kernelMsPerStep: number;
  byCategory: { category: string; msPerStep: number; share: number }[];
  top: KernelTime[];
}

/** Profiles `steps` Adam steps of `model` with `sim` on the first samples of `split`. */
export async function profileSteps(
  model: TrainableModel,
  split: TrainingSplit,
  sim: SimConfig | null,
  steps: number,
  batch: number,
): Promise<StepProfile> {
  const optimizer = tf.train.adam(1e-5);
  const per = split.sampleDims.reduce((p, d) => p * d, 1);
  const out = model.outputNames[0]!;
  const kernels = new Map<string, KernelTime>();
  let wall = 0;
  for (let s = 0; s < steps; s++) {
    const x = tf.tensor(split.data.slice(0, batch * per), [batch, ...split.sampleDims]);
    const y = tf.oneHot(
      tf.tensor1d(Array.from(split.labels.slice(0, batch)), 'int32'),
      split.classes,
    );
    const t0 = performance.now();
    const info = await tf.profile(() => {
      const l = optimizer.minimize(
        () =>
          tf.losses.softmaxCrossEntropy(
            y,
            model.forward({ [split.input]: x }, sim)[out]!,
          ) as tf.Scalar,
        true,
        model.variables(),
      );
      l?.dataSync();
      l?.dispose();
    });
    wall += performance.now() - t0;
    x.dispose();
    y.dispose();
    for (const k of info.kernels) {
      // tf.customGrad's 'forward' entry wraps kernels that are also listed: not counted twice.
      if (k.name === 'forward') continue;
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const cur = kernels.get(k.name) ?? {
        kernel: k.name,
        category: CATEGORY[k.name] ?? 'elementwise (fake quantization, activations, Adam)',
        ms: 0,
        calls: 0,
      };
      cur.ms += ms;
      cur.calls++;
      kernels.set(k.name, cur);
    }
  }
  optimizer.dispose();
  const all = [...kernels.values()].sort((a, b) => b.ms - a.ms);
  const total = all.reduce((p, k) => p + k.ms, 0);
  const cats = new Map<string, number>();
  for (const k of all) cats.set(k.category, (cats.get(k.category) ?? 0) + k.ms);
  return {
    steps,
    batch,
    wallMsPerStep: wall / steps,
    kernelMsPerStep: total / steps,
    byCategory: [...cats.entries()]
      .map(([category, ms]) => ({ category, msPerStep: ms / steps, share: ms / total }))
      .sort((a, b) => b.msPerStep - a.msPerStep),
    top: all.slice(0, 12).map((k) => ({ ...k, ms: k.ms / steps, calls: k.calls / steps })),
  };
}
