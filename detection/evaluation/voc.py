"""PASCAL VOC detection evaluation (devkit rules), vectorised with numpy.

The rules are those of the official VOC devkit (``VOCevaldet.m``) and of
py-faster-rcnn's ``voc_eval.py``, which detectron2's PascalVOCDetectionEvaluator
copies:

* Per class, the detections of all images are ranked by descending score.
* Each detection is assigned the ground truth (GT) of the same class in its
  image with the highest IoU (first one on an exact tie), computed with the
  VOC "+1 pixel" convention (``w = x2 - x1 + 1``).  The assignment does not
  depend on which GTs are already detected.
* If that IoU passes the threshold: a *difficult* GT makes the detection
  ignored (neither TP nor FP); otherwise the first detection (in rank order)
  assigned to that GT is a TP and every later one a duplicate FP.  A detection
  whose IoU does not pass the threshold is an FP.
* ``npos`` is the number of non-difficult GTs of the class,
  ``recall = cumsum(tp) / npos`` and
  ``precision = cumsum(tp) / max(cumsum(tp) + cumsum(fp), eps)``.

Because the assignment is fixed per detection, "TP = first passing,
non-difficult detection of each GT in global rank order", which we compute
with a sort and ``np.unique`` instead of a Python loop over detections.

Box conventions: the evaluation functions take VOC 1-based *pixel* boxes
(inclusive corners).  Detector outputs in continuous 0-based coordinates are
converted with :func:`to_voc_boxes` (the detectron2 convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

_METRICS = ("area", "11point")
_EPS = np.finfo(np.float64).eps
# Same thresholds as detectron2's PascalVOCDetectionEvaluator (range(50, 100, 5)).
_COCO_STYLE_THRESHOLDS = tuple(t / 100.0 for t in range(50, 100, 5))


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` (torch tensor, numpy array or sequence) as a numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_boxes(x: Any, what: str) -> np.ndarray:
    """Return ``x`` as a float64 (N, 4) array; an empty input gives (0, 4)."""
    boxes = _to_numpy(x).astype(np.float64, copy=False)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what}: boxes must have shape (N, 4), got {boxes.shape}")
    return boxes


def _as_vector(x: Any, n: int, dtype: Any, what: str) -> np.ndarray:
    """Return ``x`` as a 1-d array of length ``n`` (scores, labels, flags)."""
    arr = _to_numpy(x).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{what}: expected {n} entries (one per box), got {arr.shape[0]}")
    if dtype is np.int64 and arr.dtype.kind == "f":
        # Integral floats are accepted; anything else is a caller bug.
        if not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise ValueError(f"{what}: labels must be integers, got {arr}")
    return arr.astype(dtype, copy=False)


# --------------------------------------------------------------------------
# Public helpers: AP from a PR curve, box conversions
# --------------------------------------------------------------------------
def voc_ap(recall: Any, precision: Any, metric: str = "area") -> float:
    """Average precision from a recall/precision curve, as py-faster-rcnn's ``voc_ap``.

    ``metric="11point"`` (VOC2007): mean over ``t in np.arange(0, 1.1, 0.1)`` of
    the max precision at ``recall >= t`` (0 when no point reaches ``t``).  The
    thresholds are generated exactly like py-faster-rcnn / detectron2, so e.g.
    the 4th one is ``0.30000000000000004`` and a recall of exactly 0.3 does not
    reach it.

    ``metric="area"`` (VOC2010+): area under the precision envelope (precision
    made monotonically decreasing), summed at the points where recall changes.
    Empty curves give 0.0.
    """
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError(f"recall and precision differ in length: {rec.shape} vs {prec.shape}")
    if metric == "11point":
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            reached = rec >= t
            ap += (prec[reached].max() if reached.any() else 0.0) / 11.0
        return float(ap)
    if metric != "area":
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    # Envelope: running max from the right (vectorised form of the devkit loop).
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def to_voc_boxes(boxes: Any) -> np.ndarray:
    """Continuous 0-based ``x1, y1, x2, y2`` -> VOC 1-based pixel boxes.

    ``(x1 + 1, y1 + 1, x2, y2)``, the detectron2 convention.  Accepts a torch
    tensor or array-like of shape (N, 4); returns a float64 numpy array.
    """
    out = _as_boxes(boxes, "to_voc_boxes").copy()
    out[:, :2] += 1.0
    return out


def from_voc_boxes(boxes: Any) -> np.ndarray:
    """Inverse of :func:`to_voc_boxes`: ``(x1 - 1, y1 - 1, x2, y2)``, float64 numpy."""
    out = _as_boxes(boxes, "from_voc_boxes").copy()
    out[:, :2] -= 1.0
    return out


# --------------------------------------------------------------------------
# Packing per-image inputs into flat arrays
# --------------------------------------------------------------------------
@dataclass
class _Packed:
    """All boxes of one kind (GT or detections) concatenated in image order."""

    boxes: np.ndarray  # (K, 4) float64, VOC 1-based pixels
    labels: np.ndarray  # (K,) int64 in 1..C
    image: np.ndarray  # (K,) int64 position of the image in ground_truths order
    extra: np.ndarray  # (K,) scores (detections) or difficult flags (GTs)
    offsets: np.ndarray  # (num_images + 1,) start of each image's block
    image_ids: list  # image ids in ground_truths order


def _pack(per_image: Sequence[tuple], image_ids: list) -> _Packed:
    """Concatenate ``(boxes, labels, extra)`` triples, one per image."""
    counts = np.array([len(b) for b, _, _ in per_image], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    if per_image:
        boxes = np.concatenate([b for b, _, _ in per_image])
        labels = np.concatenate([lab for _, lab, _ in per_image])
        extra = np.concatenate([e for _, _, e in per_image])
    else:
        boxes, labels, extra = np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)
    image = np.repeat(np.arange(len(per_image), dtype=np.int64), counts)
    return _Packed(boxes, labels, image, extra, offsets, image_ids)


def _locate(packed: _Packed, flat_index: int) -> tuple:
    """Map a flat index back to ``(image_id, index within that image)``."""
    pos = int(np.searchsorted(packed.offsets, flat_index, side="right") - 1)
    return packed.image_ids[pos], int(flat_index - packed.offsets[pos])


def _validate(packed: _Packed, num_classes: int, kind: str) -> None:
    """Reject non-finite / inverted boxes and out-of-range labels (vectorised)."""
    b = packed.boxes
    checks = (
        (~np.isfinite(b).all(axis=1), "has a NaN or infinite coordinate"),
        ((b[:, 2] < b[:, 0] - 1) | (b[:, 3] < b[:, 1] - 1), "is inverted (x2 < x1 - 1 or y2 < y1 - 1)"),
    )
    for bad, reason in checks:
        if bad.any():
            i = int(np.argmax(bad))
            image_id, j = _locate(packed, i)
            raise ValueError(f"{kind} for image {image_id!r}, index {j}: box {b[i].tolist()} {reason}")
    bad_label = (packed.labels < 1) | (packed.labels > num_classes)
    if bad_label.any():
        i = int(np.argmax(bad_label))
        image_id, j = _locate(packed, i)
        raise ValueError(
            f"{kind} for image {image_id!r}, index {j}: label {int(packed.labels[i])} "
            f"is outside 1..{num_classes}"
        )


def _pack_ground_truths(ground_truths: Mapping, num_classes: int) -> _Packed:
    image_ids = list(ground_truths)
    per_image = []
    for image_id in image_ids:
        gt = ground_truths[image_id]
        what = f"ground truth for image {image_id!r}"
        boxes = _as_boxes(gt["boxes"], what)
        labels = _as_vector(gt["labels"], len(boxes), np.int64, what)
        difficult = gt.get("difficult")
        if difficult is None:
            difficult = np.zeros(len(boxes), dtype=bool)
        per_image.append((boxes, labels, _as_vector(difficult, len(boxes), bool, what)))
    packed = _pack(per_image, image_ids)
    _validate(packed, num_classes, "ground truth")
    return packed


def _pack_detections(detections: Mapping, image_ids: list, num_classes: int) -> _Packed:
    known = set(image_ids)
    unknown = [i for i in detections if i not in known]
    if unknown:
        raise ValueError(f"detections for image {unknown[0]!r}, which is not in ground_truths")
    per_image = []
    for image_id in image_ids:  # ground_truths order defines the tie-break order
        det = detections.get(image_id)
        if det is None:
            per_image.append((np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)))
            continue
        what = f"detections for image {image_id!r}"
        boxes = _as_boxes(det["boxes"], what)
        labels = _as_vector(det["labels"], len(boxes), np.int64, what)
        per_image.append((boxes, labels, _as_vector(det["scores"], len(boxes), np.float64, what)))
    packed = _pack(per_image, image_ids)
    _validate(packed, num_classes, "detections")
    if np.isnan(packed.extra).any():
        image_id, j = _locate(packed, int(np.argmax(np.isnan(packed.extra))))
        raise ValueError(f"detections for image {image_id!r}, index {j}: score is NaN")
    return packed


# --------------------------------------------------------------------------
# Matching (threshold independent) and scoring (per threshold)
# --------------------------------------------------------------------------
def _paired_voc_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of boxes ``a[k]`` and ``b[k]`` with the +1 pixel convention.

    Same arithmetic as py-faster-rcnn so that results agree to the last bit
    (this matters for IoUs exactly at the threshold).  Two empty boxes have a
    zero union; their IoU is defined as 0 instead of NaN.
    """
    iw = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1.0, 0.0)
    inter = iw * ih
    union = (
        (a[:, 2] - a[:, 0] + 1.0) * (a[:, 3] - a[:, 1] + 1.0)
        + (b[:, 2] - b[:, 0] + 1.0) * (b[:, 3] - b[:, 1] + 1.0)
        - inter
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass
class _ClassMatches:
    """Per-class detections in rank order with their best GT (threshold free)."""

    ovmax: np.ndarray  # (D,) best IoU, -inf when the image has no GT of the class
    jmax: np.ndarray  # (D,) index into this class's GTs, -1 when none
    gt_difficult: np.ndarray  # (G,) difficult flags of this class's GTs
    npos: int  # number of non-difficult GTs


def _match_class(dets: _Packed, gts: _Packed, label: int) -> _ClassMatches:
    """Assign every detection of ``label`` its highest-IoU GT in the same image.

    All (detection, GT-in-same-image) pairs are built at once: GTs are stored
    in image order, so each detection's candidates are a contiguous segment
    found with ``searchsorted``.
    """
    g_idx = np.flatnonzero(gts.labels == label)
    gt_image = gts.image[g_idx]  # non-decreasing
    gt_difficult = gts.extra[g_idx].astype(bool)

    d_idx = np.flatnonzero(dets.labels == label)  # image order, then input order
    # Each detection's GT segment; searched while detections are still in image
    # order (sorted queries are much faster), then permuted along with them.
    det_image = dets.image[d_idx]
    start = np.searchsorted(gt_image, det_image, side="left")
    count = np.searchsorted(gt_image, det_image, side="right") - start
    # Stable sort: equal scores keep image order (ground_truths order), then input order.
    rank = np.argsort(-dets.extra[d_idx], kind="stable")
    d_idx, start, count = d_idx[rank], start[rank], count[rank]
    pair_start = np.cumsum(count) - count  # first pair of each detection
    pair_det = np.repeat(np.arange(len(d_idx)), count)
    pair_gt = start[pair_det] + np.arange(len(pair_det)) - pair_start[pair_det]
    iou = _paired_voc_iou(dets.boxes[d_idx[pair_det]], gts.boxes[g_idx[pair_gt]])

    ovmax = np.full(len(d_idx), -np.inf)
    jmax = np.full(len(d_idx), -1, dtype=np.int64)
    has_gt = count > 0
    if has_gt.any():
        ovmax[has_gt] = np.maximum.reduceat(iou, pair_start[has_gt])
        # argmax = first pair (lowest GT index) reaching the max, like np.argmax.
        at_max = np.flatnonzero(iou == ovmax[pair_det])
        first = np.concatenate(([True], pair_det[at_max][1:] != pair_det[at_max][:-1]))
        jmax[pair_det[at_max[first]]] = pair_gt[at_max[first]]
    npos = int(np.count_nonzero(~gt_difficult))
    return _ClassMatches(ovmax, jmax, gt_difficult, npos)


def _score_class(m: _ClassMatches, threshold: float, inclusive: bool) -> tuple:
    """TP/FP labelling at one IoU threshold -> ``(recall, precision)`` arrays."""
    passes = m.ovmax >= threshold if inclusive else m.ovmax > threshold
    # A passing detection always has a GT (jmax >= 0); one on a difficult GT is ignored.
    ignored = np.zeros(len(passes), dtype=bool)
    ignored[passes] = m.gt_difficult[m.jmax[passes]]
    candidates = np.flatnonzero(passes & ~ignored)
    # The first candidate of each GT in rank order is the TP; later ones are duplicates.
    _, first = np.unique(m.jmax[candidates], return_index=True)
    tp = np.zeros(len(m.ovmax))
    tp[candidates[first]] = 1.0
    fp = 1.0 - tp - ignored.astype(np.float64)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    # Recall is undefined without positives (npos == 0); such classes are reported as NaN.
    recall = tp / m.npos if m.npos > 0 else np.full(len(tp), np.nan)
    precision = tp / np.maximum(tp + fp, _EPS)
    return recall, precision


def _prepare(detections, ground_truths, class_names, metric) -> tuple:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    class_names = list(class_names)
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be unique, got {class_names}")
    gts = _pack_ground_truths(ground_truths, len(class_names))
    dets = _pack_detections(detections, gts.image_ids, len(class_names))
    matches = [_match_class(dets, gts, label) for label in range(1, len(class_names) + 1)]
    return class_names, matches


def _summarise(class_names, matches, threshold, metric, inclusive) -> dict:
    per_class, curves = {}, {}
    for name, m in zip(class_names, matches):
        recall, precision = _score_class(m, threshold, inclusive)
        curves[name] = (recall, precision)
        per_class[name] = voc_ap(recall, precision, metric) if m.npos > 0 else float("nan")
    valid = [per_class[n] for n, m in zip(class_names, matches) if m.npos > 0]
    return {
        "metric": metric,
        "iou_threshold": threshold,
        "per_class": per_class,
        "mAP": float(np.mean(valid)) if valid else float("nan"),
        "precision_recall": curves,
    }


# --------------------------------------------------------------------------
# Public evaluation entry points
# --------------------------------------------------------------------------
def evaluate_voc(
    detections: Mapping,
    ground_truths: Mapping,
    class_names: Sequence[str],
    iou_threshold: float = 0.5,
    metric: str = "area",
    inclusive_threshold: bool = True,
) -> dict:
    """VOC mean average precision with the devkit rules (see module docstring).

    Args:
        detections: ``image_id -> dict(boxes=(M, 4), scores=(M,), labels=(M,))``
            with VOC 1-based pixel boxes (see :func:`to_voc_boxes`) and labels in
            ``1..C``.  Torch tensors or arrays.  Images absent here have no
            detections; an image id that is not in ``ground_truths`` raises
            ``ValueError``.
        ground_truths: ``image_id -> dict(boxes=(N, 4), labels=(N,),
            difficult=(N,) bool, optional)`` in VOC 1-based pixels.  Its
            iteration order is the image order used to break score ties.
        class_names: ``C`` unique names; label ``l`` is ``class_names[l - 1]``.
        iou_threshold: IoU needed for a match, in (0, 1].
        metric: ``"area"`` (VOC2010+) or ``"11point"`` (VOC2007), see :func:`voc_ap`.
        inclusive_threshold: ``True`` matches when ``IoU >= threshold`` (the
            official MATLAB devkit, ``ov >= 0.5``); ``False`` when
            ``IoU > threshold`` (py-faster-rcnn / detectron2, ``ovmax > ovthresh``).
            They differ only for IoUs exactly equal to the threshold, which
            happens with integer pixel boxes.

    Ranking: per class, detections are sorted by descending score with a
    *stable* sort, so equal scores keep the order images have in
    ``ground_truths``, then their order within the image's detections.

    Classes without non-difficult GT (``npos == 0``) have an undefined AP:
    ``per_class`` reports ``nan``, their recall curve is all ``nan``, and they
    are excluded from ``mAP`` (``mAP`` is ``nan`` if no class has GT).  A class
    with GT but no detections has AP 0 and empty curves.

    Returns:
        ``{"metric", "iou_threshold", "per_class": {name: AP},
        "mAP": mean AP over classes with npos > 0,
        "precision_recall": {name: (recall, precision)}}``, APs in [0, 1].

    Raises:
        ValueError: an iou_threshold outside (0, 1], unknown image id, non-finite or inverted boxes
        (``x2 < x1 - 1`` or ``y2 < y1 - 1``), NaN scores, labels outside
        ``1..C``, or mismatched lengths; the message names the image id and
        the index within that image.
    """
    iou_threshold = float(iou_threshold)
    if not 0.0 < iou_threshold <= 1.0:  # NaN fails too: it would match nothing, as would anything above 1
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    class_names, matches = _prepare(detections, ground_truths, class_names, metric)
    return _summarise(class_names, matches, iou_threshold, metric, inclusive_threshold)


def evaluate_voc_coco_style(
    detections: Mapping,
    ground_truths: Mapping,
    class_names: Sequence[str],
    metric: str = "area",
    inclusive_threshold: bool = True,
) -> dict:
    """VOC-style mAP averaged over IoU thresholds 0.50:0.05:0.95.

    As detectron2's PascalVOCDetectionEvaluator reports it: ``AP`` is the mean
    of :func:`evaluate_voc`'s ``mAP`` over the ten thresholds, ``AP50`` and
    ``AP75`` are the mAP at 0.5 and 0.75.  Values are fractions in [0, 1]
    (detectron2 prints percentages).  Inputs and conventions are those of
    :func:`evaluate_voc`; matching is computed once and re-scored per threshold.
    """
    class_names, matches = _prepare(detections, ground_truths, class_names, metric)
    maps = {
        t: _summarise(class_names, matches, t, metric, inclusive_threshold)["mAP"]
        for t in _COCO_STYLE_THRESHOLDS
    }
    return {"AP": float(np.mean(list(maps.values()))), "AP50": maps[0.5], "AP75": maps[0.75]}
