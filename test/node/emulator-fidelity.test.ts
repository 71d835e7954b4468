/**
 * L3.fidelity on the zoo: for every quantized layer of every zoo model, on 20 calibration
 * samples, the lowered emulator (onnxruntime-web operators) equals the scalar TypeScript
 * reference of Ascend arithmetic (core/emulator) bit for bit, on ascend310 and ascend310p.
 *
 * The layer input is captured from the emulation model itself (so it is the fp16-rounded
 * activation the chip would see; where the emulation left out a ReLU/ReLU6 that the layer's
 * quantizer makes redundant, the tensor before it, `emulatedInputName`), fed to
 * `referenceLayer`, and compared with the emulation model's own output tensor of that layer.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { readTaskModel, zooPath } from '../../cli/zoo-files.ts';
import { captureSession, gatherBatch } from '../../core/calibrate/capture.ts';
import { spreadIndices } from '../../core/calibrate/sampler.ts';
import { referenceLayer } from '../../core/emulator/reference-layer.ts';
import { getTarget } from '../../core/formats/targets.ts';
import { decodeModel } from '../../core/onnx/index.ts';
import { emulatedInputName } from '../../core/quantize/emulation.ts';
import { quantizeModel } from '../../core/quantize/quantize.ts';
import type { TensorData } from '../../core/tensor/index.ts';
import { TASKS } from '../../zoo/registry.ts';

const SAMPLES = 20;
const tasks = Object.values(TASKS).filter((t) =>
  existsSync(zooPath(t.manifest.id, t.manifest.model.file)),
);

beforeAll(() => useNodeRuntime());

describe.each(tasks.map((t) => [t.manifest.id, t] as const))('%s', (_id, task) => {
  it.each(['ascend310', 'ascend310p'])(
    'every quantized layer is bit-identical to the reference on %s',
    async (targetId) => {
      const target = getTarget(targetId);
      const split = await task.load(nodeDataSource(), 'calibration');
      const indices = spreadIndices(split.size, SAMPLES);
      const model = decodeModel(await readTaskModel(task.manifest));
      const q = await quantizeModel(model, split, {
        target,
        samples: { indices },
        biasCorrection: false,
      });
      expect(q.layers.length).toBeGreaterThan(0);
      const inputOf = (name: string) => emulatedInputName(q.emulation, name);
      const tensors = [...new Set(q.layers.flatMap((l) => [inputOf(l.input), l.output]))];
      const session = await captureSession(q.emulation, tensors);
      try {
        let compared = 0;
        for (let s = 0; s < SAMPLES; s += 10) {
          const out = await session.run(
            await gatherBatch(split, indices.slice(s, s + 10)),
            tensors,
          );
          for (const layer of q.layers) {
            const input = out[inputOf(layer.input)] as TensorData<'float32'>;
            const lowered = out[layer.output] as TensorData<'float32'>;
            const reference = referenceLayer(layer, input);
            expect(reference.dims).toEqual(lowered.dims);
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
            let mismatches = 0;
            for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) mismatches++;
            expect(mismatches, `${layer.name}: ${mismatches} of ${a.length} values differ`).toBe(0);
            compared += a.length;
          }
        }
        expect(compared).toBeGreaterThan(0);
      } finally {
        await session.release();
      }
    },
    600_000,
  );
});
