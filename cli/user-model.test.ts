import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeModel,
  makeAttrInt,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from '../core/onnx/index.ts';
import { tensorToProto } from '../core/onnx/tensor.ts';
import { encodeShardOutput } from '../core/pipeline/replay.ts';
import { seededPrng as rand } from '../core/random.ts';
import { recipeFromTemplate } from '../core/recipe/templates.ts';
import { tensor } from '../core/tensor/index.ts';
import { CliError } from './errors.ts';
import { runUserModel } from './local-run.ts';
import { writeNpy } from './npy.ts';
import {
  loadDataDir,
  readUserModel,
  userTask,
  userTaskId,
  valuesPredictionBytes,
} from './user-model.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));

const normal = (r: () => number) => () =>
  Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

/**
 * x[batch,1,8,8] -> Conv 4x3x3 (pad 1) -> Relu -> Conv 8x3x3 (stride 2, pad 1) -> Relu, then
 * either Flatten -> Gemm 128->5 (`classes`: logits [batch, 5]) or the feature map itself
 * (`values`: y [batch, 8, 4, 4]). He-initialised seeded weights.
 */
function smallModel(kind: 'classes' | 'values', batch: string | number = 'batch'): Uint8Array {
  const g = normal(rand(7));
  const w = (n: number, fanIn: number) =>
    Float32Array.from({ length: n }, () => g() * Math.sqrt(2 / fanIn));
  const b = (n: number) => Float32Array.from({ length: n }, () => 0.1 * g());
  const inits = [
    tensorToProto('w1', { type: 'float32', dims: [4, 1, 3, 3], data: w(36, 9) }),
    tensorToProto('b1', { type: 'float32', dims: [4], data: b(4) }),
    tensorToProto('w2', { type: 'float32', dims: [8, 4, 3, 3], data: w(288, 36) }),
    tensorToProto('b2', { type: 'float32', dims: [8], data: b(8) }),
  ];
  const nodes = [
    makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], [makeAttrInts('pads', [1, 1, 1, 1])], {
      name: 'conv1',
    }),
    makeNode('Relu', ['c1'], ['r1'], [], { name: 'relu1' }),
    makeNode(
      'Conv',
      ['r1', 'w2', 'b2'],
      ['c2'],
      [makeAttrInts('pads', [1, 1, 1, 1]), makeAttrInts('strides', [2, 2])],
      { name: 'conv2' },
    ),
  ];
  if (kind === 'values') nodes.push(makeNode('Relu', ['c2'], ['y'], [], { name: 'relu2' }));
  else {
    inits.push(
      tensorToProto('w3', { type: 'float32', dims: [5, 128], data: w(640, 128) }),
      tensorToProto('b3', { type: 'float32', dims: [5], data: b(5) }),
    );
    nodes.push(
      makeNode('Relu', ['c2'], ['r2'], [], { name: 'relu2' }),
      makeNode('Flatten', ['r2'], ['f'], [], { name: 'flatten' }),
      makeNode('Gemm', ['f', 'w3', 'b3'], ['logits'], [makeAttrInt('transB', 1)], {
        name: 'fc',
      }),
    );
  }
  return encodeModel(
    makeModel(
      makeGraph({
        name: `small-${kind}`,
        nodes,
        inputs: [makeTensorValueInfo('x', 'float32', [batch, 1, 8, 8])],
        outputs: [
          kind === 'values'
            ? makeTensorValueInfo('y', 'float32', ['batch', 8, 4, 4])
            : makeTensorValueInfo('logits', 'float32', ['batch', 5]),
        ],
        initializers: inits,
      }),
    ),
  );
}

let dir: string;
const sample = normal(rand(11));
/** `n` samples of 64 values: a smooth blob plus noise, like small images. */
const images = (n: number) =>
  Float32Array.from({ length: n * 64 }, (_, i) => {
    const p = i % 64;
    const [y, x] = [Math.floor(p / 8), p % 8];
    return Math.exp(-((x - 3.5) ** 2 + (y - 3.5) ** 2) / 8) + 0.5 * sample();
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cann-quant-user-'));
  await writeFile(join(dir, 'classes.onnx'), smallModel('classes'));
  await writeFile(join(dir, 'values.onnx'), smallModel('values'));
  await writeFile(join(dir, 'fixed.onnx'), smallModel('classes', 1));
  await writeFile(join(dir, 'not-onnx.onnx'), new TextEncoder().encode('{"hello": "world"}'));
  // 60 samples: one batch file of 40 (N, 1, 8, 8) and 20 one-sample files (1, 8, 8).
  const data = join(dir, 'data');
  await mkdir(data);
  await writeFile(join(data, 'batch0.npy'), writeNpy('<f4', [40, 1, 8, 8], images(40)));
  for (let i = 0; i < 20; i++)
    await writeFile(join(data, `s${i + 1}.npy`), writeNpy('<f4', [1, 8, 8], images(1)));
  await writeFile(join(data, 'README.txt'), 'ignored');
  const bad = join(dir, 'bad-shape');
  await mkdir(bad);
  await writeFile(join(bad, 'a.npy'), writeNpy('<f4', [3, 1, 9, 9], new Float32Array(243)));
  const nan = join(dir, 'nan');
  await mkdir(nan);
  const withNan = images(3);
  withNan[64 + 10] = Number.NaN;
  await writeFile(join(nan, 'b.npy'), writeNpy('<f4', [3, 1, 8, 8], withNan));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('user model inputs', () => {
  it('reads the model input and stacks batch and single-sample files in natural order', async () => {
    const m = await readUserModel(join(dir, 'classes.onnx'));
    expect(m.inputs).toEqual([{ name: 'x', type: 'float32', dims: ['batch', 1, 8, 8] }]);
    const d = await loadDataDir(join(dir, 'data'), m.inputs);
    expect(d.size).toBe(60);
    expect(d.files).toBe(21);
    const b = d.batch(39, 42);
    expect(b.x!.dims).toEqual([3, 1, 8, 8]);
    // Sample 41 is s2.npy (natural order: s1, s2, ..., s10, ...), not s10.npy.
    const s2 = new Float32Array(
      (await readFile(join(dir, 'data', 's2.npy'))).buffer.slice(-256) as ArrayBuffer,
    );
    expect([...(b.x!.data as Float32Array).subarray(128, 192)]).toEqual([...s2]);
    expect(userTaskId('/a/b/My Model.onnx')).toBe('user:My Model');
  });

  it("bounds a values prediction in a shard output by the first sample's float outputs", () => {
    const outputs = {
      a: tensor('float32', [1, 3, 4], new Float32Array(12)),
      b: tensor('float32', [1, 5], new Float32Array(5)),
      n: tensor('int64', [1, 2], new BigInt64Array(2)),
    };
    const bytes = valuesPredictionBytes(outputs);
    const task = userTask('user:x', 'values', 'a', bytes);
    // exactly what the shard output holds for the sample: its 17 float32 values
    const [pred] = task.predict(outputs, 1);
    expect(encodeShardOutput(pred).length).toBe(bytes);
    expect(task.predictionBytes).toBe(bytes);
    // a class index is a few bytes: no bound needed
    expect(userTask('user:x', 'classes', 'a', bytes).predictionBytes).toBeUndefined();
  });

  it('one-line errors: missing dir, wrong shape, NaN, non-ONNX file, fixed batch', async () => {
    const m = await readUserModel(join(dir, 'classes.onnx'));
    const err = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(CliError);
      expect((e as CliError).exitCode).toBe(2);
      expect((e as Error).message).not.toContain('\n');
      return (e as Error).message;
    };
    expect(await err(loadDataDir(join(dir, 'nope'), m.inputs))).toMatch(
      /data directory '.*nope' does not exist/,
    );
    expect(await err(loadDataDir(join(dir, 'bad-shape'), m.inputs))).toMatch(
      /a.npy: shape \(3, 1, 9, 9\) does not fit model input 'x' \[batch, 1, 8, 8\]: want \(1, 8, 8\) for one sample or \(N, 1, 8, 8\) for N samples/,
    );
    expect(await err(loadDataDir(join(dir, 'nan'), m.inputs))).toMatch(
      /b.npy: sample 1 holds NaN at flat index 10; calibration samples must be finite$/,
    );
    expect(await err(readUserModel(join(dir, 'not-onnx.onnx')))).toMatch(
      /not-onnx.onnx' is not a usable ONNX model/,
    );
    expect(await err(readUserModel(join(dir, 'missing.onnx')))).toMatch(/does not exist/);
    expect(await err(readUserModel(join(dir, 'fixed.onnx')))).toMatch(/fixed batch size 1/);
  });
});

describe('calibrating a user model (ascend310, industrial-vision template)', () => {
  it('class scores: argmax agreement in the tiers, top-1 disagreement as the estimate', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'user:classes', 'ascend310');
    const { result, info } = await runUserModel(recipe, {
      model: join(dir, 'classes.onnx'),
      data: join(dir, 'data'),
      progress: false,
    });
    expect(info).toMatchObject({ samples: 60, files: 21, outputKind: 'classes' });
    expect(result.layers.map((l) => l.name).sort()).toEqual(['conv1', 'conv2', 'fc']);
    expect(result.calibration.samples).toHaveLength(50);
    expect(result.sensitivity).toHaveLength(3);
    for (const t of result.sensitivity!) {
      expect(t.agreement).not.toBeNull();
      expect(t.agreementTest?.basis).toBe('confident');
      expect(t.samples).toBe(50);
    }
    const e = result.estimate!;
    expect(e.kind).toBe('agreement');
    expect(e.samples).toBe(60);
    // Exactly the disagreement, in points; an 8-bit 3-layer net flips few of 60 samples.
    expect(e.lossPoints).toBeCloseTo(e.disagreement * 100, 9);
    expect(e.lossPoints).toBeLessThanOrEqual(10);
  });

  it('other outputs: SQNR ranks the layers, the estimate is the relative RMS error', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'user:values', 'ascend310');
    const { result, info } = await runUserModel(
      { ...recipe, calibration: { ...recipe.calibration, samples: 100 } },
      { model: join(dir, 'values.onnx'), data: join(dir, 'data'), progress: false },
    );
    expect(info.outputKind).toBe('values');
    // 100 asked, 60 available: all of them.
    expect(result.calibration.samples).toHaveLength(60);
    expect(result.sensitivity!.every((t) => t.agreement === null && t.agreementTest === null)).toBe(
      true,
    );
    const e = result.estimate!;
    expect(e.kind).toBe('relative-error');
    // INT8 on a 2-conv ReLU net: SQNR well above 20 dB, i.e. under 10% relative RMS error.
    expect(e.sqnrDb!).toBeGreaterThan(20);
    expect(e.lossPoints).toBeCloseTo(100 * 10 ** (-e.sqnrDb! / 20), 6);
  });

  it('two worker_threads give the bytes one thread gives', async () => {
    const recipe = recipeFromTemplate('industrial-vision', 'user:classes', 'ascend310');
    const opts = { model: join(dir, 'classes.onnx'), data: join(dir, 'data'), progress: false };
    const one = await runUserModel(recipe, { ...opts, workers: 1 });
    const two = await runUserModel(recipe, { ...opts, workers: 2 });
    expect(two.info).toEqual(one.info);
    expect(two.result.calibration).toEqual(one.result.calibration);
    expect(two.result.layers).toEqual(one.result.layers);
    expect(two.result.methods).toEqual(one.result.methods);
    expect(two.result.estimate).toEqual(one.result.estimate);
    expect(encodeModel(two.result.emulation)).toEqual(encodeModel(one.result.emulation));
    // the worker run did run its phases on the workers: 2 shards where there are 2 to cut
    expect(two.result.phases.find((p) => p.phase === 'sensitivity')?.shards).toBe(2);
  });

  it('the shared cache serves the FP32 reference pass for the same model, data and output reading only', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'cann-quant-user-cache-'));
    const saved = { off: process.env.CANN_QUANT_CACHE, dir: process.env.CANN_QUANT_CACHE_DIR };
    delete process.env.CANN_QUANT_CACHE;
    process.env.CANN_QUANT_CACHE_DIR = cache;
    try {
      const recipe = recipeFromTemplate('industrial-vision', 'user:classes', 'ascend310');
      const opts = { model: join(dir, 'classes.onnx'), data: join(dir, 'data'), progress: false };
      const cachedOf = (r: { result: { phases: { phase: string; cached?: number }[] } }) =>
        r.result.phases.find((p) => p.phase === 'reference')?.cached;
      const first = await runUserModel(recipe, opts);
      const again = await runUserModel(recipe, opts);
      const asValues = await runUserModel(recipe, { ...opts, outputs: 'values' });
      expect(cachedOf(first)).toBe(0);
      expect(cachedOf(again)).toBe(1);
      expect(again.result.layers).toEqual(first.result.layers);
      expect(again.result.estimate).toEqual(first.result.estimate);
      // read as values, the FP32 predictions are other values: not served from the cache
      expect(cachedOf(asValues)).toBe(0);
      expect(asValues.result.estimate?.kind).toBe('relative-error');
    } finally {
      if (saved.off !== undefined) process.env.CANN_QUANT_CACHE = saved.off;
      if (saved.dir === undefined) delete process.env.CANN_QUANT_CACHE_DIR;
      else process.env.CANN_QUANT_CACHE_DIR = saved.dir;
      await rm(cache, { recursive: true, force: true });
    }
  });
});

/** `cann-quant calibrate --json` of the classes model on the data directory, into `out`. */
const calibrateClasses = (out: string, extra: string[]) =>
  run(process.execPath, [
    BIN,
    'calibrate',
    '--model',
    join(dir, 'classes.onnx'),
    '--data',
    join(dir, 'data'),
    '--target',
    'ascend310',
    ...extra,
    '--json',
    '--out',
    out,
  ]);

describe('cann-quant calibrate --model --data (CLI)', () => {
  it('writes the config and prints the report; bad inputs exit 2 with one line', async () => {
    const out = join(dir, 'out');
    const { stdout } = await calibrateClasses(out, ['--calib-data', '30']);
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({
      task: 'user:classes',
      target: 'ascend310',
      calibration_samples: 30,
      output_kind: 'classes',
      data: { samples: 60, files: 21 },
      estimate: { kind: 'agreement', samples: 60 },
      quantized_layers: 3,
    });
    expect(r.tiers.high + r.tiers.medium + r.tiers.low).toBe(3);
    expect(r.phases.map((p: { phase: string }) => p.phase)).toEqual([
      'reference',
      'ranges',
      'histograms',
      'sensitivity',
      'search',
      'bias',
      'estimate',
      'estimate-uncorrected',
      'fidelity',
    ]);
    const config = JSON.parse(await readFile(join(out, 'quantization.json'), 'utf8'));
    expect(config.layers).toHaveLength(3);

    const fail = await run(process.execPath, [
      BIN,
      'calibrate',
      '--model',
      join(dir, 'classes.onnx'),
      '--data',
      join(dir, 'bad-shape'),
      '--target',
      'ascend310',
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(fail?.code).toBe(2);
    expect(fail?.stderr.trim().split('\n')).toHaveLength(1);
    expect(fail?.stderr).toMatch(/^cann-quant: .*a.npy: shape \(3, 1, 9, 9\) does not fit/);
  });

  it('warns, on stderr and in the JSON, about a critical name that matches no layer and too many samples', async () => {
    const out = join(dir, 'out-warn');
    const { stdout, stderr } = await calibrateClasses(out, [
      '--calib-data',
      '100',
      '--critical',
      'conv1,conv3',
    ]);
    const r = JSON.parse(stdout);
    expect(r.calibration_samples).toBe(60);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toBe(
      'calibration.samples (100) is more than the calibration split holds: all 60 samples are used',
    );
    expect(r.warnings[1]).toMatch(
      /^sensitivity\.critical 'conv3' matches no quantizable layer \(layers: conv1, conv2, /,
    );
    expect(stderr.trim().split('\n')).toEqual(
      r.warnings.map((w: string) => `cann-quant: warning: ${w}`),
    );
    // conv1 did match: it went up a tier for being named
    expect(r.sensitivity.find((t: { layer: string }) => t.layer === 'conv1').reason).toBe(
      'critical',
    );
    const config = JSON.parse(await readFile(join(out, 'quantization.json'), 'utf8'));
    expect(config.warnings).toEqual(r.warnings);
  });
});
