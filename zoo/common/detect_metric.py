"""COCO-style detection mAP: the Python twin of core/metrics/detection.ts (bit-identical).

Definitions (both twins; every step in IEEE double, sums taken sequentially):
  * A box is (x1, y1, x2, y2) in continuous pixel coordinates: width = x2 - x1 (no +1, as
    COCO's bbox IoU does). IoU = inter / (areaA + areaB - inter) with inter = iw * ih when
    iw = min(x2) - max(x1) > 0 and ih > 0, else 0; a non-positive union gives IoU 0.
  * Per (image, class), detections in descending score (ties: earlier detection first) are
    matched greedily, as COCO's evaluateImg: each takes the still-unmatched ground truth of
    highest IoU >= min(t, 1 - 1e-10) (ties: the later ground truth, as COCO's loop does).
  * Per class, all detections are ranked by descending score, ties by image index, then by
    their rank within the image. precision = tp / (tp + fp), recall = tp / nGT; precision is
    made non-increasing from the right; AP = sum over r = i / 100, i = 0..100, of the precision
    at the first rank whose recall >= r (0 when none) divided by 101.
  * mAP = mean AP over classes that have at least one ground-truth box (classes with
    detections only are ignored, as COCO ignores them).
Detections and ground truth are dicts with keys cls, x1, y1, x2, y2 (+ score for detections).
"""

RECALL_POINTS = 101


def iou(a, b):
    iw = min(a["x2"], b["x2"]) - max(a["x1"], b["x1"])
    ih = min(a["y2"], b["y2"]) - max(a["y1"], b["y1"])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a["x2"] - a["x1"]) * (a["y2"] - a["y1"]) + (b["x2"] - b["x1"]) * (b["y2"] - b["y1"]) - inter
    return inter / union if union > 0 else 0.0


def average_precision(detections, truths, cls, threshold):
    """AP of one class at one IoU threshold, or None when the class has no ground truth."""
    records = []
    n_gt = 0
    best0 = min(threshold, 1 - 1e-10)
    for image, (dets, gts) in enumerate(zip(detections, truths)):
        g = [t for t in gts if t["cls"] == cls]
        n_gt += len(g)
        d = [x for x in dets if x["cls"] == cls]
        order = sorted(range(len(d)), key=lambda k: (-d[k]["score"], k))
        used = [False] * len(g)
        for rank, k in enumerate(order):
            best = best0
            m = -1
            for j, t in enumerate(g):
                if used[j]:
                    continue
                o = iou(d[k], t)
                if o < best:
                    continue
                best = o
                m = j
            if m >= 0:
                used[m] = True
            records.append((d[k]["score"], image, rank, m >= 0))
    if n_gt == 0:
        return None
    records.sort(key=lambda r: (-r[0], r[1], r[2]))
    tp = fp = 0
    recall = []
    precision = []
    for rec in records:
        if rec[3]:
            tp += 1
        else:
            fp += 1
        recall.append(tp / n_gt)
        precision.append(tp / (tp + fp))
    for k in range(len(precision) - 1, 0, -1):
        if precision[k] > precision[k - 1]:
            precision[k - 1] = precision[k]
    total = 0.0
    j = 0
    for i in range(RECALL_POINTS):
        r = i / 100
        while j < len(recall) and recall[j] < r:
            j += 1
        if j < len(recall):
            total += precision[j]
    return total / RECALL_POINTS


def mean_average_precision(detections, truths, threshold, classes=10):
    total = 0.0
    count = 0
    for c in range(classes):
        ap = average_precision(detections, truths, c, threshold)
        if ap is not None:
            total += ap
            count += 1
    return total / count if count else 0.0


def detection_metrics(detections, truths, classes=10):
    """{'mAP50', 'mAP75'} over per-image lists of detections and ground truth."""
    return {
        "mAP50": mean_average_precision(detections, truths, 0.5, classes),
        "mAP75": mean_average_precision(detections, truths, 0.75, classes),
    }
