import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import type { Detection } from '../../core/metrics/detection.ts';
import { encodeShardOutput } from '../../core/pipeline/replay.ts';
import { createSession } from '../../core/runtime/index.ts';
import { CANVAS_SPLITS } from '../datasets/canvas.ts';
import { fmnistDetectTask } from './task.ts';

const manifest = fmnistDetectTask.manifest;

describe('fmnist-detect task', () => {
  it('manifest: splits as the TS composer defines them, BN-keeping detector outputs', () => {
    const splits = manifest.dataset.canvasSplits!;
    for (const name of ['train', 'calibration', 'evaluation'] as const) {
      const ts = CANVAS_SPLITS[name];
      expect(splits[name]).toEqual({ ...ts, part: ts.part === 'test' ? 't10k' : 'train' });
    }
    expect(manifest.splits.evaluation.size).toBe(CANVAS_SPLITS.evaluation.canvases);
    expect(manifest.splits.calibration.size).toBe(CANVAS_SPLITS.calibration.canvases);
    expect(manifest.reference.samples).toBe(CANVAS_SPLITS.evaluation.canvases);
    expect(manifest.model.outputs.map((o) => o.name)).toEqual(['heatmap', 'wh', 'offset']);
    expect(manifest.metric.reported).toEqual(['mAP50', 'mAP75']);
  });

  it('loads the calibration split and scores its own ground truth as perfect', async () => {
    const split = await fmnistDetectTask.load(nodeDataSource(), 'calibration');
    expect(split.size).toBe(1000);
    const x = split.batch(0, 3).input!;
    expect(x.dims).toEqual([3, 1, 64, 64]);
    expect(x.data[0]).toBe(Math.fround(Math.fround(0 - Math.fround(0.286)) / Math.fround(0.353)));
    const perfect = split.labels.map((items) => items.map((it) => ({ ...it, score: 1 })));
    expect(fmnistDetectTask.score(perfect, split.labels)).toEqual({ mAP50: 1, mAP75: 1 });
  });

  it('ORT (WASM) on the first 16 evaluation canvases decodes to the torch fixture', async () => {
    const fixture = JSON.parse(
      await readFile(new URL('./fixture-first16.json', import.meta.url), 'utf8'),
    ) as { canvases: number; detections: Detection[][] };
    const split = await fmnistDetectTask.load(nodeDataSource(), 'evaluation');
    useNodeRuntime();
    const session = await createSession(
      new Uint8Array(await readFile(new URL('./model.onnx', import.meta.url))),
    );
    try {
      const outputs = await session.run(split.batch(0, fixture.canvases));
      const dets = fmnistDetectTask.predict(outputs, fixture.canvases);
      expect(dets).toHaveLength(fixture.canvases);
      let total = 0;
      dets.forEach((list, i) => {
        const want = fixture.detections[i]!;
        expect(list.map((d) => d.cls)).toEqual(want.map((d) => d.cls));
        list.forEach((d, k) => {
          const w = want[k]!;
          for (const key of ['score', 'x1', 'y1', 'x2', 'y2'] as const) {
            expect(Math.abs(d[key] - w[key])).toBeLessThanOrEqual(1e-4);
          }
          total++;
        });
      });
      expect(total).toBeGreaterThan(16);
      // each canvas's list, as a shard output carries it, within the task's bound
      for (const list of dets)
        expect(encodeShardOutput(list).length).toBeLessThanOrEqual(
          fmnistDetectTask.predictionBytes!,
        );
    } finally {
      await session.release();
    }
  });
});
