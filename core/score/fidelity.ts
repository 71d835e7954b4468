/**
 * L3.fidelity evidence (docs/STANDARD.md section 5): the run's emulation model (the target's
 * integer arithmetic lowered onto onnxruntime-web operators) against the scalar reference
 * kernels of core/emulator, bit for bit, for every quantized layer on a check set of
 * calibration samples. The layer input is captured from the emulation model itself (the
 * activation the chip would see, fp16-rounded on Ascend), fed to `referenceLayer`, and compared
 * with the emulation model's own output of that layer. Pure: runs wherever core/runtime runs.
 */
import { captureSession, gatherBatch } from '../calibrate/capture.ts';
import { spreadIndices } from '../calibrate/sampler.ts';
import { referenceLayer } from '../emulator/reference-layer.ts';
import type { BatchSource } from '../evaluate/predict.ts';
import { getTarget } from '../formats/targets.ts';
import type { ModelProto } from '../onnx/gen/onnx_pb.ts';
import { emulatedInputName } from '../quantize/emulation.ts';
import type { QuantizedLayer } from '../quantize/layer.ts';
import type { TensorData } from '../tensor/index.ts';
import type { Evidence } from './checks.ts';

/** Default check set: this many calibration samples, spread over the split. */
export const FIDELITY_SAMPLES = 20;
/** Samples per execution of the check (shards cut the check set on multiples of it). */
export const FIDELITY_BATCH = 5;

/** Result of {@link checkFidelity}. */
export interface FidelityReport {
  /** True when every compared value is bit-identical. */
  bitExact: boolean;
  mismatches: number;
  /** Values compared (all layers, all samples). */
  compared: number;
  checkSet: string;
  layers: { name: string; mismatches: number; compared: number }[];
}

/** Per-layer counts of one shard of the check set (mergeable by addition). */
export type FidelityCounts = { name: string; mismatches: number; compared: number }[];

/** The check set: {@link FIDELITY_SAMPLES} calibration samples spread over the split. */
export function fidelityIndices(calibrationSize: number, samples = FIDELITY_SAMPLES): number[] {
  return spreadIndices(calibrationSize, Math.min(samples, calibrationSize));
}

/** Whether a run has an emulation to check (the lowered emulator with quantized layers). */
export function fidelityApplies(run: { target: string; layers: readonly unknown[] }): boolean {
  return getTarget(run.target).executor === 'lowered-emulator' && run.layers.length > 0;
}

/**
 * Compares every quantized layer of the emulation model with the reference kernels on the
 * given calibration samples (one shard of the check set; the pipeline's `fidelity` phase).
 */
export async function fidelityShard(
  run: { layers: readonly QuantizedLayer[]; emulation: ModelProto },
  calibration: BatchSource,
  indices: readonly number[],
  batchSize = FIDELITY_BATCH,
): Promise<FidelityCounts> {
  const inputOf = new Map(
    run.layers.map((l) => [l.input, emulatedInputName(run.emulation, l.input)]),
  );
  const tensors = [...new Set(run.layers.flatMap((l) => [inputOf.get(l.input)!, l.output]))];
  const perLayer = new Map(run.layers.map((l) => [l.name, { mismatches: 0, compared: 0 }]));
  if (indices.length === 0) return [...perLayer].map(([name, r]) => ({ name, ...r }));
  const session = await captureSession(run.emulation, tensors);
  try {
    for (let s = 0; s < indices.length; s += batchSize) {
      const out = await session.run(
        await gatherBatch(calibration, indices.slice(s, s + batchSize)),
        tensors,
      );
      for (const layer of run.layers) {
        const input = out[inputOf.get(layer.input)!] as TensorData<'float32'>;
        const lowered = out[layer.output] as TensorData<'float32'>;
        const reference = referenceLayer(layer, input);
        const a = new Uint32Array(
          lowered.data.buffer,
          lowered.data.byteOffset,
          lowered.data.length,
        );
        const b = new Uint32Array(
          reference.data.buffer,
          reference.data.byteOffset,
          reference.data.length,
        );
        const row = perLayer.get(layer.name)!;
        if (a.length !== b.length || lowered.dims.join() !== reference.dims.join()) {
          row.mismatches += Math.max(a.length, b.length);
          row.compared += Math.max(a.length, b.length);
          continue;
        }
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) row.mismatches++;
        row.compared += a.length;
      }
    }
  } finally {
    await session.release();
  }
  return [...perLayer].map(([name, r]) => ({ name, ...r }));
}

/** Sums shard counts (any order) into the report of `samples` check samples. */
export function mergeFidelity(parts: readonly FidelityCounts[], samples: number): FidelityReport {
  const first = parts[0] ?? [];
  const layers = first.map((l, i) => ({
    name: l.name,
    mismatches: parts.reduce((n, p) => n + p[i]!.mismatches, 0),
    compared: parts.reduce((n, p) => n + p[i]!.compared, 0),
  }));
  const mismatches = layers.reduce((n, l) => n + l.mismatches, 0);
  const compared = layers.reduce((n, l) => n + l.compared, 0);
  return {
    bitExact: mismatches === 0 && compared > 0,
    mismatches,
    compared,
    checkSet: `${samples} calibration samples (spread), ${layers.length} layers, ${compared} output values`,
    layers,
  };
}

/**
 * Compares every quantized layer of an emulation model with the reference kernels in one pass.
 * Returns null for targets executed by onnxruntime's own QDQ kernels (cpu-wasm): there is no
 * emulation to check, the kernels are the deployment. The pipeline runs the same check as its
 * sharded `fidelity` phase.
 */
export async function checkFidelity(
  run: { target: string; layers: readonly QuantizedLayer[]; emulation: ModelProto },
  calibration: BatchSource & { size: number },
  opts: { samples?: number; batchSize?: number } = {},
): Promise<FidelityReport | null> {
  if (!fidelityApplies(run)) return null;
  const indices = fidelityIndices(calibration.size, opts.samples);
  return mergeFidelity(
    [await fidelityShard(run, calibration, indices, opts.batchSize)],
    indices.length,
  );
}

/** The evidence L3.fidelity reads, from a fidelity report. */
export function fidelityEvidence(f: FidelityReport): NonNullable<Evidence['fidelity']> {
  return { bitExact: f.bitExact, mismatches: f.mismatches, checkSet: f.checkSet };
}
