/**
 * The measured row of the standard (docs/STANDARD.md section 1): on the machine that runs the
 * command line, time the FP32 model and the INT8 QDQ model on onnxruntime-web (WASM, one
 * thread, graph optimisation 'all' for both so the QDQ pairs fuse into ORT's integer kernels),
 * interleaved, and report the ratio of the medians. Node only: a deployed Worker's clock does
 * not advance during CPU work, so the service never times anything.
 */
import { cpus, loadavg } from 'node:os';
import { gatherBatch } from '../core/calibrate/capture.ts';
import type { BatchSource } from '../core/evaluate/predict.ts';
import type { TimedTargetId } from '../core/formats/targets.ts';
import { createSession } from '../core/runtime/index.ts';
import type { MeasuredSpeedup } from '../core/score/score-run.ts';

/** Options of {@link measureSpeedup}. */
export interface MeasureOptions {
  /** Timed runs per model (default 30). */
  repeats?: number;
  /** Untimed runs per model first (default 3). */
  warmup?: number;
  /** Samples per run (default 1: latency). */
  batch?: number;
  /** The timed target the INT8 model is of (default cpu-wasm). */
  target?: TimedTargetId;
}

/** Median of timings (the mean of the two middle ones for an even count). */
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** A one-line description of this machine and its load, for the record. */
export function machineText(): string {
  const c = cpus();
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return `${c[0]?.model ?? 'unknown CPU'} x${c.length}, load average ${load}, Node ${process.version}`;
}

/**
 * Times FP32 against a QDQ model on onnxruntime-web's WASM kernels, runs interleaved (FP32,
 * INT8, FP32, ...) so that load changes hit both alike; the speed-up is median FP32 / median INT8.
 */
export async function measureSpeedup(
  fp32: Uint8Array,
  qdq: Uint8Array,
  source: BatchSource,
  opts: MeasureOptions = {},
): Promise<MeasuredSpeedup> {
  const repeats = opts.repeats ?? 30;
  const warmup = opts.warmup ?? 3;
  const batch = Math.min(opts.batch ?? 1, source.size);
  const feeds = await gatherBatch(
    source,
    Array.from({ length: batch }, (_, i) => i),
  );
  const a = await createSession(fp32, { graphOptimizationLevel: 'all' });
  const b = await createSession(qdq, { graphOptimizationLevel: 'all' });
  try {
    for (let i = 0; i < warmup; i++) {
      await a.run(feeds);
      await b.run(feeds);
    }
    const ta: number[] = [];
    const tb: number[] = [];
    for (let i = 0; i < repeats; i++) {
      let t0 = performance.now();
      await a.run(feeds);
      ta.push(performance.now() - t0);
      t0 = performance.now();
      await b.run(feeds);
      tb.push(performance.now() - t0);
    }
    const fp32Ms = median(ta);
    const int8Ms = median(tb);
    return {
      target: opts.target ?? 'cpu-wasm',
      speedup: fp32Ms / int8Ms,
      fp32Ms: Math.round(fp32Ms * 1000) / 1000,
      int8Ms: Math.round(int8Ms * 1000) / 1000,
      repeats,
      batch,
      machine: machineText(),
    };
  } finally {
    await a.release();
    await b.release();
  }
}
