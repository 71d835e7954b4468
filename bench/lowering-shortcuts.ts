/**
 * Why the ascend310 lowering keeps its elementwise chain (docs/EMULATOR.md, "three shorter
 * chains that are wrong"): checks three shortcuts exhaustively or adversarially and prints how
 * often each one differs from the reference.
 *
 *   npx tsx bench/lowering-shortcuts.ts [--tasks a,b] [--ulps 200]
 *
 * 1. AscendQuant as a single QuantizeLinear(x, y_scale, offset + 128): for every quantized layer
 *    of the zoo models (ascend310 calibration, 50 spread samples), every finite fp16 input, y_scale
 *    = fp32(1 / scale16) and every float32 within --ulps ulps of it. QuantizeLinear is modelled as
 *    ORT's kernel computes it: fp32(x / y_scale), round half to even, + zero point, saturate.
 * 2. The offset folded into the zero point: QuantizeLinear(fp16(x * scale16), 1, offset + 128).
 * 3. AscendDequant v100 as Cast(double -> float16) of p = double(acc) * deq16, run in ORT on
 *    4,000,000 accumulators aimed at fp16 midpoints, against the correctly rounded fp16(p).
 */
import { parseArgs } from 'node:util';
import { useNodeRuntime } from '../cli/runtime-node.ts';
import { ascendQuantConstants, ascendQuantFunction } from '../core/emulator/ascend-quant.ts';
import { fp16BitsToNumber, roundToFp16 } from '../core/emulator/fp16.ts';
import {
  constantDouble,
  createLoweringContext,
  DT,
  emit,
  emitCast,
} from '../core/emulator/lowering/context.ts';
import { ascendQuantParamsOf } from '../core/emulator/lowering/scales.ts';
import { rng, runModel } from '../core/emulator/lowering/test-support.ts';
import { roundHalfEven } from '../core/emulator/rounding.ts';
import { getTarget } from '../core/formats/targets.ts';
import { makeGraph, makeModel, makeTensorValueInfo } from '../core/onnx/builder.ts';
import { TASKS } from '../zoo/registry.ts';
import { quantizedOnSpread } from './lib.ts';

const { values } = parseArgs({
  options: { tasks: { type: 'string' }, ulps: { type: 'string', default: '200' } },
});
const taskIds = values.tasks ? values.tasks.split(',') : Object.keys(TASKS);
const ulps = Number(values.ulps);
useNodeRuntime();

const fp16Values: number[] = [];
for (let b = 0; b < 0x10000; b++) {
  const v = fp16BitsToNumber(b);
  if (Number.isFinite(v)) fp16Values.push(v);
}
const sat = (v: number) => Math.min(255, Math.max(0, v));
const quantizeLinear = (x: number, yScale: number, zp: number) =>
  sat(roundHalfEven(Math.fround(x / yScale)) + zp);

let layers = 0;
let singleOp = 0;
let withOffset = 0;
let folded = 0;
for (const id of taskIds) {
  const { q } = await quantizedOnSpread(TASKS[id]!, getTarget('ascend310'));
  for (const layer of q.layers) {
    const p = ascendQuantParamsOf(layer);
    if (p.sqrtMode) continue;
    layers++;
    const { scale16, offset16 } = ascendQuantConstants(p);
    const ref = ascendQuantFunction(p);
    const want = fp16Values.map((x) => ref(x) + 128);
    const zp = offset16 + 128;
    const matches = (yScale: number) =>
      fp16Values.every((x, i) => quantizeLinear(x, yScale, zp) === want[i]);
    const f = new Float32Array([Math.fround(1 / scale16)]);
    const bits = new Uint32Array(f.buffer);
    const center = bits[0]!;
    let found = false;
    for (let d = 0; d <= ulps && !found; d++)
      for (const sign of d === 0 ? [0] : [1, -1]) {
        bits[0] = center + sign * d;
        if (matches(f[0]!)) {
          found = true;
          break;
        }
      }
    if (found) singleOp++;
    if (offset16 !== 0) {
      withOffset++;
      const ok = fp16Values.every(
        (x, i) => sat(roundHalfEven(roundToFp16(Math.fround(x * scale16))) + zp) === want[i],
      );
      if (ok) folded++;
    }
  }
  console.error(`${id}: done`);
}
console.log(
  `1. single QuantizeLinear (y_scale within ${ulps} ulps of 1/scale16): exact on ${singleOp} of ${layers} layers`,
);
console.log(
  `2. offset folded into the zero point: exact on ${folded} of ${withOffset} layers with an offset`,
);

// 3. Cast(double -> float16) in onnxruntime-web
const r = rng(7);
let differ = 0;
let total = 0;
for (let trial = 0; trial < 200; trial++) {
  const d16 = roundToFp16(2 ** (-12 + 10 * r()));
  const accs = new Int32Array(20000);
  for (let i = 0; i < accs.length; i++) {
    const v = roundToFp16((r() < 0.5 ? -1 : 1) * 2 ** (-6 + 21 * r()));
    const ulp = Math.abs(roundToFp16(v * (1 + 2 ** -10)) - v) || 2 ** -24;
    accs[i] = Math.round((v + ulp / 2) / d16) + Math.floor(r() * 3) - 1;
  }
  const ctx = createLoweringContext(['acc', 'out']);
  const p = emit(
    ctx,
    'Mul',
    [emitCast(ctx, 'acc', DT.DOUBLE, 'a'), constantDouble(ctx, 'd', [], [d16])],
    'p',
  );
  emitCast(ctx, emitCast(ctx, p, DT.FLOAT16, 'h'), DT.FLOAT, 'f', 'out');
  const model = makeModel(
    makeGraph({
      name: 'cast_double_to_half',
      nodes: ctx.nodes,
      inputs: [makeTensorValueInfo('acc', 'int32', [accs.length])],
      outputs: [makeTensorValueInfo('out', 'float32')],
      initializers: ctx.initializers,
    }),
    { opset: 13 },
  );
  const out = (await runModel(model, { acc: { type: 'int32', dims: [accs.length], data: accs } }))
    .out!.data as Float32Array;
  for (let i = 0; i < accs.length; i++) {
    const want = roundToFp16(accs[i]! * d16);
    if (Math.abs(want) >= 65504) continue;
    total++;
    if (!Object.is(want, out[i])) differ++;
  }
}
console.log(`3. Cast(double -> float16): ${differ} of ${total} accumulators differ from fp16(p)`);
