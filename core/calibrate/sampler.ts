/**
 * Calibration sample selection (pillar 1: "~50 unlabelled samples covering normal, edge and rare
 * cases"). Two steps:
 *
 * 1. {@link describeSamples}: the FP32 model runs over the calibration split (no labels: only its
 *    outputs are used) and each sample gets an embedding (the first output, e.g. logits, or a
 *    captured tensor the caller names, e.g. a penultimate feature map), a stratum (the FP32
 *    predicted class) and a confidence margin (top-1 minus top-2 softmax probability). Shardable
 *    by sample range; {@link mergeDescriptions} concatenates shards in index order.
 * 2. {@link selectSamples} (pure, deterministic for a seed): edge samples (lowest margins), then
 *    strata by predicted class with proportional allocation (largest remainder, at least one per
 *    stratum when the budget allows), extra "rare" samples for the smallest strata, and within
 *    each stratum greedy k-center (farthest point) over z-scored embeddings, starting from the
 *    stratum's edge samples or, when it has none, from its most typical sample (nearest to the
 *    stratum centroid: the "normal" case). The seed orders ties.
 *
 * {@link randomSamples} (seeded Fisher-Yates) is the baseline.
 */
import { type BatchSource, DEFAULT_BATCH_SIZE } from '../evaluate/predict.ts';
import { encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { withOutputs } from '../onnx/outputs.ts';
import { createSession } from '../runtime/index.ts';
import type { TensorData } from '../tensor/index.ts';

export { seededPrng } from '../random.ts';

import { seededPrng } from '../random.ts';

/**
 * The coverage sampler's pool: it chooses among the first `pool` samples of a split of `size`
 * (recipe `calibration.pool`; default the whole split). Every pooled sample costs one FP32
 * execution in the reference pass, but more candidates cover the data better: fmnist-resnet
 * (5,000-sample split, 50 samples) measured 38.9 / 41.2 / 42.4 / 43.0 dB output SQNR with pools
 * of 1,000 / 2,000 / 3,000 / 5,000 (docs/CALIBRATION.md), so the default keeps them all. A
 * smaller pool is for large calibration sets, where describing every sample would cost more
 * than the rest of the run.
 */
export function samplerPool(size: number, pool?: number): number {
  return Math.min(size, pool ?? size);
}

/** Per-sample descriptions of a range of the calibration split [start, start + count). */
export interface SampleDescriptions {
  start: number;
  count: number;
  /** Embedding length. */
  dim: number;
  /** count x dim, row-major. */
  embeddings: Float32Array;
  /** Stratum (FP32 predicted class) per sample. */
  strata: Int32Array;
  /** FP32 confidence margin per sample (top-1 minus top-2 probability); NaN when unknown. */
  margins: Float32Array;
}

/** What a sample's FP32 outputs say about it. */
export interface SampleLabel {
  stratum: number;
  margin: number;
}

/** Options of {@link describeSamples}. */
export interface DescribeOptions {
  start?: number;
  end?: number;
  /** Samples per execution (default DEFAULT_BATCH_SIZE). */
  batchSize?: number;
  /** Tensor used as embedding (default: the model's first output). May be an intermediate. */
  embedding?: string;
  /**
   * Stratum and margin per sample from a batch's outputs. Default: when the first output is
   * 2-D [N, C] logits, the argmax class (ties to the lowest index) and the softmax margin;
   * otherwise one stratum (0) and no margin (no edge samples).
   */
  label?: (outputs: Record<string, TensorData>, batchSize: number) => SampleLabel[];
  onProgress?: (done: number, total: number) => void;
}

function floats(t: TensorData | undefined, name: string): Float32Array {
  if (t?.type !== 'float32')
    throw new TypeError(`sampler: tensor '${name}' is ${t?.type ?? 'missing'}, not float32`);
  return t.data as Float32Array;
}

/** Argmax class and softmax top-1 minus top-2 probability of each row of [n, c] logits. */
export function logitLabels(logits: Float32Array, n: number, c: number): SampleLabel[] {
  const out: SampleLabel[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < c; j++) {
      const v = logits[i * c + j]!;
      if (v > max) {
        max = v;
        best = j;
      }
    }
    let sum = 0;
    let second = 0;
    for (let j = 0; j < c; j++) {
      const e = Math.exp(logits[i * c + j]! - max);
      sum += e;
      if (j !== best) second = Math.max(second, e);
    }
    out.push({ stratum: best, margin: c > 1 ? (1 - second) / sum : 1 });
  }
  return out;
}

/**
 * Accumulates the descriptions of samples [start, start + count) from the FP32 outputs of
 * consecutive batches: what {@link describeSamples} does with its own session, usable by a
 * caller that already runs the FP32 model over the same batches (the pipeline's reference pass).
 */
export class SampleDescriber {
  private readonly strata: Int32Array;
  private readonly margins: Float32Array;
  private embeddings = new Float32Array(0);
  private dim = 0;

  constructor(
    private readonly start: number,
    private readonly count: number,
    private readonly options: Pick<DescribeOptions, 'embedding' | 'label'> = {},
  ) {
    this.strata = new Int32Array(count);
    this.margins = new Float32Array(count).fill(Number.NaN);
  }

  /** Describes samples [s, s + n) from their batch's outputs (`first`: the model's first output). */
  add(outputs: Record<string, TensorData>, first: string, s: number, n: number): void {
    const embName = this.options.embedding ?? first;
    const emb = floats(outputs[embName], embName);
    if (this.dim === 0) {
      this.dim = emb.length / n;
      this.embeddings = new Float32Array(this.count * this.dim);
    }
    if (emb.length !== n * this.dim)
      throw new RangeError('describeSamples: embedding size changed');
    this.embeddings.set(emb, (s - this.start) * this.dim);
    let labels: SampleLabel[];
    if (this.options.label) labels = this.options.label(outputs, n);
    else {
      const o = outputs[first]!;
      labels =
        o.dims.length === 2 && o.type === 'float32'
          ? logitLabels(o.data as Float32Array, n, o.dims[1]!)
          : Array.from({ length: n }, () => ({ stratum: 0, margin: Number.NaN }));
    }
    for (let i = 0; i < n; i++) {
      this.strata[s - this.start + i] = labels[i]!.stratum;
      this.margins[s - this.start + i] = labels[i]!.margin;
    }
  }

  result(): SampleDescriptions {
    const { start, count, dim, embeddings, strata, margins } = this;
    return { start, count, dim, embeddings, strata, margins };
  }
}

/** Runs the FP32 model over samples [start, end) and describes each sample. */
export async function describeSamples(
  model: ModelProto,
  source: BatchSource,
  options: DescribeOptions = {},
): Promise<SampleDescriptions> {
  const start = options.start ?? 0;
  const end = options.end ?? source.size;
  if (
    !(
      Number.isInteger(start) &&
      Number.isInteger(end) &&
      start >= 0 &&
      start <= end &&
      end <= source.size
    )
  )
    throw new RangeError(`describeSamples: range [${start}, ${end}) outside 0..${source.size}`);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const session = await createSession(
    encodeModel(options.embedding ? withOutputs(model, [options.embedding]) : model),
  );
  const count = end - start;
  const describer = new SampleDescriber(start, count, options);
  try {
    const first = session.outputNames[0]!;
    for (let s = start; s < end; s += batchSize) {
      const e = Math.min(end, s + batchSize);
      describer.add(await session.run(await source.batch(s, e)), first, s, e - s);
      options.onProgress?.(e - start, count);
    }
  } finally {
    await session.release();
  }
  return describer.result();
}

/** Concatenates shard descriptions (any order in, index order out; ranges must tile). */
export function mergeDescriptions(parts: readonly SampleDescriptions[]): SampleDescriptions {
  const sorted = [...parts].filter((p) => p.count > 0).sort((a, b) => a.start - b.start);
  if (sorted.length === 0) throw new RangeError('mergeDescriptions: nothing to merge');
  const dim = sorted[0]!.dim;
  const start = sorted[0]!.start;
  let count = 0;
  for (const p of sorted) {
    if (p.dim !== dim) throw new RangeError('mergeDescriptions: embedding sizes differ');
    if (p.start !== start + count)
      throw new RangeError(`mergeDescriptions: gap or overlap at sample ${start + count}`);
    count += p.count;
  }
  const out: SampleDescriptions = {
    start,
    count,
    dim,
    embeddings: new Float32Array(count * dim),
    strata: new Int32Array(count),
    margins: new Float32Array(count),
  };
  for (const p of sorted) {
    const o = p.start - start;
    out.embeddings.set(p.embeddings, o * dim);
    out.strata.set(p.strata, o);
    out.margins.set(p.margins, o);
  }
  return out;
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
function permutation(n: number, seed: number): number[] {
  const rand = seededPrng(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** `count` indices spread evenly over 0..size-1 (the `spread` sampler; no model run needed). */
export function spreadIndices(size: number, count: number): number[] {
  const n = Math.min(size, count);
  return Array.from({ length: n }, (_, i) => Math.floor((i * size) / n));
}

/** Baseline: `n` distinct indices of 0..size-1 drawn by a seeded Fisher-Yates shuffle, sorted. */
export function randomSamples(size: number, n: number, seed: number): number[] {
  return permutation(size, seed)
    .slice(0, Math.min(n, size))
    .sort((a, b) => a - b);
}

/** Why a sample was chosen. */
export type SampleKind = 'normal' | 'edge' | 'rare';

/** Options of {@link selectSamples}. */
export interface SelectOptions {
  /** Share of the budget spent on the lowest-margin samples (default 0.1). */
  edgeFraction?: number;
  /** Share of the budget given on top of proportional allocation to the smallest strata (0.1). */
  rareFraction?: number;
}

/** What {@link selectSamples} chose. */
export interface SampleSelection {
  /** Chosen indices into the split (absolute: `start` added), ascending. */
  indices: number[];
  /** Why each index was chosen (aligned with `indices`). */
  kinds: SampleKind[];
  report: {
    requested: number;
    chosen: number;
    seed: number;
    /** Per stratum (ascending stratum id): its size in the split and samples chosen from it. */
    strata: { stratum: number; size: number; chosen: number }[];
    edge: number;
    rare: number;
    normal: number;
  };
}

/** Z-scores each embedding dimension over all samples (constant dimensions become 0). */
function standardise(d: SampleDescriptions): Float64Array {
  const { count, dim, embeddings } = d;
  const out = new Float64Array(count * dim);
  for (let j = 0; j < dim; j++) {
    let mean = 0;
    for (let i = 0; i < count; i++) mean += embeddings[i * dim + j]!;
    mean /= count;
    let v = 0;
    for (let i = 0; i < count; i++) v += (embeddings[i * dim + j]! - mean) ** 2;
    const sd = Math.sqrt(v / count);
    if (!(sd > 0)) continue;
    for (let i = 0; i < count; i++) out[i * dim + j] = (embeddings[i * dim + j]! - mean) / sd;
  }
  return out;
}

/**
 * Chooses `n` samples covering the split (see the module comment). Deterministic for a seed.
 * Indices returned are absolute (`descriptions.start` added).
 */
export function selectSamples(
  d: SampleDescriptions,
  n: number,
  seed: number,
  options: SelectOptions = {},
): SampleSelection {
  const size = d.count;
  const N = Math.max(0, Math.min(Math.floor(n), size));
  const order = permutation(size, seed);
  const tieRank = new Int32Array(size);
  for (let k = 0; k < size; k++) tieRank[order[k]!] = k;
  const kind = new Map<number, SampleKind>();

  // 1. Edge cases: the lowest FP32 confidence margins.
  const hasMargins = Array.from(d.margins).some((m) => Number.isFinite(m));
  const nEdge = hasMargins ? Math.round((options.edgeFraction ?? 0.1) * N) : 0;
  const byMargin = order
    .filter((i) => Number.isFinite(d.margins[i]!))
    .sort((a, b) => d.margins[a]! - d.margins[b]! || tieRank[a]! - tieRank[b]!);
  for (const i of byMargin.slice(0, nEdge)) kind.set(i, 'edge');

  // 2. Strata by predicted class and their allocation.
  const members = new Map<number, number[]>();
  for (let i = 0; i < size; i++) {
    const s = d.strata[i]!;
    if (!members.has(s)) members.set(s, []);
    members.get(s)!.push(i);
  }
  const ids = [...members.keys()].sort((a, b) => a - b);
  const sizeOf = (s: number) => members.get(s)!.length;
  const free = (s: number) => members.get(s)!.filter((i) => !kind.has(i)).length;
  const alloc = new Map(ids.map((s) => [s, 0]));
  const budget = N - kind.size;
  // With a single stratum nothing is rare: the whole budget goes to k-center.
  const nRare =
    ids.length > 1 ? Math.min(budget, Math.round((options.rareFraction ?? 0.1) * N)) : 0;
  let prop = budget - nRare;
  // At least one per stratum while the budget allows (largest strata first), then largest
  // remainder against the proportional target, never beyond a stratum's free samples.
  const bySizeDesc = [...ids].sort((a, b) => sizeOf(b) - sizeOf(a) || a - b);
  for (const s of bySizeDesc) {
    if (prop === 0) break;
    if (free(s) > 0) {
      alloc.set(s, 1);
      prop--;
    }
  }
  const give = (pick: (candidates: number[]) => number | undefined, count: number): number => {
    let given = 0;
    for (; given < count; given++) {
      const open = ids.filter((s) => alloc.get(s)! < free(s));
      const s = pick(open);
      if (s === undefined) break;
      alloc.set(s, alloc.get(s)! + 1);
    }
    return given;
  };
  const propTotal = budget - nRare;
  const deficit = (s: number) => (propTotal * sizeOf(s)) / size - alloc.get(s)!;
  const leftover =
    prop -
    give(
      (open) => open.sort((a, b) => deficit(b) - deficit(a) || sizeOf(b) - sizeOf(a) || a - b)[0],
      prop,
    );
  // Rare: extra samples, one at a time, to the stratum with the fewest members per sample chosen.
  const rareGiven = give(
    (open) =>
      open.sort(
        (a, b) =>
          sizeOf(a) * (alloc.get(a)! + 1) - sizeOf(b) * (alloc.get(b)! + 1) ||
          sizeOf(a) - sizeOf(b) ||
          a - b,
      )[0],
    nRare + leftover,
  );
  const rareCount = Math.min(nRare, rareGiven);

  // 3. Greedy k-center within each stratum over z-scored embeddings.
  const z = standardise(d);
  const dim = d.dim;
  const dist2 = (a: number, b: number) => {
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const t = z[a * dim + j]! - z[b * dim + j]!;
      s += t * t;
    }
    return s;
  };
  const chosen: number[] = [...kind.keys()];
  const perStratum = new Map(ids.map((s) => [s, 0]));
  for (const i of chosen) perStratum.set(d.strata[i]!, perStratum.get(d.strata[i]!)! + 1);
  for (const s of ids) {
    let k = alloc.get(s)!;
    if (k === 0) continue;
    const pool = members.get(s)!;
    const centres = pool.filter((i) => kind.has(i));
    const best = new Float64Array(pool.length).fill(Number.POSITIVE_INFINITY);
    const update = (c: number) => {
      for (let p = 0; p < pool.length; p++) best[p] = Math.min(best[p]!, dist2(pool[p]!, c));
    };
    for (const c of centres) update(c);
    const take = (i: number, why: SampleKind) => {
      kind.set(i, why);
      chosen.push(i);
      update(i);
      k--;
    };
    if (centres.length === 0) {
      // Most typical member: nearest to the stratum centroid.
      const centroid = new Float64Array(dim);
      for (const i of pool)
        for (let j = 0; j < dim; j++) centroid[j]! += z[i * dim + j]! / pool.length;
      let pick = -1;
      let pickD = Number.POSITIVE_INFINITY;
      for (const i of pool) {
        let s2 = 0;
        for (let j = 0; j < dim; j++) s2 += (z[i * dim + j]! - centroid[j]!) ** 2;
        if (s2 < pickD || (s2 === pickD && tieRank[i]! < tieRank[pick]!)) {
          pick = i;
          pickD = s2;
        }
      }
      take(pick, 'normal');
    }
    while (k > 0) {
      let pick = -1;
      let pickD = -1;
      for (let p = 0; p < pool.length; p++) {
        const i = pool[p]!;
        if (kind.has(i)) continue;
        const b = best[p]!;
        if (b > pickD || (b === pickD && tieRank[i]! < tieRank[pick]!)) {
          pick = i;
          pickD = b;
        }
      }
      if (pick < 0) break;
      take(pick, 'normal');
    }
    perStratum.set(s, pool.filter((i) => kind.has(i)).length);
  }
  // Label the rare extras: within the smallest strata that received more than their proportional
  // share, the last picks (farthest from what was already chosen).
  let rareLeft = rareCount;
  const smallestFirst = [...ids].sort((a, b) => sizeOf(a) - sizeOf(b) || a - b);
  for (const s of smallestFirst) {
    if (rareLeft === 0) break;
    const share = Math.max(1, Math.round((propTotal * sizeOf(s)) / size));
    const normals = chosen.filter((i) => d.strata[i] === s && kind.get(i) === 'normal');
    const extra = Math.min(rareLeft, Math.max(0, normals.length - share));
    for (const i of normals.slice(normals.length - extra)) kind.set(i, 'rare');
    rareLeft -= extra;
  }
  const indices = [...chosen].sort((a, b) => a - b);
  const kinds = indices.map((i) => kind.get(i)!);
  const count = (k: SampleKind) => kinds.filter((x) => x === k).length;
  return {
    indices: indices.map((i) => i + d.start),
    kinds,
    report: {
      requested: n,
      chosen: indices.length,
      seed,
      strata: ids.map((s) => ({ stratum: s, size: sizeOf(s), chosen: perStratum.get(s)! })),
      edge: count('edge'),
      rare: count('rare'),
      normal: count('normal'),
    },
  };
}
