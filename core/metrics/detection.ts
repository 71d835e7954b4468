/**
 * COCO-style detection mAP, the bit-identical twin of zoo/common/detect_metric.py.
 *
 * - Boxes are [x1, y1, x2, y2] in continuous pixel coordinates: width = x2 - x1 (no +1, as
 *   COCO's bbox IoU). IoU = inter / (areaA + areaB - inter), 0 when the boxes do not overlap
 *   or the union is not positive.
 * - Per (image, class), detections in descending score (ties: earlier detection first) are
 *   matched greedily as COCO's evaluateImg does: each takes the still-unmatched ground truth of
 *   highest IoU >= min(t, 1 - 1e-10) (ties: the later ground truth).
 * - Per class, all detections are ranked by descending score, ties by image index, then by
 *   rank within the image; precision is made non-increasing from the right; AP is the mean,
 *   over the 101 recall points r = i / 100, of the precision at the first rank whose recall
 *   >= r (0 when none).
 * - mAP is the mean AP over classes with at least one ground-truth box.
 * Every step is IEEE double arithmetic in the same order as the Python twin; sums are taken
 * sequentially.
 */

/** An axis-aligned box in pixels, x2/y2 exclusive (continuous coordinates). */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** A ground-truth object. */
export interface GroundTruth extends Box {
  cls: number;
}

/** A scored detection. */
export interface Detection extends GroundTruth {
  score: number;
}

const RECALL_POINTS = 101;

/** Continuous-coordinate IoU of two boxes (COCO's bbox IoU, no +1). */
export function boxIou(a: Box, b: Box): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

interface MatchRecord {
  score: number;
  image: number;
  rank: number;
  tp: boolean;
}

/**
 * AP of one class at one IoU threshold over images (detections[i] pairs with truths[i]),
 * or `null` when the class has no ground truth.
 */
export function averagePrecision(
  detections: readonly (readonly Detection[])[],
  truths: readonly (readonly GroundTruth[])[],
  cls: number,
  threshold: number,
): number | null {
  if (detections.length !== truths.length) {
    throw new RangeError(
      `averagePrecision: ${detections.length} detection lists for ${truths.length} images`,
    );
  }
  const records: MatchRecord[] = [];
  let nGt = 0;
  const best0 = Math.min(threshold, 1 - 1e-10);
  for (let image = 0; image < truths.length; image++) {
    const g = truths[image]!.filter((t) => t.cls === cls);
    nGt += g.length;
    const d = detections[image]!.filter((x) => x.cls === cls);
    const order = d.map((_, k) => k).sort((a, b) => d[b]!.score - d[a]!.score || a - b);
    const used = new Array<boolean>(g.length).fill(false);
    order.forEach((k, rank) => {
      let best = best0;
      let m = -1;
      for (let j = 0; j < g.length; j++) {
        if (used[j]) continue;
        const o = boxIou(d[k]!, g[j]!);
        if (o < best) continue;
        best = o;
        m = j;
      }
      if (m >= 0) used[m] = true;
      records.push({ score: d[k]!.score, image, rank, tp: m >= 0 });
    });
  }
  if (nGt === 0) return null;
  records.sort((a, b) => b.score - a.score || a.image - b.image || a.rank - b.rank);
  const recall: number[] = [];
  const precision: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const r of records) {
    if (r.tp) tp++;
    else fp++;
    recall.push(tp / nGt);
    precision.push(tp / (tp + fp));
  }
  for (let k = precision.length - 1; k > 0; k--) {
    if (precision[k]! > precision[k - 1]!) precision[k - 1] = precision[k]!;
  }
  let total = 0;
  let j = 0;
  for (let i = 0; i < RECALL_POINTS; i++) {
    const r = i / 100;
    while (j < recall.length && recall[j]! < r) j++;
    if (j < recall.length) total += precision[j]!;
  }
  return total / RECALL_POINTS;
}

/** Mean AP over the classes 0..classes-1 that have ground truth (0 when none has). */
export function meanAveragePrecision(
  detections: readonly (readonly Detection[])[],
  truths: readonly (readonly GroundTruth[])[],
  threshold: number,
  classes: number,
): number {
  let total = 0;
  let count = 0;
  for (let c = 0; c < classes; c++) {
    const ap = averagePrecision(detections, truths, c, threshold);
    if (ap !== null) {
      total += ap;
      count++;
    }
  }
  return count > 0 ? total / count : 0;
}

/** `{ mAP50, mAP75 }`: COCO-style mAP at IoU 0.5 and 0.75. */
export function detectionMetrics(
  detections: readonly (readonly Detection[])[],
  truths: readonly (readonly GroundTruth[])[],
  classes = 10,
): { mAP50: number; mAP75: number } {
  return {
    mAP50: meanAveragePrecision(detections, truths, 0.5, classes),
    mAP75: meanAveragePrecision(detections, truths, 0.75, classes),
  };
}
