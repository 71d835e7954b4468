/**
 * GPTQ weight rounding: each layer's integer weights chosen against the inputs the layer
 * receives, instead of each weight rounded to its nearest level.
 *
 * Round to nearest minimises every weight's own error. What the model feels is the error of the
 * layer's output, `(W_q - W) x` over the inputs `x` it sees, and there the errors of weights
 * that read correlated inputs add up or cancel. GPTQ (Frantar et al., "GPTQ: Accurate
 * Post-Training Quantization for Generative Pre-trained Transformers", ICLR 2023; the Optimal
 * Brain Quantization step of Frantar & Alistarh, NeurIPS 2022) minimises
 * `sum_x |(W_q - W) x|^2 = sum_rows e H e^T` with `H = sum_x x x^T`, the inputs' Gram matrix:
 * it quantizes one input column at a time and moves that column's rounding error onto the
 * columns not yet quantized, weighted by the inverse Hessian, so that they absorb it.
 *
 * What this module keeps of the chip's format: the scales and zero points are the ones round to
 * nearest has (per channel or per tensor, max or MSE clip), so the quantized model has exactly
 * the parameters it would have had; only which integer each weight takes changes. A weight the
 * compensation pushes past the clip range saturates, as the format does.
 *
 * Choices, all deterministic:
 * - `H` is built from the integers the layer computes with on a static target
 *   (`clamp(round(x / scale) + zp) - zp`, the input quantized with the layer's own activation
 *   parameters), so its sums are exact integers and do not depend on the order samples are
 *   added in; on a dynamic target (activations quantized at run time) from the float inputs.
 * - Columns in descending order of `H`'s diagonal (GPTQ's "act-order": the inputs with the most
 *   energy are fixed first, while the most columns remain to absorb their error).
 * - Damping `0.01 * mean(diag H)` on the diagonal (GPTQ's default), raised tenfold while the
 *   Cholesky factorisation fails; an input that is zero on every calibration sample gets a
 *   diagonal of 1 and no correlation, so its weights round to nearest.
 * - Per output channel the result is kept only when its error on the calibration inputs is at
 *   most round to nearest's (the channels' errors are independent), so a layer never ends up
 *   further from its float output on the calibration data than round to nearest leaves it.
 */
import type { TensorData } from '../tensor/index.ts';
import type { QuantizedLayer } from './layer.ts';
import { roundHalfEven } from './params.ts';
import type { FloatWeight } from './weights.ts';

/** The layer fields GPTQ reads. */
export type GptqLayer = Pick<
  QuantizedLayer,
  'name' | 'kind' | 'weight' | 'weightSide' | 'conv' | 'act' | 'floatBias'
>;

/** Input vectors per group: one Gram matrix of size `k x k` per group (Conv `group`). */
export interface GramShape {
  groups: number;
  /** Length of one input vector: the weights one output channel applies to it. */
  k: number;
}

/** The shape of a layer's Gram matrices. */
export function gramShape(
  layer: Pick<GptqLayer, 'kind' | 'weight' | 'weightSide' | 'conv'>,
): GramShape {
  const d = layer.weight.dims;
  if (layer.kind === 'conv') return { groups: layer.conv?.group ?? 1, k: d[1]! * d[2]! * d[3]! };
  if (layer.kind === 'matmul' && layer.weightSide !== 'left') return { groups: 1, k: d[0]! }; // [K, N]
  return { groups: 1, k: d[1]! }; // Gemm [N, K], MatMul left [M, K]
}

/** Input vectors gathered per block before their outer products are summed. */
const BLOCK = 128;

/**
 * Sums of the outer products of a layer's input vectors (the upper triangle; {@link gramMatrix}
 * mirrors it), over as many captured batches of its input as are added.
 */
export class InputGram {
  readonly shape: GramShape;
  /** groups * k * k; only entries with column >= row are summed. */
  readonly sums: Float64Array;
  /** Input vectors added (per group). */
  vectors = 0;
  private readonly buf: Float64Array;

  constructor(readonly layer: GptqLayer) {
    this.shape = gramShape(layer);
    this.sums = new Float64Array(this.shape.groups * this.shape.k * this.shape.k);
    this.buf = new Float64Array(this.shape.k * BLOCK);
  }

  /** Adds one batch of the layer's float input, as the layer reads it (before quantization). */
  add(input: TensorData): void {
    if (input.type !== 'float32')
      throw new RangeError(`GPTQ: input of '${this.layer.name}' is ${input.type}, not float32`);
    const x = this.values(input.data as Float32Array);
    const { groups, k } = this.shape;
    let added = 0;
    for (let g = 0; g < groups; g++) {
      let nb = 0;
      const flush = () => {
        addOuterProducts(this.sums, g * k * k, k, this.buf, nb);
        nb = 0;
      };
      added = this.forEachVector(input.dims, x, g, (fill) => {
        fill(this.buf, nb);
        if (++nb === BLOCK) flush();
      });
      if (nb > 0) flush();
    }
    this.vectors += added;
  }

  /** The values the layer multiplies: integers on a static target, floats on a dynamic one. */
  private values(x: Float32Array): Float64Array {
    const out = new Float64Array(x.length);
    if (this.layer.floatBias) {
      out.set(x);
      return out;
    }
    const { scale, zeroPoint, qmin, qmax } = this.layer.act;
    for (let i = 0; i < x.length; i++) {
      const q = roundHalfEven(x[i]! / scale) + zeroPoint;
      out[i] = Math.max(qmin, Math.min(q, qmax)) - zeroPoint;
    }
    return out;
  }

  /**
   * Calls `visit` once per input vector of group `g`; `fill(buf, b)` writes the vector into
   * column `b` of a k x BLOCK column block. Returns the number of vectors.
   */
  private forEachVector(
    dims: readonly number[],
    x: Float64Array,
    g: number,
    visit: (fill: (buf: Float64Array, b: number) => void) => void,
  ): number {
    const { k } = this.shape;
    const { kind, weightSide } = this.layer;
    if (kind === 'conv') {
      const [n, c, h, w] = dims as [number, number, number, number];
      const [, cg, kh, kw] = this.layer.weight.dims as [number, number, number, number];
      const { strides, pads, dilations } = this.layer.conv!;
      const [sh, sw] = strides as [number, number];
      const [pt, pl, pb, pr] = pads as [number, number, number, number];
      const [dh, dw] = dilations as [number, number];
      const oh = Math.floor((h + pt + pb - (dh * (kh - 1) + 1)) / sh) + 1;
      const ow = Math.floor((w + pl + pr - (dw * (kw - 1) + 1)) / sw) + 1;
      if (c !== cg * this.shape.groups)
        throw new RangeError(
          `GPTQ: '${this.layer.name}' reads ${c} channels, expected ${cg * this.shape.groups}`,
        );
      for (let s = 0; s < n; s++)
        for (let y = 0; y < oh; y++)
          for (let z = 0; z < ow; z++)
            visit((buf, b) => {
              let j = 0;
              for (let ci = 0; ci < cg; ci++) {
                const plane = (s * c + g * cg + ci) * h * w;
                for (let u = 0; u < kh; u++) {
                  const iy = y * sh - pt + u * dh;
                  for (let v = 0; v < kw; v++, j++) {
                    const ix = z * sw - pl + v * dw;
                    buf[j * BLOCK + b] =
                      iy >= 0 && iy < h && ix >= 0 && ix < w ? x[plane + iy * w + ix]! : 0;
                  }
                }
              }
            });
      return n * oh * ow;
    }
    if (kind === 'matmul' && weightSide === 'left') {
      // W [M, K] @ x [..., K, N]: the vectors are x's columns.
      const cols = dims[dims.length - 1]!;
      const outer = x.length / (k * cols);
      for (let o = 0; o < outer; o++)
        for (let col = 0; col < cols; col++)
          visit((buf, b) => {
            for (let j = 0; j < k; j++) buf[j * BLOCK + b] = x[(o * k + j) * cols + col]!;
          });
      return outer * cols;
    }
    // Gemm and MatMul with the weight on the right: the vectors are x's rows.
    const rows = x.length / k;
    for (let r = 0; r < rows; r++)
      visit((buf, b) => {
        for (let j = 0; j < k; j++) buf[j * BLOCK + b] = x[r * k + j]!;
      });
    return rows;
  }
}

/** sums[off + i*k + j] += sum_b buf[i][b] * buf[j][b] for j >= i (exact for integer inputs). */
function addOuterProducts(
  sums: Float64Array,
  off: number,
  k: number,
  buf: Float64Array,
  nb: number,
): void {
  for (let i = 0; i < k; i++) {
    const bi = i * BLOCK;
    for (let j = i; j < k; j++) {
      const bj = j * BLOCK;
      let s = 0;
      for (let b = 0; b < nb; b++) s += buf[bi + b]! * buf[bj + b]!;
      sums[off + i * k + j]! += s;
    }
  }
}

/** Group `g`'s full (mirrored) Gram matrix. */
export function gramMatrix(gram: InputGram, g: number): Float64Array {
  const { k } = gram.shape;
  const h = gram.sums.slice(g * k * k, (g + 1) * k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) h[i * k + j] = h[j * k + i]!;
  return h;
}

/** What GPTQ did to one layer, measured on its calibration inputs. */
export interface GptqReport {
  layer: string;
  /** Output SQNR of the weights alone (sum w H w / sum e H e), round to nearest, dB. */
  nearestDb: number;
  /** The same with the chosen weights. */
  gptqDb: number;
  /** Output channels that took GPTQ's integers (the others kept round to nearest's). */
  channelsChanged: number;
  channels: number;
  /** Largest damping factor used (times the mean diagonal of H). */
  damping: number;
}

/** Options of {@link gptqWeights}. */
export interface GptqOptions {
  /** Diagonal damping, as a fraction of H's mean diagonal (default 0.01). */
  damping?: number;
}

/**
 * GPTQ integers for a layer quantized to nearest (`layer.weight`: its scales and zero points are
 * kept), from the float weights it was quantized from and the Gram matrices of its inputs.
 */
export function gptqWeights(
  layer: GptqLayer,
  float: FloatWeight,
  gram: InputGram,
  options: GptqOptions = {},
): { q: Int32Array; report: GptqReport } {
  const qw = layer.weight;
  const { k } = gram.shape;
  const at = weightIndex(layer);
  const q = new Int32Array(qw.q);
  let signal = 0;
  let nearest = 0;
  let chosen = 0;
  let changed = 0;
  let damping = 0;
  forEachGroup(layer, gram, (h, rows) => {
    const order = descendingDiagonal(h, k);
    const factor = inverseFactor(h, k, order, options.damping ?? 0.01);
    damping = Math.max(damping, factor.damping);
    for (const r of rows) {
      const ch = channel(layer, float, r, k);
      signal += quadratic(h, k, ch.w);
      const rtnError = outputError(h, k, ch, (j) => qw.q[at(r, j)]!);
      nearest += rtnError;
      if (!factor.l) {
        chosen += rtnError;
        continue;
      }
      const ints = gptqRow(ch.w, factor.l, order, k, ch.scale, ch.zp, qw.qmin, qw.qmax);
      const gptqError = outputError(h, k, ch, (j) => ints[j]!);
      if (gptqError > rtnError) {
        chosen += rtnError;
        continue;
      }
      chosen += gptqError;
      let differs = false;
      for (let j = 0; j < k; j++) {
        if (q[at(r, j)] !== ints[j]) differs = true;
        q[at(r, j)] = ints[j]!;
      }
      if (differs) changed++;
    }
  });
  return {
    q,
    report: {
      layer: layer.name,
      nearestDb: sqnrDb(signal, nearest),
      gptqDb: sqnrDb(signal, chosen),
      channelsChanged: changed,
      channels: qw.dims[qw.axis]!,
      damping,
    },
  };
}

/**
 * The output error of a layer's integers `q` (on its own scales) against its float weights,
 * summed over the inputs in `gram`: `signal = sum w H w`, `noise = sum e H e`. With the Gram of
 * inputs the rounding did not see, this tells how well the choice carries over.
 */
export function weightNoise(
  layer: GptqLayer,
  float: FloatWeight,
  q: Int32Array,
  gram: InputGram,
): { signal: number; noise: number; db: number } {
  const { k } = gram.shape;
  const at = weightIndex(layer);
  let signal = 0;
  let noise = 0;
  forEachGroup(layer, gram, (h, rows) => {
    for (const r of rows) {
      const ch = channel(layer, float, r, k);
      signal += quadratic(h, k, ch.w);
      noise += outputError(h, k, ch, (j) => q[at(r, j)]!);
    }
  });
  return { signal, noise, db: sqnrDb(signal, noise) };
}

const sqnrDb = (signal: number, noise: number) =>
  noise > 0 ? 10 * Math.log10(signal / noise) : Infinity;

/** Calls `visit` with each group's full Gram matrix and the output channels that read it. */
function forEachGroup(
  layer: GptqLayer,
  gram: InputGram,
  visit: (h: Float64Array, rows: number[]) => void,
): void {
  const { groups } = gram.shape;
  const per = layer.weight.dims[layer.weight.axis]! / groups;
  for (let g = 0; g < groups; g++)
    visit(
      gramMatrix(gram, g),
      Array.from({ length: per }, (_, i) => g * per + i),
    );
}

/** One output channel: its float weights (input order), scale and zero point. */
interface Channel {
  w: Float64Array;
  scale: number;
  zp: number;
}

function channel(layer: GptqLayer, float: FloatWeight, r: number, k: number): Channel {
  const qw = layer.weight;
  const at = weightIndex(layer);
  const c = qw.scales.length === 1 ? 0 : r;
  const w = new Float64Array(k);
  for (let j = 0; j < k; j++) w[j] = float.data[at(r, j)]!;
  return { w, scale: qw.scales[c]!, zp: qw.zeroPoints[c]! };
}

/** e H e^T for the channel's integers `int(j)`: e = (int - zp) * scale - w. */
function outputError(h: Float64Array, k: number, ch: Channel, int: (j: number) => number): number {
  const e = new Float64Array(k);
  for (let j = 0; j < k; j++) e[j] = (int(j) - ch.zp) * ch.scale - ch.w[j]!;
  return quadratic(h, k, e);
}

/** Flat index of (output channel r, input position j) in the layer's weight layout. */
function weightIndex(layer: GptqLayer): (r: number, j: number) => number {
  const d = layer.weight.dims;
  if (layer.kind === 'matmul' && layer.weightSide !== 'left') {
    const n = d[1]!; // [K, N]
    return (r, j) => j * n + r;
  }
  const k = d.slice(1).reduce((a, b) => a * b, 1); // OIHW / [N, K] / [M, K]
  return (r, j) => r * k + j;
}

/** Column order: descending diagonal, ties by index. */
function descendingDiagonal(h: Float64Array, k: number): number[] {
  return Array.from({ length: k }, (_, i) => i).sort(
    (a, b) => h[b * k + b]! - h[a * k + a]! || a - b,
  );
}

/** e H e^T. */
function quadratic(h: Float64Array, k: number, e: Float64Array): number {
  let total = 0;
  for (let i = 0; i < k; i++) {
    if (e[i] === 0) continue;
    let row = 0;
    for (let j = 0; j < k; j++) row += h[i * k + j]! * e[j]!;
    total += e[i]! * row;
  }
  return total;
}

/**
 * The Cholesky factor of (P H P^T + damping)^-1, P the column order: inverse = U^T U with U
 * upper. Returned as its transpose, the lower factor L = U^T (`u(j, t)` = L[t * k + j]): row j
 * of U tells how column j's rounding error moves onto the later columns. `l` is undefined when
 * no damping up to 10^6 times the default makes H positive definite (the layer keeps round to
 * nearest).
 *
 * In place where it can be: with H itself, two k x k arrays are live at once (fmnist-resnet's
 * 1152-input layer: 32 MiB in all), inside a shard's 128 MiB.
 */
function inverseFactor(
  h: Float64Array,
  k: number,
  order: readonly number[],
  damp: number,
): { l: Float64Array | undefined; damping: number } {
  let mean = 0;
  for (let i = 0; i < k; i++) mean += h[i * k + i]!;
  mean /= k;
  const base = mean > 0 ? mean : 1;
  const a = new Float64Array(k * k);
  for (let factor = damp, tries = 0; tries < 7; factor *= 10, tries++) {
    for (let i = 0; i < k; i++) {
      const oi = order[i]!;
      for (let j = 0; j < k; j++) a[i * k + j] = h[oi * k + order[j]!]!;
      // an input that is 0 on every sample has no correlation: its weights round to nearest
      if (a[i * k + i] === 0) a[i * k + i] = 1;
      a[i * k + i]! += factor * base;
    }
    if (!choleskyInPlace(a, k)) continue;
    invertLowerInPlace(a, k); // a = L^-1 =: M, and H^-1 = M^T M
    const inv = gramOfColumns(a, k);
    if (!choleskyInPlace(inv, k)) continue;
    return { l: inv, damping: factor };
  }
  return { l: undefined, damping: damp * 10 ** 7 };
}

/** Overwrites the lower triangle of A with L, A = L L^T; false when A is not positive definite. */
function choleskyInPlace(a: Float64Array, k: number): boolean {
  for (let j = 0; j < k; j++) {
    let d = a[j * k + j]!;
    for (let t = 0; t < j; t++) d -= a[j * k + t]! * a[j * k + t]!;
    if (!(d > 0)) return false;
    const ljj = Math.sqrt(d);
    a[j * k + j] = ljj;
    for (let i = j + 1; i < k; i++) {
      let s = a[i * k + j]!;
      for (let t = 0; t < j; t++) s -= a[i * k + t]! * a[j * k + t]!;
      a[i * k + j] = s / ljj;
    }
  }
  return true;
}

/**
 * Overwrites lower-triangular L (the lower triangle of `a`) with L^-1, column by column: column
 * j of the inverse needs L's rows below j at columns >= j, still untouched then.
 */
function invertLowerInPlace(a: Float64Array, k: number): void {
  for (let j = 0; j < k; j++) {
    a[j * k + j] = 1 / a[j * k + j]!;
    for (let i = j + 1; i < k; i++) {
      let s = 0;
      for (let t = j; t < i; t++) s -= a[i * k + t]! * a[t * k + j]!;
      a[i * k + j] = s / a[i * k + i]!;
    }
  }
}

/** M^T M for lower-triangular M (the lower triangle of `m`): a full symmetric matrix. */
function gramOfColumns(m: Float64Array, k: number): Float64Array {
  const out = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = i; j < k; j++) {
      let s = 0;
      for (let t = j; t < k; t++) s += m[t * k + i]! * m[t * k + j]!;
      out[i * k + j] = s;
      out[j * k + i] = s;
    }
  return out;
}

/**
 * One output channel's integers: columns quantized in `order`, each one's error
 * (w - deq(q)) / U[j][j] subtracted from the later columns along row j of U (U = L^T, `l`
 * from {@link inverseFactor}).
 */
function gptqRow(
  w: Float64Array,
  l: Float64Array,
  order: readonly number[],
  k: number,
  scale: number,
  zp: number,
  qmin: number,
  qmax: number,
): Int32Array {
  const v = new Float64Array(k);
  for (let i = 0; i < k; i++) v[i] = w[order[i]!]!;
  const out = new Int32Array(k);
  for (let j = 0; j < k; j++) {
    const raw = roundHalfEven(v[j]! / scale) + zp;
    const qi = Math.max(qmin, Math.min(raw, qmax));
    out[order[j]!] = qi;
    const e = (v[j]! - (qi - zp) * scale) / l[j * k + j]!;
    if (e === 0) continue;
    for (let t = j + 1; t < k; t++) v[t]! -= e * l[t * k + j]!;
  }
  return out;
}
