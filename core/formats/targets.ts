/**
 * Hardware profiles: each target is a data record of the INT8 scheme its toolchain uses, the
 * arithmetic its emulator applies, and (for the performance model) its peak figures with their
 * sources. `cann-quant targets` prints these records; nothing else defines a target.
 */

/** Integer element type of a quantized tensor. */
export type IntType = 'int8' | 'uint8' | 'int4';

/** How a quantized tensor is parameterised. */
export interface TensorScheme {
  type: IntType;
  /** Symmetric: zero point fixed at 0 (or 128 for uint8 symmetric); asymmetric: learned offset. */
  symmetric: boolean;
  granularity: 'per-tensor' | 'per-channel';
  /**
   * Dynamic: scale and zero point computed from each input at run time (ONNX
   * DynamicQuantizeLinear), not calibrated. Activations only.
   */
  dynamic?: boolean;
}

/** Float precision a target uses for what it does not run in integers. */
export type FloatPath = 'fp16' | 'fp32';

/** How the int32 accumulator is turned back into a float (see docs/EMULATOR.md). */
export type DequantArithmetic =
  /** Ascend 310 (v100): deq_scale stored as fp16, result fp16. */
  | 'ascend-fp16-deqscale'
  /** Ascend 310P (v200): deq_scale as fp32 bits packed in a uint64, result fp16. */
  | 'ascend-fp32-deqscale'
  /** acc * (scale_x * scale_w) in fp32 (TensorRT / SNPE style requantisation). */
  | 'fp32';

/** How float activations become integers. */
export type QuantArithmetic =
  /** AscendQuant: x cast to fp16, x * (1/scale) in fp16, + offset in fp16, round half even. */
  | 'ascend-fp16'
  /** QuantizeLinear: x / scale in fp32, round half even, + zero point, saturate. */
  | 'fp32';

/** A figure with where it comes from and how far to trust it. */
export interface SourcedFigure {
  value: number;
  unit: string;
  source: string;
  confidence: 'vendor' | 'secondary' | 'assumption';
}

/** A hardware target. */
export interface Target {
  id: TargetId;
  name: string;
  description: string;
  activations: TensorScheme;
  weights: TensorScheme;
  /** int32 in accumulator units; float (added after dequantization) on dynamic targets. */
  bias: 'int32' | 'float';
  quant: QuantArithmetic;
  dequant: DequantArithmetic;
  /** Precision of layers that stay float (and of the float baseline for the speed-up). */
  floatPath: FloatPath;
  /** ONNX op types the target runs in integers; everything else stays float. */
  quantizedOps: readonly string[];
  /** Hardware ReLU fused into dequantisation. */
  fusedRelu: boolean;
  /** What executes the emulation: our lowering, or onnxruntime-web's own QDQ kernels. */
  executor: 'lowered-emulator' | 'ort-qdq';
  /** Peak figures for the roofline model (issue: scoring). */
  peak: {
    int8Ops: SourcedFigure;
    floatOps: SourcedFigure;
    bandwidth: SourcedFigure;
    power: SourcedFigure;
  };
  notes: string[];
  /**
   * Weight-precision variants (W4A8): the target whose arithmetic this one shares. Everything
   * but the weights' integer range (int4 values held in int8 containers) is the base target's.
   */
  base?: BaseTargetId;
}

/** Ids of the INT8 targets. */
export type BaseTargetId = 'ascend310' | 'ascend310p' | 'nvidia-t4' | 'snapdragon' | 'cpu-wasm';

/** Ids of the W4A8 variants (int4 symmetric per-channel weights, int8 activations). */
export type W4A8TargetId = 'ascend310-w4a8' | 'ascend310p-w4a8';

/** Ids of the dynamic-quantization variants (activation scales computed per input at run time). */
export type DynamicTargetId = 'cpu-wasm-dynamic';

/** Ids of the supported targets. */
export type TargetId = BaseTargetId | W4A8TargetId | DynamicTargetId;

/** The INT8 target whose arithmetic a target uses (itself for the INT8 targets). */
export function arithmeticTargetId(id: TargetId): BaseTargetId {
  return (TARGETS[id].base ?? id) as BaseTargetId;
}

/** Ids of the targets that run on onnxruntime-web's own kernels: timed, never modelled. */
export type TimedTargetId = 'cpu-wasm' | 'cpu-wasm-dynamic';

/**
 * The timed target whose measurement stands for a target's: itself when it runs on
 * onnxruntime-web's own kernels, otherwise cpu-wasm (its scheme's QDQ model there).
 */
export function timedTargetFor(id: TargetId): TimedTargetId {
  return TARGETS[id].executor === 'ort-qdq' ? (id as TimedTargetId) : 'cpu-wasm';
}

/**
 * Why a dynamic target refuses a QAT model: QAT trains calibrated activation scales. (An imported
 * file is placed by its kind: core/import/layers.ts, importKindRefusal.)
 */
export function dynamicRefusal(id: TargetId): string {
  return `${id} quantizes activations at run time; QAT trains calibrated activation scales (train for cpu-wasm)`;
}

/** True when the target quantizes activations at run time (no calibrated activation scales). */
export function isDynamic(target: Pick<Target, 'activations'>): boolean {
  return target.activations.dynamic === true;
}

const WEIGHTED_OPS = ['Conv', 'Gemm', 'MatMul'] as const;

const int8PerChannelSym: TensorScheme = {
  type: 'int8',
  symmetric: true,
  granularity: 'per-channel',
};

/** The INT8 targets, in the order reports show them. */
const INT8_TARGETS: Readonly<Record<BaseTargetId, Target>> = {
  ascend310: {
    id: 'ascend310',
    name: 'Huawei Ascend 310',
    description:
      'AMCT/ATC scheme: int8 asymmetric per-tensor activations with offset, int8 symmetric per-channel weights, int32 bias; AscendQuant in fp16, AscendDequant with an fp16 deq_scale; non-weighted layers in fp16.',
    activations: { type: 'int8', symmetric: false, granularity: 'per-tensor' },
    weights: int8PerChannelSym,
    bias: 'int32',
    quant: 'ascend-fp16',
    dequant: 'ascend-fp16-deqscale',
    floatPath: 'fp16',
    quantizedOps: WEIGHTED_OPS,
    fusedRelu: true,
    executor: 'lowered-emulator',
    peak: {
      int8Ops: {
        value: 16e12,
        unit: 'ops/s',
        source: 'HiSilicon Ascend 310 launch page (16 TOPS INT8)',
        confidence: 'vendor',
      },
      floatOps: {
        value: 8e12,
        unit: 'flop/s',
        source: 'HiSilicon Ascend 310 launch page (8 TFLOPS FP16)',
        confidence: 'vendor',
      },
      bandwidth: {
        value: 25.6e9,
        unit: 'B/s',
        source: 'no public figure found; assumed LPDDR4X 2 x 64-bit at 1600 MHz class (25.6 GB/s)',
        confidence: 'assumption',
      },
      power: {
        value: 8,
        unit: 'W',
        source: 'HiSilicon Ascend 310 launch page (8 W)',
        confidence: 'vendor',
      },
    },
    notes: [
      'A conv with Cin <= 16 gets no speed-up from the cube unit (padding); the performance model counts it at fp16 cost.',
    ],
  },
  ascend310p: {
    id: 'ascend310p',
    name: 'Huawei Ascend 310P',
    description:
      'int8 symmetric activations with clipping, int8 symmetric per-channel weights, int32 bias; fp32 deq_scale packed in a uint64 (graph-engine packing), hardware ReLU; non-weighted layers in fp16.',
    activations: { type: 'int8', symmetric: true, granularity: 'per-tensor' },
    weights: int8PerChannelSym,
    bias: 'int32',
    quant: 'ascend-fp16',
    dequant: 'ascend-fp32-deqscale',
    floatPath: 'fp16',
    quantizedOps: WEIGHTED_OPS,
    fusedRelu: true,
    executor: 'lowered-emulator',
    peak: {
      int8Ops: {
        value: 140e12,
        unit: 'ops/s',
        source: 'Atlas 300I Duo (2 chips) 280 TOPS INT8, halved; secondary sources',
        confidence: 'secondary',
      },
      floatOps: {
        value: 70e12,
        unit: 'flop/s',
        source: 'Atlas 300I Duo 140 TFLOPS FP16, halved; secondary sources',
        confidence: 'secondary',
      },
      bandwidth: {
        value: 204e9,
        unit: 'B/s',
        source: 'Atlas 300I Duo 408 GB/s, halved; secondary sources',
        confidence: 'secondary',
      },
      power: {
        value: 75,
        unit: 'W',
        source: 'Atlas 300I Duo 150 W, halved; secondary sources',
        confidence: 'secondary',
      },
    },
    notes: ['Per-chip figures are the dual-chip card figures halved.'],
  },
  'nvidia-t4': {
    id: 'nvidia-t4',
    name: 'NVIDIA T4 (TensorRT-like)',
    description:
      'TensorRT PTQ scheme: int8 symmetric per-tensor activations, int8 symmetric per-channel weights, requantisation in fp32; all weighted layers quantized; float layers in fp32.',
    activations: { type: 'int8', symmetric: true, granularity: 'per-tensor' },
    weights: int8PerChannelSym,
    bias: 'int32',
    quant: 'fp32',
    dequant: 'fp32',
    floatPath: 'fp32',
    quantizedOps: WEIGHTED_OPS,
    fusedRelu: false,
    executor: 'lowered-emulator',
    peak: {
      int8Ops: {
        value: 130e12,
        unit: 'ops/s',
        source: 'NVIDIA T4 datasheet (130 TOPS INT8)',
        confidence: 'vendor',
      },
      floatOps: {
        value: 8.1e12,
        unit: 'flop/s',
        source: 'NVIDIA T4 datasheet (8.1 TFLOPS FP32)',
        confidence: 'vendor',
      },
      bandwidth: {
        value: 320e9,
        unit: 'B/s',
        source: 'NVIDIA T4 datasheet (320 GB/s)',
        confidence: 'vendor',
      },
      power: { value: 70, unit: 'W', source: 'NVIDIA T4 datasheet (70 W)', confidence: 'vendor' },
    },
    notes: [
      'Float baseline is fp32 (the datasheet FP16 tensor-core figure, 65 TFLOPS, is not the baseline used).',
    ],
  },
  snapdragon: {
    id: 'snapdragon',
    name: 'Qualcomm Snapdragon (SNPE/QNN-like)',
    description:
      'SNPE scheme: uint8 asymmetric per-tensor activations and weights, int32 bias, fp32 requantisation; float layers in fp32.',
    activations: { type: 'uint8', symmetric: false, granularity: 'per-tensor' },
    weights: { type: 'uint8', symmetric: false, granularity: 'per-tensor' },
    bias: 'int32',
    quant: 'fp32',
    dequant: 'fp32',
    floatPath: 'fp32',
    quantizedOps: WEIGHTED_OPS,
    fusedRelu: false,
    executor: 'lowered-emulator',
    peak: {
      int8Ops: {
        value: 26e12,
        unit: 'ops/s',
        source:
          'assumption: Hexagon NPU of a Snapdragon 8-series class part, order of 26 TOPS INT8',
        confidence: 'assumption',
      },
      floatOps: {
        value: 2e12,
        unit: 'flop/s',
        source: 'assumption: GPU fp32 of the same class, order of 2 TFLOPS',
        confidence: 'assumption',
      },
      bandwidth: {
        value: 51.2e9,
        unit: 'B/s',
        source: 'assumption: LPDDR5 64-bit at 6400 MT/s (51.2 GB/s)',
        confidence: 'assumption',
      },
      power: {
        value: 5,
        unit: 'W',
        source: 'assumption: mobile SoC sustained budget of about 5 W',
        confidence: 'assumption',
      },
    },
    notes: [
      'All Snapdragon figures are stated assumptions: no single vendor source gives them together.',
    ],
  },
  'cpu-wasm': {
    id: 'cpu-wasm',
    name: 'CPU via onnxruntime-web (QDQ)',
    description:
      "ONNX Runtime QDQ (U8S8): uint8 asymmetric per-tensor activations, int8 symmetric per-channel weights, executed by onnxruntime-web's own integer kernels; float layers in fp32.",
    activations: { type: 'uint8', symmetric: false, granularity: 'per-tensor' },
    weights: int8PerChannelSym,
    bias: 'int32',
    quant: 'fp32',
    dequant: 'fp32',
    floatPath: 'fp32',
    quantizedOps: WEIGHTED_OPS,
    fusedRelu: false,
    executor: 'ort-qdq',
    peak: {
      int8Ops: {
        value: 0,
        unit: 'ops/s',
        source: 'measured by the CLI on the machine that runs it, never modelled',
        confidence: 'assumption',
      },
      floatOps: {
        value: 0,
        unit: 'flop/s',
        source: 'measured by the CLI on the machine that runs it, never modelled',
        confidence: 'assumption',
      },
      bandwidth: {
        value: 0,
        unit: 'B/s',
        source: 'measured, not modelled',
        confidence: 'assumption',
      },
      power: { value: 0, unit: 'W', source: 'not measured', confidence: 'assumption' },
    },
    notes: ['The one target that is real and timed: its speed-up is measured, not modelled.'],
  },
};

/**
 * W4A8 variant of an Ascend target: int4 symmetric per-channel weights (Ascend's int4 type,
 * AscendQuant dst_type 29, see /work/shared/docs/ascend-int8.md), int8 activations, the base
 * target's quantize/accumulate/dequantize arithmetic. The int4 weights sit in int8 containers
 * in the emulation and QDQ models (values in [-7, 7]). Peak figures are the base target's INT8
 * figures: no public per-chip int4 figure is used, so the performance model does not credit
 * int4 with any speed-up.
 */
function w4a8(base: Target, id: W4A8TargetId): Target {
  return {
    ...base,
    id,
    name: `${base.name} W4A8`,
    description: `${base.name} with int4 weights: int4 symmetric per-channel weights ([-7, 7], held in int8 containers), activations, bias and arithmetic as ${base.id}.`,
    weights: { type: 'int4', symmetric: true, granularity: 'per-channel' },
    base: base.id as BaseTargetId,
    notes: [
      ...base.notes,
      'W4A8: peak figures are the INT8 ones (int4 gets no modelled speed-up); weights are stored one int4 value per int8 element (not packed).',
    ],
  };
}

/**
 * Dynamic quantization on onnxruntime-web, the scheme of ONNX Runtime's `quantize_dynamic`:
 * each quantized layer's input is quantized when the model runs, from that input's own range
 * (DynamicQuantizeLinear: uint8, scale = (max(0, max x) - min(0, min x)) / 255, zero point
 * round(-min(0, min x) / scale), in fp32), multiplied in integers (MatMulInteger, ConvInteger:
 * exact int32), then dequantized in fp32 (acc * (scale_x * scale_w)) and the float bias added.
 * Weights are int8 symmetric per-channel as on cpu-wasm. Each sample is quantized on its own
 * (the exported layers scan the batch), so a sample's result does not depend on the batch it
 * runs in: what a batch-1 deployment computes. Only real and timed, like cpu-wasm: there is
 * no dynamic scheme on the Ascend, T4 or Snapdragon toolchains this project models (AMCT,
 * TensorRT INT8 and SNPE/QNN take calibrated activation scales).
 */
const CPU_WASM_DYNAMIC: Target = {
  ...INT8_TARGETS['cpu-wasm'],
  id: 'cpu-wasm-dynamic',
  name: 'CPU via onnxruntime-web (dynamic)',
  description:
    "ONNX Runtime dynamic quantization (quantize_dynamic): uint8 asymmetric per-tensor activations quantized per input at run time (DynamicQuantizeLinear), int8 symmetric per-channel weights, MatMulInteger / ConvInteger with fp32 dequantization and float bias, executed by onnxruntime-web's own kernels; float layers in fp32.",
  activations: { type: 'uint8', symmetric: false, granularity: 'per-tensor', dynamic: true },
  bias: 'float',
  notes: [
    'Activation scales are computed per sample at run time: calibration chooses none (its samples still drive bias correction and the loss estimate).',
    'Real and timed like cpu-wasm: its speed-up is measured, not modelled.',
  ],
};

/**
 * The targets, in the order reports show them: the INT8 targets, the W4A8 variants, then the
 * dynamic variant.
 */
export const TARGETS: Readonly<Record<TargetId, Target>> = {
  ...INT8_TARGETS,
  'ascend310-w4a8': w4a8(INT8_TARGETS.ascend310, 'ascend310-w4a8'),
  'ascend310p-w4a8': w4a8(INT8_TARGETS.ascend310p, 'ascend310p-w4a8'),
  'cpu-wasm-dynamic': CPU_WASM_DYNAMIC,
};

/** Looks a target up by id; throws a RangeError listing the known ids. */
export function getTarget(id: string): Target {
  const t = (TARGETS as Record<string, Target>)[id];
  if (!t)
    throw new RangeError(`unknown target '${id}' (known: ${Object.keys(TARGETS).join(', ')})`);
  return t;
}

/** The target a run uses when none is named: the product's first chip. */
export const DEFAULT_TARGET: TargetId = 'ascend310';

/** A target id without case and separators: 'Ascend_310P' and 'ascend310p' both give 'ascend310p'. */
function looseName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/**
 * The target id a command-line spelling names: the id itself, or the id written with other
 * case or separators (`ascend_310`, `Ascend-310P`, `nvidia_t4`, as the seed's user journey
 * writes them). Undefined when it names none. Recipes keep the exact ids.
 */
export function resolveTargetName(name: string): TargetId | undefined {
  if (Object.hasOwn(TARGETS, name)) return name as TargetId;
  const loose = looseName(name);
  return (Object.keys(TARGETS) as TargetId[]).find((id) => looseName(id) === loose);
}

/** The targets that quantize activations at run time (where a dynamically quantized file goes). */
export const DYNAMIC_TARGET_IDS: readonly TargetId[] = (Object.keys(TARGETS) as TargetId[]).filter(
  (t) => isDynamic(TARGETS[t]),
);
