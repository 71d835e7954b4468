/** How a QAT model's recipe differs from the recipe of the model it was trained from. */

/**
 * The recipe a QAT model is scored with: the submitted recipe without bias correction, and with
 * its weights rounded to nearest (see below). QAT trains the biases under the simulated integer
 * arithmetic, so they already carry the correction of the quantization's mean shift; bias
 * correction (which pulls each layer's INT8 output mean back to the FP32 model's) would undo
 * that against an FP32 path the QAT weights no longer aim at. Measured on a W4A8 fmnist-resnet QAT model: top-1 0.8244 with bias correction,
 * 0.8958 without (docs/QAT.md).
 */
export function qatScoringRecipe<
  R extends { format: { biasCorrection: boolean | 'auto'; weightRounding?: string | undefined } },
>(recipe: R): R {
  // Nor GPTQ rounding: QAT trained the weights for rounding to nearest, against the simulated
  // INT8 model; GPTQ would re-round them towards the float layer they no longer aim at.
  const { weightRounding: _, ...format } = recipe.format;
  return { ...recipe, format: { ...format, biasCorrection: false } };
}

/** The recipe of the PTQ comparison run: the same recipe on the task's own model. */
export function withoutQat<R extends { qat?: unknown }>(recipe: R): Omit<R, 'qat'> {
  const { qat: _qat, ...rest } = recipe;
  return rest;
}
