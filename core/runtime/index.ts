/**
 * The one onnxruntime-web session factory of the project, shared by the CLI (Node) and the
 * Worker (workerd). Pure: it imports no ORT value and nothing from `node:`. The ORT module is
 * supplied by a loader (the seam), registered once per process with `configureRuntime()`:
 *
 * - Node: `cli/runtime-node.ts` (`useNodeRuntime()`), the WASM backend of `onnxruntime-web`
 *   with the .wasm bytes read from node_modules, never from the network.
 * - workerd: `functions/runtime-workerd.ts` (`useWorkerdRuntime()`), `onnxruntime-web/wasm`
 *   bound to the precompiled `ort-wasm-simd-threaded.wasm` module.
 *
 * Every session is single-threaded (`numThreads = 1`, sequential execution) and by default runs
 * the graph exactly as written (`graphOptimizationLevel: 'disabled'`), so the same model and
 * feeds give bit-identical outputs in Node and in workerd.
 *
 * @example
 * useNodeRuntime(); // or useWorkerdRuntime() in a Worker
 * const s = await createSession(modelBytes);
 * const out = await s.run({ input: tensor('float32', [1, 3], new Float32Array([1, 2, 3])) });
 * s.release();
 */

import type * as Ort from 'onnxruntime-web';
import type { TensorData } from '../tensor/index.ts';
import { checkFeed, fromOrtTensor, type OrtTensorConstructor, toOrtTensor } from './convert.ts';

/** What a loader hands over: an onnxruntime-web module (`onnxruntime-web` or `onnxruntime-web/wasm`). */
export type OrtModule = Pick<typeof Ort, 'InferenceSession' | 'Tensor' | 'env'>;

/** The seam between the pure factory and a platform. */
export interface RuntimeLoader {
  /** Short name for diagnostics, e.g. 'node' or 'workerd'. */
  readonly name: string;
  /**
   * Imports and prepares ORT for this platform (where the WASM comes from, no network). Called
   * at most once per process; the factory then forces `numThreads = 1` and `proxy = false`.
   */
  load(): Promise<OrtModule>;
}

/** Graph optimisation levels offered (ORT's 'layout' is left out: it is for other EPs). */
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /**
   * ORT graph optimisations. Default 'disabled': the graph runs node by node as written (no
   * Conv+BN folding, no QDQ fusion into QLinear ops), which is what a quantisation benchmark
   * must measure. Higher levels are deterministic too, but may change results in the last bits
   * relative to the unoptimised graph.
   */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Values for symbolic (free) dimensions, e.g. `{ batch: 1 }`: lets ORT plan memory. */
  freeDimensionOverrides?: Readonly<Record<string, number>>;
  /** ORT log severity: 0 verbose ... 4 fatal. Default 3 (errors only). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

/** A loaded model. Runs are serialised per session. */
export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Runs the model. `feeds` must name every model input exactly once; `fetches` (default: all
   * outputs) selects outputs. Throws TypeError for an unknown/missing name or a wrong element
   * type, RangeError for wrong dims or a data length that does not match the dims.
   */
  run(
    feeds: Record<string, TensorData>,
    fetches?: readonly string[],
  ): Promise<Record<string, TensorData>>;
  /** Frees the native session. Further runs reject. Idempotent. */
  release(): Promise<void>;
}

/** Platform details, for /health and reports. */
export interface RuntimeInfo {
  loader: string;
  ortVersion: string;
  numThreads: number;
}

const LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/** Model executions of this thread so far (benchmarks read them; nothing decides on them). */
export interface RuntimeCounters {
  /** Sessions created. */
  sessions: number;
  /** `run` calls that completed. */
  runs: number;
  /** Samples executed: the first dimension of the first input of each run (1 for a scalar). */
  samples: number;
}

const counters: RuntimeCounters = { sessions: 0, runs: 0, samples: 0 };
let runObserver: (() => void) | undefined;

/** A snapshot of this thread's {@link RuntimeCounters}. */
export function runtimeCounters(): RuntimeCounters {
  return { ...counters };
}

/**
 * Registers a callback invoked after every completed run (e.g. to sample memory), or removes it
 * with `undefined`. One observer per thread.
 */
export function setRunObserver(observer: (() => void) | undefined): void {
  runObserver = observer;
}

let configured: RuntimeLoader | undefined;
let loading: Promise<OrtModule> | undefined;

/**
 * Registers the platform loader. Calling it again with the same loader is a no-op; switching to
 * another loader after ORT was loaded throws (one ORT per process).
 */
export function configureRuntime(loader: RuntimeLoader): void {
  if (configured === loader) return;
  if (loading !== undefined) {
    throw new Error(
      `configureRuntime: ORT already loaded through '${configured?.name}', cannot switch to '${loader.name}'`,
    );
  }
  configured = loader;
}

/** True once a loader was registered. */
export function isRuntimeConfigured(): boolean {
  return configured !== undefined;
}

async function loadOrt(): Promise<OrtModule> {
  if (loading === undefined) {
    const loader = configured;
    if (loader === undefined) {
      throw new Error(
        'core/runtime: no runtime loader configured; call useNodeRuntime() from cli/runtime-node.ts (Node) or useWorkerdRuntime() from functions/runtime-workerd.ts (workerd) first',
      );
    }
    loading = (async () => {
      const ort = await loader.load();
      // Determinism: one thread, no proxy worker, quiet logs.
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      return ort;
    })();
    // A failed load may be retried (e.g. after fixing the configuration).
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

/** Loads ORT (if not yet) and tells which platform and version run the sessions. */
export async function getRuntimeInfo(): Promise<RuntimeInfo> {
  const ort = await loadOrt();
  return {
    loader: configured?.name ?? 'unknown',
    ortVersion: ort.env.versions.web ?? ort.env.versions.common ?? 'unknown',
    numThreads: ort.env.wasm.numThreads ?? 1,
  };
}

function checkOptions(options: SessionOptions): void {
  const level = options.graphOptimizationLevel;
  if (level !== undefined && !LEVELS.includes(level)) {
    throw new RangeError(
      `createSession: graphOptimizationLevel must be one of ${LEVELS.join(', ')}, got '${String(level)}'`,
    );
  }
  for (const [k, v] of Object.entries(options.freeDimensionOverrides ?? {})) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(
        `createSession: freeDimensionOverrides.${k} must be a non-negative integer, got ${v}`,
      );
    }
  }
}

/**
 * Creates a session from ONNX model bytes (the bytes are copied into ORT; the caller may reuse
 * them). Requires `configureRuntime()` (through a platform adapter) first.
 */
export async function createSession(
  model: Uint8Array,
  options: SessionOptions = {},
): Promise<ModelSession> {
  if (!(model instanceof Uint8Array)) {
    throw new TypeError('createSession: model must be a Uint8Array of ONNX bytes');
  }
  if (model.byteLength === 0) throw new RangeError('createSession: model is empty');
  checkOptions(options);
  const ort = await loadOrt();
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    executionProviders: ['wasm'],
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'disabled',
    executionMode: 'sequential',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: options.logSeverityLevel ?? 3,
  };
  if (options.freeDimensionOverrides !== undefined) {
    sessionOptions.freeDimensionOverrides = { ...options.freeDimensionOverrides };
  }
  const session = await ort.InferenceSession.create(model, sessionOptions);
  counters.sessions++;
  return wrapSession(ort.Tensor as unknown as OrtTensorConstructor, session);
}

function wrapSession(Tensor: OrtTensorConstructor, session: Ort.InferenceSession): ModelSession {
  const inputNames = Object.freeze([...session.inputNames]);
  const outputNames = Object.freeze([...session.outputNames]);
  const inputMeta = new Map(session.inputMetadata.map((m) => [m.name, m]));
  let released = false;
  let queue: Promise<unknown> = Promise.resolve();

  function prepare(
    feeds: Record<string, TensorData>,
    fetches: readonly string[] | undefined,
  ): { ortFeeds: Record<string, Ort.Tensor>; names: string[] } {
    if (feeds === null || typeof feeds !== 'object') {
      throw new TypeError('createSession.run: feeds must be an object of TensorData by input name');
    }
    for (const name of Object.keys(feeds)) {
      if (!inputMeta.has(name)) {
        throw new TypeError(
          `createSession.run: unknown input '${name}' (model inputs: ${inputNames.join(', ')})`,
        );
      }
    }
    const ortFeeds: Record<string, Ort.Tensor> = {};
    for (const name of inputNames) {
      const feed = feeds[name];
      if (feed === undefined) {
        throw new TypeError(
          `createSession.run: missing input '${name}' (model inputs: ${inputNames.join(', ')})`,
        );
      }
      checkFeed(name, feed, inputMeta.get(name));
      ortFeeds[name] = toOrtTensor(Tensor, feed);
    }
    const names = fetches === undefined ? [...outputNames] : [...fetches];
    if (names.length === 0) throw new RangeError('createSession.run: fetches is empty');
    for (const name of names) {
      if (!outputNames.includes(name)) {
        throw new TypeError(
          `createSession.run: unknown output '${name}' (model outputs: ${outputNames.join(', ')})`,
        );
      }
    }
    return { ortFeeds, names };
  }

  async function runNow(feeds: Record<string, TensorData>, fetches?: readonly string[]) {
    if (released) throw new Error('createSession.run: session was released');
    const { ortFeeds, names } = prepare(feeds, fetches);
    const results = await session.run(ortFeeds, names);
    counters.runs++;
    const first = ortFeeds[inputNames[0] ?? '']?.dims;
    counters.samples += first && first.length > 0 ? Number(first[0]) : 1;
    runObserver?.();
    const out: Record<string, TensorData> = {};
    for (const name of names) {
      const value = results[name];
      if (value === undefined) throw new Error(`createSession.run: ORT returned no '${name}'`);
      out[name] = fromOrtTensor(name, value);
      value.dispose();
    }
    return out;
  }

  return {
    inputNames,
    outputNames,
    run(feeds, fetches) {
      const result = queue.then(() => runNow(feeds, fetches));
      queue = result.catch(() => undefined);
      return result;
    },
    async release() {
      if (released) return;
      released = true;
      await queue;
      await session.release();
    },
  };
}

export type { TensorData } from '../tensor/index.ts';
