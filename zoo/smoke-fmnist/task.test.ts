import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { nodeDataSource } from '../../cli/data-source.ts';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { createSession } from '../../core/runtime/index.ts';
import {
  CALIBRATION_COMMON,
  describeFashionMnistTask,
  EVALUATION_COMMON,
} from '../common/fmnist-task-checks.ts';
import { getTask } from '../registry.ts';
import { smokeFmnist } from './task.ts';

describeFashionMnistTask(smokeFmnist, {
  calibration: {
    ...CALIBRATION_COMMON,
    size: 500,
    labelCounts: [63, 54, 51, 51, 58, 46, 33, 48, 43, 53],
    last10Sha256: 'b87b14b254531604344871593e7584ff2f1d9d3374c9c2f70c6ab0126a3e13d8',
  },
  evaluation: {
    ...EVALUATION_COMMON,
    size: 1000,
    labelCounts: [107, 105, 111, 93, 115, 87, 97, 95, 95, 95],
    last10Sha256: '30ef27ac0faee8b16ebf7b63dc91e6b3604affd5a74f84185ee9a6d1c047c743',
  },
});

describe('smoke-fmnist: the committed ONNX model under onnxruntime-web', () => {
  it('reproduces the FP32 reference exactly (top-1 and every prediction)', async () => {
    const task = getTask('smoke-fmnist');
    const model = new Uint8Array(await readFile(new URL('./model.onnx', import.meta.url)));
    expect(createHash('sha256').update(model).digest('hex')).toBe(task.manifest.model.sha256);

    useNodeRuntime();
    const session = await createSession(model);
    const split = await task.load(nodeDataSource(), 'evaluation');
    const predictions: number[] = [];
    try {
      for (let start = 0; start < split.size; start += 50) {
        const end = Math.min(split.size, start + 50);
        const outputs = await session.run(split.batch(start, end));
        predictions.push(...(task.predict(outputs, end - start) as number[]));
      }
    } finally {
      await session.release();
    }
    const digest = createHash('sha256')
      .update(new Uint8Array(Int32Array.from(predictions).buffer))
      .digest('hex');
    expect(task.score(predictions, split.labels)).toEqual(task.manifest.reference.fp32);
    expect(digest).toBe(task.manifest.reference.predictionsSha256);
  });
});
