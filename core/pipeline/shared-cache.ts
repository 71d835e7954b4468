/**
 * Caching of shared phases (the FP32 reference pass, core/pipeline/reference.ts) by content.
 *
 * A shared phase's shard output is a function of the model bytes, the split data, the runtime
 * and the shard input alone. {@link sharedShardKey} hashes exactly those into a key;
 * {@link cachingExecutor} wraps any executor so that shards of shared phases whose key is in the
 * store are answered from it (decoded through the shard codec, so a cached output is the same
 * value the shard returns) and the others run and are stored. Phases that depend on the recipe
 * always run. Whether a shard came from the cache changes no result: the store holds the bytes
 * an execution produced, and the key changes whenever anything the output depends on changes.
 */
import { sha256Hex } from '../data/split-store.ts';
import { getRuntimeInfo } from '../runtime/index.ts';
import { decodeShardOutput, encodeShardOutput } from './replay.ts';
import type { ShardExecutor } from './run.ts';

/**
 * Bumped whenever the meaning or encoding of a shared shard output, or of its key, changes.
 * 2: a shard that reads one split is keyed by that split's digest alone. 3: the reference pass
 * runs batches of 10, not 50 (the same bytes for every zoo model, not promised for every model).
 */
export const SHARED_FORMAT = 3;

/** Where cached shard outputs live (a folder in the CLI; R2 could serve the service). */
export interface SharedStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/**
 * What a shared output depends on besides the shard input: digests of the model bytes and of
 * both splits' model inputs, and the runtime version.
 */
export interface SharedIdentity {
  model: string;
  calibration: string;
  evaluation: string;
  runtime: string;
}

/** The runtime part of a {@link SharedIdentity}: the onnxruntime-web build that runs the model. */
export async function runtimeIdentity(): Promise<string> {
  return `onnxruntime-web ${(await getRuntimeInfo()).ortVersion}`;
}

/**
 * The cache key of one shard of a shared phase. A shard that names the split it reads (the
 * reference pass's `split`) depends on that split alone: its key leaves the other split out, so
 * `calibrate` (no evaluation split) and `score` share the calibration ranges.
 */
export async function sharedShardKey(
  identity: SharedIdentity,
  phase: string,
  input: unknown,
): Promise<string> {
  const split = (input as { split?: unknown } | null)?.split;
  const depends =
    split === 'calibration' || split === 'evaluation'
      ? { model: identity.model, runtime: identity.runtime, [split]: identity[split] }
      : identity;
  const text = JSON.stringify({ format: SHARED_FORMAT, identity: depends, phase, input });
  return sha256Hex(new TextEncoder().encode(text));
}

/** The keys of a shared phase's shards and the stored outputs (undefined: not stored yet). */
export async function lookupShared(
  store: SharedStore,
  identity: SharedIdentity,
  phase: string,
  inputs: readonly unknown[],
): Promise<{ keys: string[]; found: (Uint8Array | undefined)[] }> {
  const keys = await Promise.all(inputs.map((input) => sharedShardKey(identity, phase, input)));
  return { keys, found: await Promise.all(keys.map((k) => store.get(k))) };
}

/** Shards served from the store, per phase (filled by {@link cachingExecutor}). */
export type CacheCounts = Map<string, number>;

/** Wraps `base`: shared phases are answered from `store` where it has them. */
export function cachingExecutor(
  base: ShardExecutor,
  store: SharedStore,
  identity: SharedIdentity,
  counts: CacheCounts = new Map(),
): ShardExecutor {
  return async <I, O>(
    phase: string,
    inputs: readonly I[],
    run: (input: I, index: number) => Promise<O>,
    meta?: { shared?: boolean },
  ): Promise<O[]> => {
    if (!meta?.shared) return base(phase, inputs, run, meta);
    const { keys, found } = await lookupShared(store, identity, phase, inputs);
    const missing = inputs.flatMap((input, i) => (found[i] ? [] : [{ input, i }]));
    counts.set(phase, inputs.length - missing.length);
    const ran = await base(
      phase,
      missing.map((m) => m.input),
      async (input, j) => {
        const out = await run(input, missing[j]!.i);
        await store.put(keys[missing[j]!.i]!, encodeShardOutput(out));
        return out;
      },
      meta,
    );
    const outputs = found.map((bytes) =>
      bytes ? (decodeShardOutput(bytes) as O) : (undefined as O),
    );
    missing.forEach((m, j) => {
      outputs[m.i] = ran[j]!;
    });
    return outputs;
  };
}
