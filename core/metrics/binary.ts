/**
 * Binary classification metrics with class 1 as the positive class (e.g. spam). One definition,
 * shared by tasks, shards and reports; the training scripts carry a Python twin.
 */

/** Confusion counts for the positive class 1. */
export interface BinaryCounts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/** The reported binary metrics; a 0/0 ratio counts as 0. */
export interface BinaryMetrics {
  /** F1 of the positive class: 2TP / (2TP + FP + FN). */
  f1_spam: number;
  /** (TP + TN) / N. */
  accuracy: number;
  /** TP / (TP + FP). */
  precision: number;
  /** TP / (TP + FN). */
  recall: number;
}

/**
 * Index of the largest of `row[0..n)`; ties go to the lower index (as torch.argmax / numpy).
 * The first NaN wins, as in torch.argmax and numpy.argmax.
 * @example argmax([0.5, 0.5]) // 0
 */
export function argmax(row: ArrayLike<number>, offset = 0, n = row.length - offset): number {
  if (n <= 0) throw new RangeError('argmax: empty row');
  let best = 0;
  let bestValue = row[offset]!;
  for (let i = 1; i < n; i++) {
    const v = row[offset + i]!;
    if (!Number.isNaN(bestValue) && (v > bestValue || Number.isNaN(v))) {
      best = i;
      bestValue = v;
    }
  }
  return best;
}

/** Counts TP/FP/FN/TN of predictions against labels (both 0/1, same length). */
export function binaryCounts(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
): BinaryCounts {
  if (predictions.length !== labels.length) {
    throw new RangeError(
      `binaryCounts: ${predictions.length} predictions for ${labels.length} labels`,
    );
  }
  const c: BinaryCounts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (let i = 0; i < labels.length; i++) {
    const p = predictions[i]!;
    const y = labels[i]!;
    if ((p !== 0 && p !== 1) || (y !== 0 && y !== 1)) {
      throw new RangeError(
        `binaryCounts: sample ${i} has prediction ${p}, label ${y}; want 0 or 1`,
      );
    }
    if (p === 1) {
      if (y === 1) c.tp++;
      else c.fp++;
    } else if (y === 1) c.fn++;
    else c.tn++;
  }
  return c;
}

const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);

/** F1 (positive class), accuracy, precision and recall from confusion counts. */
export function binaryMetricsFromCounts(c: BinaryCounts): BinaryMetrics {
  const n = c.tp + c.fp + c.fn + c.tn;
  return {
    f1_spam: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    accuracy: ratio(c.tp + c.tn, n),
    precision: ratio(c.tp, c.tp + c.fp),
    recall: ratio(c.tp, c.tp + c.fn),
  };
}

/**
 * Scores 0/1 predictions against 0/1 labels.
 * @example binaryMetrics([1, 1, 0, 0], [1, 0, 1, 0]) // all four are 0.5
 */
export function binaryMetrics(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
): BinaryMetrics {
  return binaryMetricsFromCounts(binaryCounts(predictions, labels));
}
