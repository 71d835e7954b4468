/**
 * `cann-quant calibrate --model <file.onnx> --data <dir> --target <t>`: reading a user's own ONNX
 * model and unlabelled samples for the same pipeline as the zoo tasks (sampler, sensitivity tiers,
 * calibration, bias correction, loss estimate). The run itself: cli/local-run.ts `runUserModel`.
 *
 * Data directory format (no labels; calibration never needs them):
 *
 * - one model input: `<dir>/*.npy`; several inputs: `<dir>/<input name>/*.npy`, the same number
 *   of samples per input, matched by order;
 * - files are read in natural name order (`x2.npy` before `x10.npy`); other files are ignored;
 * - each file (`numpy.save`, C order, little-endian) holds ONE sample, shaped like the model
 *   input without its batch dimension (e.g. (1, 28, 28) for an input [N, 1, 28, 28]), or a BATCH
 *   of samples with the batch dimension first (e.g. (50, 1, 28, 28));
 * - values are fed as they are: preprocess (normalise, tokenise) before saving;
 * - float32 inputs take f4, f8 and integer arrays (converted to float32); int64 and int32
 *   inputs take integer arrays.
 *
 * Output kind (`--outputs auto|classes|values`): `auto` looks at the FP32 model's first output
 * on the first sample: float32 [N, C] with C >= 2 is class scores. Class scores: the sampler
 * stratifies by FP32 argmax, sensitivity uses FP32 argmax agreement (with the agreement test)
 * beside SQNR, and the estimate is the FP32/INT8 top-1 disagreement in points. Values: SQNR
 * ranks the layers and the estimate is the relative RMS error of the outputs (estimate.ts).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { OnnxFormatError } from '../core/onnx/errors.ts';
import type { ModelProto } from '../core/onnx/gen/onnx_pb.ts';
import { decodeModel } from '../core/onnx/index.ts';
import { type Dim, tensorTypeInfo } from '../core/onnx/shapes.ts';
import { tensorTypeOf } from '../core/onnx/tensor.ts';
import { float32JsonBytes } from '../core/pipeline/replay.ts';
import { concatFloat32, type TensorData, type TensorType, tensor } from '../core/tensor/index.ts';
import { CliError } from './errors.ts';
import { NpyError, readNpy } from './npy.ts';

/** Exit code of bad user inputs (model, data directory, flags). */
export const INPUT_ERROR = 2;

/** What the data directory must provide for one model input. */
export interface UserInput {
  name: string;
  type: TensorType;
  /** The model's declared dims, batch first (numbers, names, or null when unknown). */
  dims: Dim[];
}

/** A user model, read and checked. */
export interface UserModel {
  file: string;
  bytes: Uint8Array;
  model: ModelProto;
  inputs: UserInput[];
}

/** The task id a user model gets in recipes and reports: `user:<file name without .onnx>`. */
export function userTaskId(file: string): string {
  return `user:${basename(file).replace(/\.onnx$/i, '')}`.slice(0, 64);
}

/**
 * An ONNX file read and decoded, with one readable line (exit code 2) when it does not exist, is
 * not a file, or does not decode.
 */
export async function readOnnxFile(
  file: string,
): Promise<{ bytes: Uint8Array; model: ModelProto }> {
  const st = await stat(file).catch(() => undefined);
  if (!st) throw new CliError(`model file '${file}' does not exist`, INPUT_ERROR);
  if (!st.isFile()) throw new CliError(`model '${file}' is not a file`, INPUT_ERROR);
  const bytes = new Uint8Array(await readFile(file));
  try {
    return { bytes, model: decodeModel(bytes) };
  } catch (err) {
    if (err instanceof OnnxFormatError)
      throw new CliError(`'${file}' is not a usable ONNX model: ${err.message}`, INPUT_ERROR);
    throw err;
  }
}

/** Reads and decodes an ONNX file; one-line CliErrors for a missing or non-ONNX file. */
export async function readUserModel(file: string): Promise<UserModel> {
  const { bytes, model } = await readOnnxFile(file);
  const graph = model.graph!;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const inputs: UserInput[] = [];
  for (const v of graph.input) {
    if (initializers.has(v.name)) continue;
    const info = tensorTypeInfo(v.type);
    const type = info ? tensorTypeOf(info.elemType) : undefined;
    if (!info?.dims)
      throw new CliError(
        `model input '${v.name}' declares no tensor shape; cannot check the data against it`,
        INPUT_ERROR,
      );
    if (type !== 'float32' && type !== 'int64' && type !== 'int32')
      throw new CliError(
        `model input '${v.name}' is ${type ?? `ONNX type ${info.elemType}`}; calibration data is supported for float32, int64 and int32 inputs`,
        INPUT_ERROR,
      );
    if (info.dims.length === 0)
      throw new CliError(
        `model input '${v.name}' is a scalar; it needs a batch dimension`,
        INPUT_ERROR,
      );
    const b = info.dims[0];
    if (typeof b === 'number' && b !== 0)
      throw new CliError(
        `model input '${v.name}' has a fixed batch size ${b}; re-export the model with a dynamic batch dimension (e.g. torch.onnx.export(..., dynamic_axes={'${v.name}': {0: 'batch'}}))`,
        INPUT_ERROR,
      );
    inputs.push({ name: v.name, type, dims: info.dims });
  }
  if (inputs.length === 0) throw new CliError(`model '${file}' has no inputs`, INPUT_ERROR);
  return { file, bytes, model, inputs };
}

const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

async function npyFiles(dir: string): Promise<string[]> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new CliError(`data directory '${dir}' does not exist`, INPUT_ERROR);
  if (!st.isDirectory()) throw new CliError(`data path '${dir}' is not a directory`, INPUT_ERROR);
  return (await readdir(dir))
    .filter((f) => !f.startsWith('.') && f.toLowerCase().endsWith('.npy'))
    .sort(natural.compare)
    .map((f) => join(dir, f));
}

const isInteger = (dtype: string) => !dtype.includes('f');

/** The samples of one input, stacked: per-sample dims and the flat data. */
interface Stacked {
  count: number;
  sampleDims: number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

async function stackInput(input: UserInput, files: readonly string[]): Promise<Stacked> {
  const want = input.dims.slice(1);
  const parts: { dims: number[]; values: ArrayLike<number | bigint>; dtype: string }[] = [];
  let sampleDims: number[] | undefined;
  let count = 0;
  for (const f of files) {
    let arr: ReturnType<typeof readNpy>;
    try {
      arr = readNpy(new Uint8Array(await readFile(f)));
    } catch (err) {
      if (err instanceof NpyError) throw new CliError(`${f}: ${err.message}`, INPUT_ERROR);
      throw err;
    }
    const shape = `(${arr.shape.join(', ')})`;
    const expect = `(${want.map((d) => d ?? '?').join(', ')}) for one sample or (N, ${want.map((d) => d ?? '?').join(', ')}) for N samples`;
    let n: number;
    let dims: number[];
    if (arr.shape.length === want.length) {
      n = 1;
      dims = arr.shape;
    } else if (arr.shape.length === want.length + 1) {
      n = arr.shape[0]!;
      dims = arr.shape.slice(1);
    } else
      throw new CliError(
        `${f}: shape ${shape} does not fit model input '${input.name}' [${input.dims.map((d) => d ?? '?').join(', ')}]: want ${expect}`,
        INPUT_ERROR,
      );
    for (const [k, d] of want.entries())
      if (typeof d === 'number' && d !== 0 && dims[k] !== d)
        throw new CliError(
          `${f}: shape ${shape} does not fit model input '${input.name}' [${input.dims.map((x) => x ?? '?').join(', ')}]: want ${expect}`,
          INPUT_ERROR,
        );
    if (sampleDims && dims.join() !== sampleDims.join())
      throw new CliError(
        `${f}: sample shape (${dims.join(', ')}) differs from the earlier files' (${sampleDims.join(', ')}); all samples of an input must have one shape`,
        INPUT_ERROR,
      );
    sampleDims = dims;
    if (input.type !== 'float32' && !isInteger(arr.dtype))
      throw new CliError(
        `${f}: dtype ${arr.dtype} for the ${input.type} input '${input.name}'; save integers (e.g. np.int64)`,
        INPUT_ERROR,
      );
    if (!isInteger(arr.dtype)) {
      // NaN or infinity would reach the calibration statistics as NaN ranges: refuse it here,
      // saying where, rather than as a failed shard.
      const v = arr.data as ArrayLike<number>;
      const per = v.length / Math.max(1, n);
      for (let i = 0; i < v.length; i++)
        if (!Number.isFinite(v[i]!))
          throw new CliError(
            `${f}: ${n > 1 || arr.shape.length > want.length ? `sample ${Math.floor(i / per)} ` : ''}holds ${v[i]} at flat index ${i % per}; calibration samples must be finite`,
            INPUT_ERROR,
          );
    }
    if (n > 0) parts.push({ dims, values: arr.data, dtype: arr.dtype });
    count += n;
  }
  if (count === 0 || !sampleDims)
    throw new CliError(`no samples for input '${input.name}'`, INPUT_ERROR);
  const per = sampleDims.reduce((a, b) => a * b, 1);
  const data =
    input.type === 'float32'
      ? new Float32Array(count * per)
      : input.type === 'int64'
        ? new BigInt64Array(count * per)
        : new Int32Array(count * per);
  let o = 0;
  for (const p of parts) {
    const v = p.values;
    if (data instanceof BigInt64Array)
      for (let i = 0; i < v.length; i++) data[o + i] = BigInt(v[i]!);
    else for (let i = 0; i < v.length; i++) data[o + i] = Number(v[i]!);
    o += v.length;
  }
  return { count, sampleDims, data };
}

/** The data directory as a calibration split (no labels), checked against the model's inputs. */
export async function loadDataDir(
  dir: string,
  inputs: readonly UserInput[],
): Promise<{
  size: number;
  files: number;
  batch(start: number, end: number): Record<string, TensorData>;
}> {
  const stacked: Stacked[] = [];
  let files = 0;
  if (inputs.length === 1) {
    const list = await npyFiles(dir);
    if (list.length === 0)
      throw new CliError(`data directory '${dir}' has no .npy files`, INPUT_ERROR);
    files = list.length;
    stacked.push(await stackInput(inputs[0]!, list));
  } else {
    await npyFiles(dir); // existence checks
    for (const input of inputs) {
      const list = await npyFiles(join(dir, input.name)).catch(() => {
        throw new CliError(
          `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}): put each input's .npy files in '${join(dir, input.name)}'`,
          INPUT_ERROR,
        );
      });
      if (list.length === 0)
        throw new CliError(`'${join(dir, input.name)}' has no .npy files`, INPUT_ERROR);
      files += list.length;
      stacked.push(await stackInput(input, list));
    }
    const counts = stacked.map((s) => s.count);
    if (new Set(counts).size > 1)
      throw new CliError(
        `inputs have different sample counts (${inputs.map((i, k) => `${i.name} ${counts[k]}`).join(', ')})`,
        INPUT_ERROR,
      );
  }
  const size = stacked[0]!.count;
  return {
    size,
    files,
    batch(start, end) {
      if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end))
        throw new RangeError(`user data: batch [${start}, ${end}) is empty or invalid`);
      if (end > size)
        throw new RangeError(`user data: batch [${start}, ${end}) outside 0..${size}`);
      return Object.fromEntries(
        inputs.map((input, k) => {
          const s = stacked[k]!;
          const per = s.sampleDims.reduce((a, b) => a * b, 1);
          return [
            input.name,
            tensor(
              input.type,
              [end - start, ...s.sampleDims],
              s.data.slice(start * per, end * per),
            ),
          ];
        }),
      );
    },
  };
}

/** How the model's outputs are read. */
export type OutputKind = 'classes' | 'values';

/**
 * Bytes of one sample's values prediction in a shard output: every float32 output of a batch of
 * one sample, concatenated (as {@link userTask} reads them), base64 in the output.
 */
export function valuesPredictionBytes(outputs: Record<string, TensorData>): number {
  let floats = 0;
  for (const o of Object.values(outputs)) if (o.type === 'float32') floats += o.data.length;
  return float32JsonBytes(floats);
}

/** `auto`: float32 [N, C >= 2] first output = class scores; else values. */
export function detectOutputKind(outputs: Record<string, TensorData>, first: string): OutputKind {
  const o = outputs[first];
  return o?.type === 'float32' && o.dims.length === 2 && o.dims[1]! >= 2 ? 'classes' : 'values';
}

/** The pipeline's view of a user model: predictions per output kind, no labels, no metric. */
export function userTask(
  id: string,
  kind: OutputKind,
  firstOutput: string,
  predictionBytes?: number,
) {
  return {
    ...(kind === 'values' && predictionBytes !== undefined ? { predictionBytes } : {}),
    manifest: {
      id,
      metric: { primary: kind === 'classes' ? 'agreement' : 'relative-error' },
      reference: { fp32: {} as Record<string, number> },
    },
    predict(outputs: Record<string, TensorData>, n: number): (number | Float32Array)[] {
      if (kind === 'classes') {
        const o = outputs[firstOutput]!;
        const c = o.dims[1]!;
        const x = o.data as Float32Array;
        return Array.from({ length: n }, (_, i) => {
          let best = 0;
          for (let j = 1; j < c; j++) if (x[i * c + j]! > x[i * c + best]!) best = j;
          return best;
        });
      }
      // Values: every float32 output of the sample, outputs in name order, concatenated.
      const names = Object.keys(outputs)
        .filter((k) => outputs[k]!.type === 'float32')
        .sort();
      return Array.from({ length: n }, (_, i) => {
        return concatFloat32(
          names.map((k) => {
            const x = outputs[k]!.data as Float32Array;
            const per = x.length / n;
            return x.subarray(i * per, (i + 1) * per);
          }),
        );
      });
    },
    score(): Record<string, number> {
      throw new Error('user models have no labels: calibrate only, no evaluation');
    },
  };
}
