/**
 * Task slices inside workerd: each task's model and its fixed evaluation slice (model inputs
 * written by test/fixtures/slices/make-slices.ts in Node) run through core/runtime in the CLI's
 * batches; the output digests, the per-sample predictions (the task's own `predict`) and the
 * score must equal what Node computed. test/node/slices.test.ts recomputes the same fixtures
 * from the task loaders in Node, so equal digests here = bit-identical evaluation in both.
 *
 * Adding a task: `npx tsx test/fixtures/slices/make-slices.ts <id>`, then one import block
 * below (model, fixture JSON, one .bin per model input, the task) and one entry in CASES.
 * Only tasks with a committed model and fixture may be listed (a missing file breaks the build).
 */
// biome-ignore-all assist/source/organizeImports: one import block per task, kept together
import { beforeAll, describe, expect, it } from 'vitest';
import { createSession } from '../../core/runtime/index.ts';
import { useWorkerdRuntime } from '../../functions/runtime-workerd.ts';
import type { BenchmarkTask } from '../../zoo/task.ts';
import { sha256Hex } from '../fixtures/runtime/fixtures.ts';
import {
  binBatchSource,
  labelsOf,
  runSlice,
  type SliceFixture,
} from '../fixtures/slices/slices.ts';

// fmnist-mobilenet
import fmnistMobilenetModel from '../../zoo/fmnist-mobilenet/model.onnx';
import { fmnistMobilenet } from '../../zoo/fmnist-mobilenet/task.ts';
import fmnistMobilenetInput from '../fixtures/slices/fmnist-mobilenet.input.bin';
import fmnistMobilenetFixture from '../fixtures/slices/fmnist-mobilenet.json' with { type: 'json' };
// fmnist-resnet
import fmnistResnetModel from '../../zoo/fmnist-resnet/model.onnx';
import { fmnistResnet } from '../../zoo/fmnist-resnet/task.ts';
import fmnistResnetInput from '../fixtures/slices/fmnist-resnet.input.bin';
import fmnistResnetFixture from '../fixtures/slices/fmnist-resnet.json' with { type: 'json' };
// smoke-fmnist
import smokeFmnistModel from '../../zoo/smoke-fmnist/model.onnx';
import { smokeFmnist } from '../../zoo/smoke-fmnist/task.ts';
import smokeFmnistInput from '../fixtures/slices/smoke-fmnist.input.bin';
import smokeFmnistFixture from '../fixtures/slices/smoke-fmnist.json' with { type: 'json' };

// fmnist-detect
import fmnistDetectModel from '../../zoo/fmnist-detect/model.onnx';
import { fmnistDetectTask } from '../../zoo/fmnist-detect/task.ts';
import fmnistDetectInput from '../fixtures/slices/fmnist-detect.input.bin';
import fmnistDetectFixture from '../fixtures/slices/fmnist-detect.json' with { type: 'json' };

// spam-transformer
import spamTransformerModel from '../../zoo/spam-transformer/model.onnx';
import { spamTransformerTask } from '../../zoo/spam-transformer/task.ts';
import spamTransformerInputIds from '../fixtures/slices/spam-transformer.input_ids.bin';
import spamTransformerFixture from '../fixtures/slices/spam-transformer.json' with { type: 'json' };

/** One task: its model bytes, fixture, .bin bytes by input name, and the task module. */
interface SliceCase {
  model: ArrayBuffer;
  fixture: SliceFixture;
  inputs: Record<string, ArrayBuffer>;
  task: BenchmarkTask;
}

const CASES: SliceCase[] = [
  {
    model: fmnistMobilenetModel,
    fixture: fmnistMobilenetFixture as SliceFixture,
    inputs: { input: fmnistMobilenetInput },
    task: fmnistMobilenet as unknown as BenchmarkTask,
  },
  {
    model: fmnistResnetModel,
    fixture: fmnistResnetFixture as SliceFixture,
    inputs: { input: fmnistResnetInput },
    task: fmnistResnet as unknown as BenchmarkTask,
  },
  {
    model: smokeFmnistModel,
    fixture: smokeFmnistFixture as SliceFixture,
    inputs: { input: smokeFmnistInput },
    task: smokeFmnist as unknown as BenchmarkTask,
  },
  {
    model: fmnistDetectModel,
    fixture: fmnistDetectFixture as SliceFixture,
    inputs: { input: fmnistDetectInput },
    task: fmnistDetectTask as unknown as BenchmarkTask,
  },
  {
    model: spamTransformerModel,
    fixture: spamTransformerFixture as SliceFixture,
    inputs: { input_ids: spamTransformerInputIds },
    task: spamTransformerTask as unknown as BenchmarkTask,
  },
];

beforeAll(() => {
  useWorkerdRuntime();
});

it('runs inside workerd', () => {
  expect(navigator.userAgent).toBe('Cloudflare-Workers');
});

describe.each(CASES.map((c) => [c.fixture.task, c] as const))(
  'slice of %s in workerd',
  (id, { model, fixture, inputs, task }) => {
    it('has the fixture of this task, model and inputs', async () => {
      expect(task.manifest.id).toBe(id);
      expect(fixture.model.sha256).toBe(task.manifest.model.sha256);
      expect(await sha256Hex(new Uint8Array(model))).toBe(fixture.model.sha256);
      expect(Object.keys(inputs).sort()).toEqual(fixture.inputs.map((i) => i.name).sort());
      for (const input of fixture.inputs) {
        expect(await sha256Hex(new Uint8Array(inputs[input.name]!))).toBe(input.sha256);
      }
    });

    it('computes the outputs, predictions and score of Node, bit for bit', async () => {
      const t0 = Date.now();
      const session = await createSession(new Uint8Array(model));
      const bins = Object.fromEntries(
        Object.entries(inputs).map(([name, bytes]) => [name, new Uint8Array(bytes)]),
      );
      try {
        const run = await runSlice(session, binBatchSource(fixture, bins), task, fixture);
        expect(run.outputs).toEqual(fixture.outputs);
        expect(run.outputsSha256).toBe(fixture.outputsSha256);
        expect(run.predictions).toEqual(fixture.predictions);
        if (fixture.labels && fixture.score) {
          expect(task.score(run.predictions, labelsOf(fixture.labels))).toEqual(fixture.score);
        }
      } finally {
        await session.release();
      }
      console.info(`workerd: ${id} slice [${fixture.start}, ${fixture.end}) ${Date.now() - t0} ms`);
    });
  },
);
