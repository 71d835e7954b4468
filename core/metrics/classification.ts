/**
 * Classification metrics: pure functions over plain arrays, shared by every classification task.
 */

/**
 * Argmax of each row of a row-major `[rows, cols]` matrix. Ties go to the lowest index and a NaN
 * counts as the maximum (first NaN wins), both as `torch.argmax` does, so predictions computed
 * here match the ones recorded by the zoo's training scripts.
 * @example argmaxRows(new Float32Array([1, 3, 3, 0, 0, 0]), 2, 3) // [1, 0]
 */
export function argmaxRows(values: ArrayLike<number>, rows: number, cols: number): number[] {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 1) {
    throw new RangeError(`argmaxRows: bad shape [${rows}, ${cols}]`);
  }
  if (values.length !== rows * cols) {
    throw new RangeError(
      `argmaxRows: [${rows}, ${cols}] needs ${rows * cols} values, got ${values.length}`,
    );
  }
  const out = new Array<number>(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let best = 0;
    let bestValue = values[base]!;
    if (!Number.isNaN(bestValue)) {
      for (let c = 1; c < cols; c++) {
        const v = values[base + c]!;
        if (Number.isNaN(v)) {
          best = c;
          break;
        }
        if (v > bestValue) {
          best = c;
          bestValue = v;
        }
      }
    }
    out[r] = best;
  }
  return out;
}

function checkSameLength(predictions: ArrayLike<number>, labels: ArrayLike<number>): void {
  if (predictions.length !== labels.length) {
    throw new RangeError(
      `${predictions.length} predictions for ${labels.length} labels: lengths must match`,
    );
  }
}

/** Number of predictions equal to their label. */
export function correctCount(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkSameLength(predictions, labels);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct;
}

/**
 * Top-1 accuracy: correct / total, as a fraction (NaN for zero samples).
 * @example top1Accuracy([0, 1, 2], [0, 1, 1]) // 2 / 3
 */
export function top1Accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  const correct = correctCount(predictions, labels);
  return labels.length === 0 ? Number.NaN : correct / labels.length;
}

/**
 * Confusion counts: `counts[label][prediction]` over `classes` classes.
 * @example confusionCounts([0, 1], [0, 0], 2) // [[1, 1], [0, 0]]
 */
export function confusionCounts(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): number[][] {
  checkSameLength(predictions, labels);
  const counts = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    const prediction = predictions[i]!;
    const row = counts[label];
    if (!row || !Number.isInteger(prediction) || prediction < 0 || prediction >= classes) {
      throw new RangeError(
        `confusionCounts: sample ${i} has label ${label} / prediction ${prediction}, want 0..${classes - 1}`,
      );
    }
    row[prediction]!++;
  }
  return counts;
}
