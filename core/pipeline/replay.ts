/**
 * Deterministic replay: how one pipeline run is spread over processes that share nothing but
 * storage (worker_threads in the CLI, Queue consumers in the service).
 *
 * `runPipeline` is deterministic given its inputs and the outputs of its shards. A process that
 * knows the outputs of every finished phase can therefore re-run the pipeline from the start:
 * the replay executor answers finished phases from the cache, and when the run reaches the
 * first unfinished phase it either
 *  - executes one assigned shard of it and stops with {@link ShardDone} (a worker), or
 *  - stops with {@link PhasePending}, naming the phase and its shard count (the orchestrator,
 *    which then fans the shards out).
 * When every phase is cached the run completes and returns the result (the reduce).
 *
 * Re-running costs the pure steps between phases (decoding the model, choosing methods,
 * building the INT8 graph), which are small next to the shards' model executions. Shard
 * outputs cross process boundaries as bytes: {@link encodeShardOutput} keeps typed arrays and
 * non-finite numbers exact, so a replayed run sees exactly what a single process would have.
 */

import {
  type PhaseMeta,
  type PipelineInputs,
  type PipelineOptions,
  type PipelineResult,
  runPipeline,
  type ShardExecutor,
} from './run.ts';

/** The outputs of finished phases, by phase name (each phase runs once per run). */
export type PhaseCache = ReadonlyMap<string, readonly unknown[]>;

/** Thrown by a replay when it has executed its assigned shard. */
export class ShardDone extends Error {
  constructor(
    readonly phase: string,
    readonly index: number,
    readonly shards: number,
    readonly output: unknown,
    /** The shard's input and its phase's meta (a shared phase's output may be cached by them). */
    readonly input: unknown = undefined,
    readonly meta: PhaseMeta = {},
  ) {
    super(`shard ${index + 1}/${shards} of phase '${phase}' done`);
    this.name = 'ShardDone';
  }
}

/** Thrown by a replay that reached a phase with no cached outputs and no shard to run. */
export class PhasePending extends Error {
  constructor(
    readonly phase: string,
    readonly shards: number,
    /** The shards' inputs (serializable), for an orchestrator that caches shared phases. */
    readonly inputs: readonly unknown[] = [],
    readonly meta: PhaseMeta = {},
  ) {
    super(`phase '${phase}' needs ${shards} shard(s)`);
    this.name = 'PhasePending';
  }
}

/** Options of {@link replayExecutor}. */
export interface ReplayOptions {
  /** Outputs of the finished phases. */
  cache: PhaseCache;
  /** The one shard this process executes (a worker); absent for the orchestrator. */
  shard?: { phase: string; index: number };
  /** Called for every phase the run reaches, cached or not, in order. */
  onPhase?: (phase: string, shards: number, cached: boolean) => void;
}

/**
 * An executor for a replayed run; see the module comment.
 * @throws ShardDone after running the assigned shard; PhasePending at the first unfinished phase
 */
export function replayExecutor(options: ReplayOptions): ShardExecutor {
  const seen = new Set<string>();
  return async <I, O>(
    phase: string,
    inputs: readonly I[],
    run: (input: I, i: number) => Promise<O>,
    meta?: PhaseMeta,
  ) => {
    if (seen.has(phase)) throw new Error(`replay: phase '${phase}' reached twice in one run`);
    seen.add(phase);
    const cached = options.cache.get(phase);
    options.onPhase?.(phase, inputs.length, cached !== undefined);
    if (cached) {
      if (cached.length !== inputs.length) {
        throw new Error(
          `replay: phase '${phase}' has ${cached.length} cached outputs but the run plans ${inputs.length} shards (the inputs differ from the run that produced them)`,
        );
      }
      return cached as O[];
    }
    const shard = options.shard;
    if (shard && shard.phase === phase) {
      if (!Number.isInteger(shard.index) || shard.index < 0 || shard.index >= inputs.length) {
        throw new RangeError(
          `replay: shard ${shard.index} of phase '${phase}' does not exist (${inputs.length} shards)`,
        );
      }
      const output = await run(inputs[shard.index]!, shard.index);
      throw new ShardDone(phase, shard.index, inputs.length, output, inputs[shard.index], meta);
    }
    if (shard) {
      throw new Error(
        `replay: reached phase '${phase}' before the assigned phase '${shard.phase}' (a previous phase is missing from the cache)`,
      );
    }
    throw new PhasePending(phase, inputs.length, inputs, meta);
  };
}

// ---------------------------------------------------------------------------------------------
// Shard output codec

const TYPED = {
  Float32Array,
  Float64Array,
  Int8Array,
  Uint8Array,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedName = keyof typeof TYPED;

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function unbase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Serializes a shard output (plain objects, arrays, numbers, strings, booleans, null, typed
 * arrays, bigints) to UTF-8 JSON bytes that {@link decodeShardOutput} restores exactly:
 * typed arrays keep their type and bits, and NaN, ±Infinity and -0 survive (plain JSON would
 * turn them into null or 0). Maps, class instances and functions are rejected.
 */
export function encodeShardOutput(value: unknown): Uint8Array {
  const text = JSON.stringify(value, function (this: unknown, _key, v: unknown) {
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return { $num: 'NaN' };
      if (v === Number.POSITIVE_INFINITY) return { $num: 'Infinity' };
      if (v === Number.NEGATIVE_INFINITY) return { $num: '-Infinity' };
      if (Object.is(v, -0)) return { $num: '-0' };
      return v;
    }
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    if (v === undefined || v === null || typeof v !== 'object') {
      if (typeof v === 'function' || typeof v === 'symbol')
        throw new TypeError('encodeShardOutput: functions and symbols cannot be serialized');
      return v;
    }
    if (ArrayBuffer.isView(v)) {
      const name = v.constructor.name as TypedName;
      if (!(name in TYPED)) throw new TypeError(`encodeShardOutput: unsupported view ${name}`);
      return {
        $typed: name,
        b64: base64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)),
      };
    }
    if (Array.isArray(v)) return v;
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(
        `encodeShardOutput: ${(v as object).constructor?.name ?? 'object'} is not a plain object`,
      );
    }
    return v;
  });
  return new TextEncoder().encode(text ?? 'null');
}

/**
 * The longest text {@link encodeShardOutput} writes for a finite number: JavaScript's shortest
 * round-trip form has at most 17 significant digits, so `-0.0000012345678901234567` (sign, `0.`,
 * five zeros, 17 digits; from 1e-7 on the form is exponential, `-1.2345678901234567e-300`, 24)
 * is the longest: 25 characters. NaN, ±Infinity and -0 take at most 20 (`{"$num":"-Infinity"}`).
 */
export const NUMBER_JSON_BYTES = 25;

/** Exact bytes of a Float32Array of `n` elements in {@link encodeShardOutput}'s output. */
export function float32JsonBytes(n: number): number {
  return '{"$typed":"Float32Array","b64":""}'.length + 4 * Math.ceil((4 * n) / 3);
}

/** Restores a value written by {@link encodeShardOutput}. */
export function decodeShardOutput(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes), (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    if (typeof o.$num === 'string') return Number(o.$num);
    if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (typeof o.$typed === 'string' && typeof o.b64 === 'string') {
      const Ctor = TYPED[o.$typed as TypedName];
      if (!Ctor) throw new TypeError(`decodeShardOutput: unknown typed array ${o.$typed}`);
      const bytes = unbase64(o.b64);
      // Copy into a fresh, aligned buffer.
      const buf = new ArrayBuffer(bytes.length);
      new Uint8Array(buf).set(bytes);
      return new Ctor(buf);
    }
    return v;
  });
}

// ---------------------------------------------------------------------------------------------
// Driving a replay

/** What one replayed run ended with. */
export type ReplayOutcome =
  | { kind: 'complete'; result: PipelineResult }
  | {
      kind: 'pending';
      phase: string;
      shards: number;
      inputs: readonly unknown[];
      meta: PhaseMeta;
    }
  | {
      kind: 'shard';
      phase: string;
      index: number;
      shards: number;
      output: unknown;
      input: unknown;
      meta: PhaseMeta;
    };

/**
 * Replays `runPipeline` over the cached phases: completes it, stops at the first unfinished
 * phase, or executes the one assigned shard.
 */
export async function replayPipeline<L, P>(
  inputs: PipelineInputs<L, P>,
  options: Omit<PipelineOptions, 'executor'>,
  replay: ReplayOptions,
): Promise<ReplayOutcome> {
  try {
    const result = await runPipeline(inputs, { ...options, executor: replayExecutor(replay) });
    return { kind: 'complete', result };
  } catch (err) {
    if (err instanceof ShardDone)
      return {
        kind: 'shard',
        phase: err.phase,
        index: err.index,
        shards: err.shards,
        output: err.output,
        input: err.input,
        meta: err.meta,
      };
    if (err instanceof PhasePending)
      return {
        kind: 'pending',
        phase: err.phase,
        shards: err.shards,
        inputs: err.inputs,
        meta: err.meta,
      };
    throw err;
  }
}

/**
 * Runs a pipeline the way a distributed deployment does, in this process: every shard is a
 * separate replay whose output goes through the byte codec, and `order` decides in which order
 * a phase's shards execute (default: as planned). Used by tests to prove that the distributed
 * execution gives the same result as a single process, for any shard count and order.
 */
export async function runByReplay<L, P>(
  inputs: PipelineInputs<L, P>,
  options: Omit<PipelineOptions, 'executor'>,
  order: (shards: number) => number[] = (n) => Array.from({ length: n }, (_, i) => i),
): Promise<PipelineResult> {
  const cache = new Map<string, unknown[]>();
  for (;;) {
    const step = await replayPipeline(inputs, options, { cache });
    if (step.kind === 'complete') return step.result;
    if (step.kind === 'shard') throw new Error('runByReplay: orchestrator ran a shard');
    const outputs: unknown[] = new Array(step.shards);
    for (const index of order(step.shards)) {
      const done = await replayPipeline(inputs, options, {
        cache,
        shard: { phase: step.phase, index },
      });
      if (done.kind !== 'shard' || done.phase !== step.phase || done.index !== index)
        throw new Error(`runByReplay: shard ${index} of '${step.phase}' did not run`);
      outputs[index] = decodeShardOutput(encodeShardOutput(done.output));
    }
    cache.set(step.phase, outputs);
  }
}
