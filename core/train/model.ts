/**
 * An ONNX graph mapped onto TensorFlow.js ops, with its weighted layers as trainable variables
 * and, per layer, an optional simulation of the target's integer arithmetic (fake quantization
 * with straight-through gradients). Tensors keep ONNX's NCHW layout; convolutions and pools
 * transpose to NHWC around the TensorFlow.js kernel.
 *
 * The graph is the quantizer's prepared model (core/quantize/prepare.ts: BatchNorm folded into
 * the convolutions), so training updates exactly the weights the quantizer quantizes; export.ts
 * writes them back into the reference graph (BatchNorm kept).
 */
import { ascendQuantConstants, makeAscendQuantParams } from '../emulator/ascend-quant.ts';
import { deqScalesFp32, deqScalesV100, deqScalesV200 } from '../emulator/lowering/scales.ts';
import { arithmeticTargetId, dynamicRefusal, isDynamic, type Target } from '../formats/targets.ts';
import { attrFloat, attrInt, attrInts, attrString } from '../onnx/attributes.ts';
import { constantLookup } from '../onnx/constants.ts';
import type { NodeProto } from '../onnx/gen/onnx_pb.ts';
import { topologicalOrder } from '../onnx/graph.ts';
import { preservesFp16 } from '../quantize/emulation.ts';
import type { QuantizedLayer } from '../quantize/layer.ts';
import { type ActivationParams, integerRange, MIN_SCALE } from '../quantize/params.ts';
import type { LayerCandidate, PreparedModel } from '../quantize/prepare.ts';
import type { TensorData } from '../tensor/index.ts';
import { tf } from './backend.ts';
import { conv2dValid, fp16Round, noGrad, steRound } from './ops.ts';

type Tensor = tf.Tensor;

/** How a forward pass simulates the target. */
export interface SimConfig {
  /** Layers computed with the target's integer arithmetic (by layer name). */
  quantized: ReadonlySet<string>;
  /** Activation quantization of each quantized layer's input (from calibration). */
  act: ReadonlyMap<string, ActivationParams>;
  /** Round the float path to fp16 (graph input, float-op outputs, float weights): Ascend. */
  fp16: boolean;
  /**
   * Exact mode (tests): use these quantized layers' integers, int32 biases and dequantisation
   * scales instead of quantizing the trainable weights.
   */
  fixed?: ReadonlyMap<string, QuantizedLayer>;
  /**
   * Range tracking (training): each quantized layer records the min and max of its float input
   * in this forward pass here (by layer name).
   */
  observe?: Map<string, { lo: number; hi: number }>;
}

/** A weighted layer as trainable variables in TensorFlow.js layout. */
interface TrainableLayer {
  candidate: LayerCandidate;
  /** conv: HWIO [kh, kw, C, O] (depthwise: [kh, kw, C, 1]); gemm: [K, N]; matmul: as in ONNX. */
  w: tf.Variable;
  b: tf.Variable;
  /** Axes of `w` reduced for per-output-channel scales. */
  reduceAxes: number[];
  depthwise: boolean;
}

const f32 = (t: TensorData) => {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'int64') return Float32Array.from(t.data as BigInt64Array, Number);
  return Float32Array.from(t.data as ArrayLike<number>);
};

/** The prepared model as a trainable TensorFlow.js function. */
export class TrainableModel {
  readonly layers = new Map<string, TrainableLayer>();
  private readonly byNode = new Map<NodeProto, TrainableLayer>();
  private readonly skipNodes = new Set<NodeProto>();
  private readonly consts = new Map<string, Tensor>();
  private readonly constInts = new Map<string, number[]>();
  private readonly order: NodeProto[];
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly arith: string;
  private readonly wRange: { qmin: number; qmax: number };

  constructor(
    readonly prepared: PreparedModel,
    readonly target: Target,
  ) {
    if (prepared.keptInFloat) throw new RangeError(`QAT: ${prepared.keptInFloat}`);
    if (isDynamic(target)) throw new RangeError(`QAT: ${dynamicRefusal(target.id)}`);
    const graph = prepared.model.graph!;
    this.arith = arithmeticTargetId(target.id);
    if (!target.weights.symmetric)
      throw new RangeError(`QAT: ${target.id} has asymmetric weights (only symmetric supported)`);
    this.wRange = integerRange(target.weights);
    const lookup = constantLookup(graph);
    const layerNodes = new Set<NodeProto>();
    for (const c of prepared.layers) {
      const t = this.trainable(c);
      this.layers.set(c.name, t);
      this.byNode.set(c.nodes[0]!, t);
      for (const n of c.nodes.slice(1)) this.skipNodes.add(n);
      for (const n of c.nodes) layerNodes.add(n);
    }
    for (const name of lookup.names()) {
      const v = lookup.value(name);
      if (!v) continue;
      if (v.type === 'int64' || v.type === 'int32')
        this.constInts.set(name, Array.from(v.data as ArrayLike<number | bigint>, Number));
      if (v.type === 'float32' || v.type === 'int64' || v.type === 'int32')
        this.consts.set(
          name,
          tf.tensor(f32(v), [...v.dims], v.type === 'float32' ? 'float32' : 'int32'),
        );
    }
    this.order = topologicalOrder(graph).filter((n) => n.opType !== 'Constant');
    const inits = new Set(graph.initializer.map((t) => t.name));
    this.inputNames = graph.input.map((i) => i.name).filter((n) => !inits.has(n));
    this.outputNames = graph.output.map((o) => o.name);
  }

  private trainable(c: LayerCandidate): TrainableLayer {
    const { dims, data } = c.weight;
    let w: Tensor;
    let reduceAxes: number[];
    let depthwise = false;
    if (c.kind === 'conv') {
      const [o, cg] = dims as [number, number, number, number];
      const group = c.conv?.group ?? 1;
      const oihw = tf.tensor4d(data, dims as [number, number, number, number]);
      if (group === 1) {
        w = tf.transpose(oihw, [2, 3, 1, 0]);
      } else if (cg === 1 && group === o) {
        depthwise = true;
        w = tf.transpose(oihw, [2, 3, 0, 1]); // [kh, kw, C, 1]
      } else {
        throw new RangeError(`QAT: conv '${c.name}' with group ${group} (only 1 or depthwise)`);
      }
      reduceAxes = depthwise ? [0, 1, 3] : [0, 1, 2];
      oihw.dispose();
    } else if (c.kind === 'gemm') {
      w = tf.transpose(tf.tensor2d(data, dims as [number, number])); // [K, N]
      reduceAxes = [0];
    } else {
      w = tf.tensor2d(data, dims as [number, number]);
      reduceAxes = c.weightSide === 'left' ? [1] : [0];
    }
    return {
      candidate: c,
      w: tf.variable(w, true, `${c.name}/w`),
      b: tf.variable(tf.tensor1d(c.bias), true, `${c.name}/b`),
      reduceAxes,
      depthwise,
    };
  }

  /** The trainable variables (weights and biases of every layer). */
  variables(): tf.Variable[] {
    return [...this.layers.values()].flatMap((l) => [l.w, l.b]);
  }

  /** Current weights in the candidates' canonical layout (what the quantizer reads). */
  weights(): Map<string, { weight: Float32Array; bias: Float32Array }> {
    const out = new Map<string, { weight: Float32Array; bias: Float32Array }>();
    for (const [name, l] of this.layers) {
      const w = tf.tidy(() => {
        const c = l.candidate;
        if (c.kind === 'conv')
          return tf.transpose(l.w, l.depthwise ? [2, 3, 0, 1] : [3, 2, 0, 1]).dataSync();
        if (c.kind === 'gemm') return tf.transpose(l.w).dataSync();
        return l.w.dataSync();
      });
      out.set(name, { weight: Float32Array.from(w), bias: Float32Array.from(l.b.dataSync()) });
    }
    return out;
  }

  /** Copies of every variable (for rollback). */
  snapshot(): Map<string, Float32Array> {
    return new Map(this.variables().map((v) => [v.name, Float32Array.from(v.dataSync())]));
  }

  restore(snap: ReadonlyMap<string, Float32Array>): void {
    for (const v of this.variables()) {
      const d = snap.get(v.name);
      if (d) v.assign(tf.tensor(d, v.shape));
    }
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
    for (const t of this.consts.values()) t.dispose();
  }

  /**
   * Forward pass. `inputs` are NCHW float32 tensors by graph input name. `sim` null: plain FP32
   * (the prepared model as onnxruntime computes it). Call inside tf.tidy or a gradient scope.
   */
  forward(inputs: Record<string, Tensor>, sim: SimConfig | null): Record<string, Tensor> {
    const env = new Map<string, Tensor>();
    const fp16 = sim?.fp16 === true;
    for (const name of this.inputNames) {
      const x = inputs[name];
      if (!x) throw new RangeError(`QAT forward: missing input '${name}'`);
      env.set(name, fp16 && x.dtype === 'float32' ? fp16Round(x) : x);
    }
    const get = (name: string): Tensor => {
      const t = env.get(name) ?? this.consts.get(name);
      if (!t) throw new RangeError(`QAT forward: tensor '${name}' is not computed`);
      if (fp16 && !env.has(name) && t.dtype === 'float32') {
        const r = fp16Round(t);
        env.set(name, r);
        return r;
      }
      return t;
    };
    for (const node of this.order) {
      if (this.skipNodes.has(node)) continue;
      const layer = this.byNode.get(node);
      if (layer) {
        const c = layer.candidate;
        const x = get(c.input);
        const q = sim?.quantized.has(c.name) === true;
        const y = q ? this.quantizedLayer(layer, x, sim!) : this.floatLayer(layer, x, fp16);
        env.set(c.output, y);
        continue;
      }
      const outs = this.op(node, (i) => get(i));
      for (const [k, o] of node.output.entries()) {
        const t = outs[k];
        if (o === '' || !t) continue;
        env.set(o, fp16 && t.dtype === 'float32' && !preservesFp16(node) ? fp16Round(t) : t);
      }
    }
    const result: Record<string, Tensor> = {};
    for (const o of this.outputNames) result[o] = get(o);
    return result;
  }

  /** Weighted layer in float: y = layer(x; w, b), fp16-rounded weights and output on fp16 paths. */
  private floatLayer(l: TrainableLayer, x: Tensor, fp16: boolean): Tensor {
    const w = fp16 ? fp16Round(l.w) : l.w;
    const b = fp16 ? fp16Round(l.b) : l.b;
    const y = this.linear(l, x, w, b);
    return fp16 ? fp16Round(y) : y;
  }

  /** conv / gemm / matmul of x with weight w (TF layout) plus a per-output-channel bias. */
  private linear(l: TrainableLayer, x: Tensor, w: Tensor, b: Tensor): Tensor {
    const c = l.candidate;
    if (c.kind === 'conv') {
      const conv = c.conv!;
      const d = conv.dilations as [number, number];
      if (l.depthwise && d.some((v) => v !== 1))
        throw new RangeError(`QAT: depthwise conv '${c.name}' with dilation`);
      const [t, left, bottom, right] = conv.pads as [number, number, number, number];
      const xh = tf.pad(tf.transpose(x, [0, 2, 3, 1]), [
        [0, 0],
        [t, bottom],
        [left, right],
        [0, 0],
      ]) as tf.Tensor4D;
      const s = conv.strides as [number, number];
      const y = l.depthwise
        ? tf.depthwiseConv2d(xh, w as tf.Tensor4D, s, 'valid')
        : conv2dValid(xh, w as tf.Tensor4D, s, d);
      return tf.transpose(tf.add(y, b), [0, 3, 1, 2]);
    }
    if (c.kind === 'gemm') return tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b);
    if (c.weightSide === 'left') {
      const y = matmulNd(w, x);
      return tf.add(y, tf.reshape(b, [-1, 1]));
    }
    return tf.add(matmulNd(x, w), b);
  }

  /**
   * The target's integer arithmetic on one layer (see docs/EMULATOR.md), computed in float32:
   * quantize (AscendQuant in fp16 steps, or QuantizeLinear) -> centred integers q - offset ->
   * conv/matmul with integer weights + int32 bias (exact in float32 while |acc| < 2^24) ->
   * dequantise (fp16 deq_scale v100, fp32 deq_scale v200 then fp16, or fp32). Roundings pass
   * gradients straight through; clamps pass them only inside the range.
   */
  private quantizedLayer(l: TrainableLayer, x: Tensor, sim: SimConfig): Tensor {
    const c = l.candidate;
    const fixed = sim.fixed?.get(c.name);
    const p = fixed?.act ?? sim.act.get(c.name);
    if (!p) throw new RangeError(`QAT: no activation parameters for layer '${c.name}'`);
    if (sim.observe)
      sim.observe.set(c.name, {
        lo: tf.min(x).dataSync()[0]!,
        hi: tf.max(x).dataSync()[0]!,
      });
    // 1. activation -> centred integers
    let xc: Tensor;
    if (this.target.quant === 'ascend-fp16') {
      const ap = makeAscendQuantParams(p.scale, p.zeroPoint);
      const { scale16, offset16 } = ascendQuantConstants(ap);
      let a = fp16Round(tf.mul(fp16Round(x), scale16));
      if (ap.sqrtMode) a = fp16Round(tf.mul(a, scale16));
      if (offset16 !== 0) a = fp16Round(tf.add(a, offset16));
      xc = tf.sub(tf.clipByValue(steRound(a), -128, 127), ap.offset);
    } else {
      const [lo, hi] = this.arith === 'snapdragon' ? [0, 255] : [-128, 127];
      const q = tf.add(steRound(tf.div(x, Math.fround(p.scale))), p.zeroPoint);
      xc = tf.sub(tf.clipByValue(q, lo, hi), p.zeroPoint);
    }
    // 2. integer weights, int32 bias, per-channel dequantisation scales
    const channels = c.bias.length;
    let wq: Tensor;
    let bq: Tensor;
    let deq: Tensor;
    if (fixed) {
      wq = this.fixedWeight(l, fixed);
      bq = tf.tensor1d(Float32Array.from(fixed.bias));
      const d =
        this.arith === 'ascend310'
          ? Float32Array.from(deqScalesV100(fixed))
          : this.arith === 'ascend310p'
            ? deqScalesV200(fixed)
            : deqScalesFp32(fixed);
      deq = tf.tensor1d(d);
    } else {
      const sw = noGrad(
        tf.maximum(tf.div(tf.max(tf.abs(l.w), l.reduceAxes), this.wRange.qmax), MIN_SCALE),
      );
      const swB = this.broadcastChannels(l, sw);
      wq = tf.clipByValue(steRound(tf.div(l.w, swB)), this.wRange.qmin, this.wRange.qmax);
      const sd = Math.fround(p.scale);
      const deqExact = tf.mul(sw, sd);
      bq = steRound(tf.div(l.b, deqExact));
      deq = this.arith === 'ascend310' ? noGrad(fp16Round(deqExact)) : noGrad(tf.mul(deqExact, 1)); // fp32 product (v200 and fp32 targets)
    }
    if (deq.shape[0] !== channels) throw new RangeError(`QAT: '${c.name}' channel mismatch`);
    // 3. accumulate in (exact) float32, then dequantise
    const acc = this.linear(l, xc, wq, bq);
    const axis = c.kind === 'conv' ? 1 : c.weightSide === 'left' ? acc.rank - 2 : acc.rank - 1;
    const shape = acc.shape.map((_, i) => (i === axis ? channels : 1));
    let y = tf.mul(acc, tf.reshape(deq, shape));
    if (this.target.floatPath === 'fp16') y = fp16Round(y);
    if (fixed?.fusedRelu) y = tf.relu(y);
    return y;
  }

  /** Per-output-channel vector `v` shaped to broadcast over `l.w`. */
  private broadcastChannels(l: TrainableLayer, v: Tensor): Tensor {
    const shape = l.w.shape.map((d, i) => (l.reduceAxes.includes(i) ? 1 : d));
    return tf.reshape(v, shape);
  }

  private fixedWeight(l: TrainableLayer, q: QuantizedLayer): Tensor {
    const c = l.candidate;
    const data = Float32Array.from(q.weight.q);
    if (c.kind === 'conv') {
      const t = tf.tensor4d(data, q.weight.dims as [number, number, number, number]);
      return tf.transpose(t, l.depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0]);
    }
    const t = tf.tensor2d(data, q.weight.dims as [number, number]);
    return c.kind === 'gemm' ? tf.transpose(t) : t;
  }

  /** One non-layer ONNX node. */
  private op(node: NodeProto, get: (name: string) => Tensor): (Tensor | undefined)[] {
    const x = () => get(node.input[0]!);
    const y = () => get(node.input[1]!);
    const ints = (i: number) => {
      const v = this.constInts.get(node.input[i] ?? '');
      if (v) return v;
      const t = node.input[i] ? get(node.input[i]!) : undefined;
      return t ? Array.from(t.dataSync(), Number) : undefined;
    };
    switch (node.opType) {
      case 'Identity':
      case 'Dropout':
        return [x()];
      case 'Relu':
        return [tf.relu(x())];
      case 'Sigmoid':
        return [tf.sigmoid(x())];
      case 'Tanh':
        return [tf.tanh(x())];
      case 'Erf':
        return [tf.erf(x())];
      case 'Exp':
        return [tf.exp(x())];
      case 'Log':
        return [tf.log(x())];
      case 'Sqrt':
        return [tf.sqrt(x())];
      case 'Neg':
        return [tf.neg(x())];
      case 'Abs':
        return [tf.abs(x())];
      case 'Reciprocal':
        return [tf.reciprocal(x())];
      case 'Add':
        return [tf.add(x(), y())];
      case 'Sub':
        return [tf.sub(x(), y())];
      case 'Mul':
        return [tf.mul(x(), y())];
      case 'Div':
        return [tf.div(x(), y())];
      case 'Pow':
        return [tf.pow(x(), y())];
      case 'Max':
        return [node.input.map(get).reduce((a, b) => tf.maximum(a, b))];
      case 'Min':
        return [node.input.map(get).reduce((a, b) => tf.minimum(a, b))];
      case 'LeakyRelu':
        return [tf.leakyRelu(x(), attrFloat(node, 'alpha', 0.01))];
      case 'Clip': {
        const lo = node.input[1] ? get(node.input[1]).dataSync()[0]! : -Infinity;
        const hi = node.input[2] ? get(node.input[2]).dataSync()[0]! : Infinity;
        return [tf.clipByValue(x(), lo, hi)];
      }
      case 'HardSigmoid': {
        const a = attrFloat(node, 'alpha', 0.2);
        const b = attrFloat(node, 'beta', 0.5);
        return [tf.clipByValue(tf.add(tf.mul(x(), a), b), 0, 1)];
      }
      case 'HardSwish': {
        const v = x();
        return [tf.mul(v, tf.div(tf.clipByValue(tf.add(v, 3), 0, 6), 6))];
      }
      case 'Gelu': {
        const v = x();
        return [tf.mul(tf.mul(v, 0.5), tf.add(1, tf.erf(tf.mul(v, Math.SQRT1_2))))];
      }
      case 'Softmax':
        return [softmaxAxis(x(), attrInt(node, 'axis', -1))];
      case 'GlobalAveragePool':
        return [tf.mean(x(), [2, 3], true)];
      case 'GlobalMaxPool':
        return [tf.max(x(), [2, 3], true)];
      case 'MaxPool':
      case 'AveragePool':
        return [pool(node, x())];
      case 'Flatten': {
        const v = x();
        const axis = attrInt(node, 'axis', 1);
        const a = v.shape.slice(0, axis).reduce((p, d) => p * d, 1);
        return [tf.reshape(v, [a, -1])];
      }
      case 'Reshape': {
        const v = x();
        const shape = ints(1)!.map((d, i) => (d === 0 ? v.shape[i]! : d));
        return [tf.reshape(v, shape)];
      }
      case 'Transpose': {
        const v = x();
        const perm = attrInts(node, 'perm') ?? v.shape.map((_, i) => v.rank - 1 - i);
        return [tf.transpose(v, perm)];
      }
      case 'Concat': {
        const parts = node.input.map(get);
        const axis = attrInt(node, 'axis', 0);
        return [tf.concat(parts, axis < 0 ? axis + parts[0]!.rank : axis)];
      }
      case 'Unsqueeze': {
        let v = x();
        const axes = (attrInts(node, 'axes') ?? ints(1)!).slice().sort((a, b) => a - b);
        for (const a of axes) v = tf.expandDims(v, a < 0 ? a + v.rank + 1 : a);
        return [v];
      }
      case 'Squeeze': {
        const axes = attrInts(node, 'axes') ?? ints(1);
        return [tf.squeeze(x(), axes)];
      }
      case 'Gather': {
        const idx = get(node.input[1]!);
        const v = x();
        const axis = attrInt(node, 'axis', 0);
        return [tf.gather(v, tf.cast(idx, 'int32'), axis < 0 ? axis + v.rank : axis)];
      }
      case 'Shape':
        return [tf.tensor1d(x().shape, 'int32')];
      case 'Cast': {
        const to = attrInt(node, 'to', 1);
        return [tf.cast(x(), to === 1 ? 'float32' : to === 9 ? 'bool' : 'int32')];
      }
      case 'Equal':
        return [tf.equal(x(), y())];
      case 'Less':
        return [tf.less(x(), y())];
      case 'Greater':
        return [tf.greater(x(), y())];
      case 'Not':
        return [tf.logicalNot(x())];
      case 'Where':
        return [tf.where(tf.cast(x(), 'bool'), y(), get(node.input[2]!))];
      case 'ReduceMean': {
        const axes = attrInts(node, 'axes') ?? ints(1);
        return [tf.mean(x(), axes, attrInt(node, 'keepdims', 1) === 1)];
      }
      case 'ReduceSum': {
        const axes = attrInts(node, 'axes') ?? ints(1);
        return [tf.sum(x(), axes, attrInt(node, 'keepdims', 1) === 1)];
      }
      case 'MatMul':
        return [matmulNd(x(), y())];
      case 'BatchNormalization': {
        const v = x();
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => get(node.input[i]!));
        const shape = v.shape.map((d, i) => (i === 1 ? d : 1));
        const r = (t: Tensor) => tf.reshape(t, shape);
        const inv = tf.rsqrt(tf.add(r(variance!), attrFloat(node, 'epsilon', 1e-5)));
        return [tf.add(tf.mul(tf.mul(tf.sub(v, r(mean!)), inv), r(scale!)), r(bias!))];
      }
      case 'LayerNormalization': {
        const v = x();
        const axis = attrInt(node, 'axis', -1);
        const a = axis < 0 ? axis + v.rank : axis;
        const axes = v.shape.map((_, i) => i).filter((i) => i >= a);
        const m = tf.mean(v, axes, true);
        const d = tf.sub(v, m);
        const inv = tf.rsqrt(
          tf.add(tf.mean(tf.square(d), axes, true), attrFloat(node, 'epsilon', 1e-5)),
        );
        let out = tf.mul(tf.mul(d, inv), get(node.input[1]!));
        if (node.input[2]) out = tf.add(out, get(node.input[2]));
        return [out];
      }
      case 'Gemm': {
        let a = x();
        let b = y();
        if (attrInt(node, 'transA', 0)) a = tf.transpose(a);
        if (attrInt(node, 'transB', 0)) b = tf.transpose(b);
        let out = tf.mul(
          tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
          attrFloat(node, 'alpha', 1),
        );
        if (node.input[2])
          out = tf.add(out, tf.mul(get(node.input[2]), attrFloat(node, 'beta', 1)));
        return [out];
      }
      default:
        throw new RangeError(
          `QAT: ONNX op ${node.opType} (node '${node.name}') is not mapped onto TensorFlow.js`,
        );
    }
  }
}

/** ONNX MatMul semantics (batched, broadcast over leading dims) on rank >= 2 tensors. */
function matmulNd(a: Tensor, b: Tensor): Tensor {
  if (a.rank === 2 && b.rank === 2) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  if (b.rank === 2) {
    const lead = a.shape.slice(0, -1);
    const k = a.shape[a.rank - 1]!;
    const y = tf.matMul(tf.reshape(a, [-1, k]) as tf.Tensor2D, b as tf.Tensor2D);
    return tf.reshape(y, [...lead, b.shape[1]!]);
  }
  return tf.matMul(a, b);
}

function softmaxAxis(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  if (a === x.rank - 1) return tf.softmax(x);
  const perm = x.shape.map((_, i) => i);
  perm[a] = x.rank - 1;
  perm[x.rank - 1] = a;
  return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
}

/** MaxPool / AveragePool (2-D, NCHW) through NHWC TensorFlow.js pools with explicit padding. */
function pool(node: NodeProto, x: Tensor): Tensor {
  const k = attrInts(node, 'kernel_shape', [1, 1]) as [number, number];
  const s = attrInts(node, 'strides', [1, 1]) as [number, number];
  const [t, l, b, r] = attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  if (attrInt(node, 'ceil_mode', 0) !== 0) throw new RangeError('QAT: pooling with ceil_mode');
  if ((attrString(node, 'auto_pad') ?? 'NOTSET') !== 'NOTSET')
    throw new RangeError('QAT: pooling with auto_pad');
  const xh = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  const padded = t + l + b + r > 0;
  let y: Tensor;
  if (node.opType === 'MaxPool') {
    const xp = padded
      ? tf.pad(
          xh,
          [
            [0, 0],
            [t, b],
            [l, r],
            [0, 0],
          ],
          -3.4e38,
        )
      : xh;
    y = tf.maxPool(xp as tf.Tensor4D, k, s, 'valid');
  } else {
    const xp = padded
      ? tf.pad(xh, [
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ])
      : xh;
    y = tf.avgPool(xp as tf.Tensor4D, k, s, 'valid');
    if (padded && attrInt(node, 'count_include_pad', 0) === 0) {
      // Divide by the number of real (unpadded) taps instead of k*k.
      const ones = tf.pad(tf.onesLike(xh), [
        [0, 0],
        [t, b],
        [l, r],
        [0, 0],
      ]) as tf.Tensor4D;
      const frac = tf.avgPool(ones, k, s, 'valid');
      y = tf.div(y, frac);
    }
  }
  return tf.transpose(y, [0, 3, 1, 2]);
}
