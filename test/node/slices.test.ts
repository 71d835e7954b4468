/**
 * Task slices in Node: every committed fixture in test/fixtures/slices is recomputed from the
 * task's own loader (not from the .bin files) and must match bit for bit. test/workers/slices.test.ts
 * checks the same fixtures inside workerd: together, Node and workerd evaluate each slice
 * identically. Regenerate with `npx tsx test/fixtures/slices/make-slices.ts <taskId>`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { createSession } from '../../core/runtime/index.ts';
import type { TensorData } from '../../core/tensor/index.ts';
import { TASKS } from '../../zoo/registry.ts';
import { sha256Hex } from '../fixtures/runtime/fixtures.ts';
import {
  type ComputedSlice,
  computeSlice,
  modelPath,
  resolveTask,
  SLICES_DIR,
} from '../fixtures/slices/make-slices.ts';
import {
  binBatchSource,
  labelsOf,
  runSlice,
  SLICE_BATCH_SIZE,
  type SliceFixture,
  sliceRange,
} from '../fixtures/slices/slices.ts';

const fixtures: SliceFixture[] = readdirSync(SLICES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(SLICES_DIR + f, 'utf8')) as SliceFixture);

function bins(fixture: SliceFixture): Record<string, Uint8Array> {
  return Object.fromEntries(
    fixture.inputs.map((i) => [i.name, new Uint8Array(readFileSync(SLICES_DIR + i.file))]),
  );
}

/** The CLI's batches of [start, end): aligned to multiples of the batch size from sample 0. */
function cliBatches(start: number, end: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = start; s < end; s = Math.min(end, (Math.floor(s / size) + 1) * size)) {
    out.push([s, Math.min(end, (Math.floor(s / size) + 1) * size)]);
  }
  return out;
}

beforeAll(() => {
  useNodeRuntime();
});

it('has fixtures for at least smoke-fmnist', () => {
  expect(fixtures.map((f) => f.task)).toContain('smoke-fmnist');
});

it('every fixture is checked in workerd too (an import block in test/workers/slices.test.ts)', () => {
  const workers = readFileSync(new URL('../workers/slices.test.ts', import.meta.url), 'utf8');
  for (const f of fixtures) {
    expect(workers, `add ${f.task}'s import block and CASES entry`).toContain(
      `'../fixtures/slices/${f.task}.json'`,
    );
  }
});

it('lists registered tasks that have a model but no slice fixture yet (warning only)', () => {
  const have = new Set(fixtures.map((f) => f.task));
  for (const task of Object.values(TASKS)) {
    const id = task.manifest.id;
    if (!have.has(id) && existsSync(modelPath(task))) {
      console.warn(
        `slices: ${id} has a model but no slice fixture: npx tsx test/fixtures/slices/make-slices.ts ${id}, then add its import block to test/workers/slices.test.ts`,
      );
    }
  }
});

describe.each(fixtures.map((f) => [f.task, f] as const))('slice of %s in Node', (id, fixture) => {
  let computed: ComputedSlice;
  const files = bins(fixture);

  beforeAll(async () => {
    const t0 = performance.now();
    computed = await computeSlice(await resolveTask(id));
    console.info(`node: ${id} slice from the loader ${(performance.now() - t0).toFixed(0)} ms`);
  });

  it('is the fixed slice, run in the CLI batch size, with the current model', async () => {
    const task = await resolveTask(id);
    expect({ start: fixture.start, end: fixture.end }).toEqual(sliceRange(id));
    expect(fixture.batchSize).toBe(SLICE_BATCH_SIZE);
    // A retrained model makes the fixture stale: regenerate it (see the header).
    expect(fixture.model.sha256, `${id}: model changed; re-run make-slices.ts ${id}`).toBe(
      task.manifest.model.sha256,
    );
    expect(fixture.model.file).toBe(`zoo/${id}/${task.manifest.model.file}`);
    expect(modelPath(task).endsWith(fixture.model.file)).toBe(true);
  });

  it("(a) the loader's batches equal the .bin bytes", async () => {
    expect(computed.fixture.inputs).toEqual(fixture.inputs);
    for (const input of fixture.inputs) {
      const bin = files[input.name]!;
      expect(await sha256Hex(bin)).toBe(input.sha256);
      expect(await sha256Hex(computed.bins[input.file]!)).toBe(input.sha256);
    }
    // Batch by batch too, as the CLI slices the split.
    const fromBins = binBatchSource(fixture, files);
    for (const [s, e] of cliBatches(fixture.start, fixture.end, fixture.batchSize)) {
      const a = computed.split.batch(s, e);
      const b = fromBins.batch(s, e);
      expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
      for (const name of Object.keys(b)) {
        const x = a[name] as TensorData;
        const y = b[name] as TensorData;
        expect([x.type, x.dims]).toEqual([y.type, y.dims]);
        expect(await sha256Hex(x.data)).toBe(await sha256Hex(y.data));
      }
    }
  });

  it('(b) the output digests equal the fixture', () => {
    expect(computed.fixture.outputs).toEqual(fixture.outputs);
    expect(computed.fixture.outputsSha256).toBe(fixture.outputsSha256);
    expect(computed.fixture.ortVersion).toBe(fixture.ortVersion);
  });

  it('(c) the predictions, labels and score equal the fixture', () => {
    expect(computed.fixture.predictions).toEqual(fixture.predictions);
    expect(computed.fixture.labels).toEqual(fixture.labels);
    expect(computed.fixture.score).toEqual(fixture.score);
  });

  it('the .bin inputs give the same run (what workerd does)', async () => {
    const task = await resolveTask(id);
    const session = await createSession(new Uint8Array(readFileSync(modelPath(task))));
    const run = await runSlice(session, binBatchSource(fixture, files), task, fixture);
    await session.release();
    expect(run.outputsSha256).toBe(fixture.outputsSha256);
    expect(run.predictions).toEqual(fixture.predictions);
    if (fixture.labels && fixture.score) {
      expect(task.score(run.predictions, labelsOf(fixture.labels))).toEqual(fixture.score);
    }
  });
});
