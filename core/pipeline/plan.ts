/**
 * Shard planning: a phase's work (a list of samples, a sample range, or a list of layers) is cut
 * into independent shards. Sample work is cut on batch boundaries so that every shard executes
 * exactly the batches a single pass would: outputs then cannot depend on the shard count.
 */

/**
 * The most bytes one shard's output may take, encoded (replay.ts encodeShardOutput): the design
 * limit of every phase, which plans its ranges to stay under it (reference.ts PREDICTION_BYTES,
 * DESCRIPTION_BYTES); the service records a shard that passes it (functions/service/runs.ts).
 */
export const SHARD_OUTPUT_LIMIT = 1024 * 1024;

/** A half-open range of positions [start, end). */
export interface Range {
  start: number;
  end: number;
}

/**
 * Cuts [0, total) into at most `shards` contiguous ranges whose boundaries are multiples of
 * `batchSize` (the last one ends at `total`). Empty ranges are dropped.
 * @example planRanges(230, 3, 50) // 5 batches: [0,50) [50,150) [150,230)
 */
export function planRanges(total: number, shards: number, batchSize: number): Range[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`planRanges: bad total ${total}`);
  if (!Number.isInteger(shards) || shards < 1)
    throw new RangeError(`planRanges: shards must be >= 1, got ${shards}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`planRanges: bad batch size ${batchSize}`);
  const batches = Math.ceil(total / batchSize);
  const n = Math.min(shards, Math.max(1, batches));
  const out: Range[] = [];
  for (let k = 0; k < n; k++) {
    const b0 = Math.floor((k * batches) / n);
    const b1 = Math.floor(((k + 1) * batches) / n);
    const start = b0 * batchSize;
    const end = Math.min(total, b1 * batchSize);
    if (end > start) out.push({ start, end });
  }
  return out;
}

/** Splits names into at most `shards` contiguous groups of near-equal size, order kept. */
export function planGroups<T>(items: readonly T[], shards: number): T[][] {
  const n = Math.min(Math.max(1, shards), Math.max(1, items.length));
  return Array.from({ length: n }, (_, k) =>
    items.slice(Math.floor((k * items.length) / n), Math.floor(((k + 1) * items.length) / n)),
  ).filter((g) => g.length > 0);
}

/**
 * Deals items round-robin into at most `shards` groups (item i to group i mod n). For work whose
 * cost falls along the list, such as one-layer models that run from their layer on
 * (core/calibrate/prefix.ts: early layers cost the most), each group gets a share of the
 * expensive and the cheap items; contiguous groups would leave one shard with all the expensive
 * ones. {@link unstride} puts per-item results back in item order.
 */
export function planStrided<T>(items: readonly T[], shards: number): T[][] {
  const n = Math.min(Math.max(1, shards), Math.max(1, items.length));
  return Array.from({ length: n }, (_, k) => items.filter((_, i) => i % n === k)).filter(
    (g) => g.length > 0,
  );
}

/** Per-item results of {@link planStrided} groups, back in the items' order. */
export function unstride<R>(groups: readonly (readonly R[])[]): R[] {
  const n = groups.length;
  const total = groups.reduce((a, g) => a + g.length, 0);
  const out: R[] = [];
  for (let i = 0; i < total; i++) {
    const g = groups[i % n]!;
    const j = Math.floor(i / n);
    if (j >= g.length) throw new RangeError(`unstride: groups are not round-robin (item ${i})`);
    out.push(g[j]!);
  }
  return out;
}

/** Splits `xs` into consecutive groups of near-equal size, at most `size` each. */
export function captureGroups<T>(xs: readonly T[], size: number): T[][] {
  const n = Math.max(1, Math.ceil(xs.length / size));
  const per = Math.ceil(xs.length / n);
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += per) out.push(xs.slice(i, i + per));
  return out;
}
