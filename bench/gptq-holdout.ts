/**
 * Does GPTQ's choice of integers carry over to inputs it did not see?
 *
 * GPTQ (core/quantize/gptq.ts) fits each layer's integers to the Gram matrix of its inputs over
 * the 50 calibration samples. A layer with fewer input vectors than inputs per output channel (a
 * classifier after Flatten or pooling sees one vector a sample) has a rank-deficient Gram
 * matrix there, and the fit can win on those samples and lose elsewhere. This bench measures,
 * per layer, the weights' own output SQNR (sum w H w / sum e H e) on the calibration samples
 * and on held-out calibration samples (evenly spread over the split, the chosen ones left out),
 * for round to nearest and for GPTQ, with the same scales.
 *
 *   npx tsx bench/gptq-holdout.ts [--target ascend310] [--tasks a,b] [--holdout 500]
 *     [--out bench/results/gptq-holdout]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadPipelineInputs } from '../cli/inputs.ts';
import { captureSession, gatherBatch } from '../core/calibrate/capture.ts';
import { spreadIndices } from '../core/calibrate/sampler.ts';
import { getTarget, type TargetId } from '../core/formats/targets.ts';
import { decodeModel } from '../core/onnx/index.ts';
import { runPipeline } from '../core/pipeline/run.ts';
import { quantizedPathModel } from '../core/quantize/bias-correction.ts';
import { InputGram, weightNoise } from '../core/quantize/gptq.ts';
import { prepareModel } from '../core/quantize/prepare.ts';
import { DEFAULT_TEMPLATE_BY_KIND, recipeFromTemplate } from '../core/recipe/templates.ts';
import { getTask } from '../zoo/registry.ts';
import { machine, uptime } from './lib.ts';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'ascend310' },
    tasks: {
      type: 'string',
      default: 'smoke-fmnist,fmnist-resnet,fmnist-mobilenet,fmnist-detect,spam-transformer',
    },
    holdout: { type: 'string', default: '500' },
    out: { type: 'string', default: 'bench/results/gptq-holdout' },
  },
});
const target = getTarget(args.target as TargetId);
const rows: Record<string, unknown>[] = [];
const started = `${new Date().toISOString()} (\`uptime\`: ${uptime()})`;

for (const id of args.tasks!.split(',')) {
  const task = getTask(id);
  const template = DEFAULT_TEMPLATE_BY_KIND[task.manifest.kind] ?? 'industrial-vision';
  const base = recipeFromTemplate(template, id, target.id);
  const gptqRecipe = { ...base, format: { ...base.format, weightRounding: 'gptq' as const } };
  const inputs = await loadPipelineInputs(gptqRecipe, false);
  const gptq = await runPipeline(inputs, { shards: 1, validate: false });
  // explicitly: the W4A8 templates ask for GPTQ themselves
  const nearestRecipe = { ...base, format: { ...base.format, weightRounding: 'nearest' as const } };
  const nearest = await runPipeline(
    { ...inputs, recipe: nearestRecipe },
    { shards: 1, validate: false },
  );
  const chosen = new Set(gptq.calibration.samples);
  const held = spreadIndices(inputs.calibration.size, Number(args.holdout) + chosen.size)
    .filter((i) => !chosen.has(i))
    .slice(0, Number(args.holdout));
  // The inputs as the round-to-nearest INT8 model computes them.
  const prepared = prepareModel(decodeModel(inputs.model), target);
  const { model, inputOf } = quantizedPathModel(prepared, nearest.layers, target, new Map());
  const floats = new Map(prepared.layers.map((c) => [c.name, c.weight]));
  for (const [i, layer] of nearest.layers.entries()) {
    const calib = new InputGram(layer);
    const other = new InputGram(layer);
    const tensor = inputOf(layer.input);
    const session = await captureSession(model, [tensor]);
    try {
      for (const [set, gram] of [
        [gptq.calibration.samples, calib],
        [held, other],
      ] as const)
        for (let s = 0; s < set.length; s += 25) {
          const out = await session.run(
            await gatherBatch(inputs.calibration, set.slice(s, s + 25)),
            [tensor],
          );
          gram.add(out[tensor]!);
        }
    } finally {
      await session.release();
    }
    const float = floats.get(layer.name)!;
    const q = gptq.layers[i]!.weight.q;
    const row = {
      task: id,
      target: target.id,
      layer: layer.name,
      k: calib.shape.k,
      vectors_calibration: calib.vectors,
      vectors_holdout: other.vectors,
      nearest_calibration_db: weightNoise(layer, float, layer.weight.q, calib).db,
      gptq_calibration_db: weightNoise(layer, float, q, calib).db,
      nearest_holdout_db: weightNoise(layer, float, layer.weight.q, other).db,
      gptq_holdout_db: weightNoise(layer, float, q, other).db,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}

const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(2) : String(v));
const md = [
  '# GPTQ on held-out inputs',
  '',
  `- command: \`npx tsx bench/gptq-holdout.ts --target ${args.target} --tasks ${args.tasks} --holdout ${args.holdout}\``,
  `- started ${started}; finished ${new Date().toISOString()} (\`uptime\`: ${uptime()})`,
  `- machine: ${JSON.stringify({ ...machine(), uptime: undefined })}`,
  "- weight SQNR = 10 log10(sum w H w / sum e H e): the output noise of the weights alone (the inputs as the round-to-nearest INT8 model computes them, quantized with the layer's parameters); calibration = the 50 samples GPTQ fitted on, held out = other calibration samples.",
  '',
  '| task | layer | inputs per channel | vectors (calibration / held out) | nearest: calibration / held out (dB) | GPTQ: calibration / held out (dB) | held-out gain (dB) |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.task} | ${r.layer} | ${r.k} | ${r.vectors_calibration} / ${r.vectors_holdout} | ${f(r.nearest_calibration_db)} / ${f(r.nearest_holdout_db)} | ${f(r.gptq_calibration_db)} / ${f(r.gptq_holdout_db)} | ${f((r.gptq_holdout_db as number) - (r.nearest_holdout_db as number))} |`,
  ),
  '',
].join('\n');
writeFileSync(`${args.out}.md`, md);
writeFileSync(`${args.out}.json`, `${JSON.stringify(rows, null, 1)}\n`);
