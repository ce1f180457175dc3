"""COCO evaluation: a thin wrapper over pycocotools.

* :func:`to_coco_results` turns torchvision-style detector outputs into the
  standard COCO results list.
* :func:`evaluate_coco` runs ``COCOeval`` on such a list and returns the 12
  summary numbers by name plus per-category AP (as detectron2 computes it)
  and per-category precision-recall curves. Its ``backend``: ``"auto"`` (the
  default) runs faster-coco-eval's C++ COCOeval when that package is
  installed (the same numbers to 1e-9, several times faster on large sets:
  bench/eval_speed.py) and pycocotools otherwise; the result names the backend
  that ran, so every number can be traced to its evaluator.
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any, Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from backbones.errors import UserError, check_choice

__all__ = ["STAT_NAMES", "BACKENDS", "to_coco_results", "evaluate_coco", "resolve_backend", "defined_stats"]

#: Names of ``COCOeval.stats`` entries, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_IOU_TYPES = ("bbox", "segm")


def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` (torch tensor, numpy array or sequence) as a numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _python_id(image_id: Any) -> Any:
    """numpy / torch integer ids -> int, so results are JSON-serialisable."""
    if hasattr(image_id, "item"):
        return image_id.item()
    return image_id


# --------------------------------------------------------------------------
# Predictions -> COCO results
# --------------------------------------------------------------------------
def encode_masks(masks: Any, n: int, threshold: float, image_id: Any) -> list:
    """(M, 1, H, W) or (M, H, W) probabilities -> compressed RLEs with str counts.

    One ``mask.encode`` call per image: pycocotools encodes every channel of a Fortran-ordered
    (H, W, M) uint8 array, the same RLEs as M calls on (H, W, 1) slices without a Python loop per object.
    """
    masks = _to_numpy(masks)
    if masks.ndim == 4:
        masks = masks[:, 0]
    if masks.ndim != 3 or masks.shape[0] != n:
        raise ValueError(f"image {image_id!r}: masks must have shape ({n}, 1, H, W), got {masks.shape}")
    # strict '>' as torchvision's reference coco_eval; (M, H, W) -> (H, W, M), column-major as COCO RLE reads it
    rles = mask_util.encode(np.asfortranarray((masks > threshold).transpose(1, 2, 0), dtype=np.uint8))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")  # bytes are not JSON-serialisable
    return rles


def _image_results(image_id, pred, category_ids, with_masks, mask_threshold) -> list:
    """COCO result dicts for the detections of one image."""
    boxes = _to_numpy(pred["boxes"]).astype(np.float64).reshape(-1, 4)
    scores = _to_numpy(pred["scores"]).astype(np.float64).reshape(-1)
    labels = _to_numpy(pred["labels"]).astype(np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(
            f"image {image_id!r}: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels"
        )
    bad = (labels < 1) | (labels > len(category_ids))
    if bad.any():
        raise ValueError(
            f"image {image_id!r}, index {int(np.argmax(bad))}: label {int(labels[bad][0])} "
            f"is outside 1..{len(category_ids)}"
        )
    # x1, y1, x2, y2 (continuous pixels) -> x, y, w, h: COCO boxes are continuous too, no +1.
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    cats = category_ids[labels - 1]
    image_id = _python_id(image_id)
    results = [
        {"image_id": image_id, "category_id": int(c), "bbox": b, "score": float(s)}
        for c, b, s in zip(cats, xywh.tolist(), scores)
    ]
    if pred.get("boxes_from_masks"):  # a results file of masks alone: written back as it was, for loadRes to
        for result, rle in zip(results, pred["rles"]):  # derive boxes and areas from the masks
            del result["bbox"]
            result["segmentation"] = rle
    elif with_masks:
        if "rles" in pred:  # already encoded (detection.engine.inference does this to save memory)
            rles = pred["rles"]
        elif "masks" in pred:
            rles = encode_masks(pred["masks"], len(boxes), mask_threshold, image_id)
        else:
            raise ValueError(f"image {image_id!r}: 'segm' requested but the prediction has no 'masks'")
        for result, rle in zip(results, rles):
            result["segmentation"] = rle
    return results


def to_coco_results(
    predictions: Mapping,
    category_ids: Sequence[int],
    iou_types: Sequence[str] = ("bbox",),
    mask_threshold: float = 0.5,
) -> list:
    """Convert detector outputs to a COCO results list.

    Args:
        predictions: ``image_id -> dict(boxes=(M, 4), scores=(M,), labels=(M,),
            masks=(M, 1, H, W) optional, or rles=[compressed RLE, ...])`` torchvision-style, in original image
            pixels (continuous 0-based ``x1, y1, x2, y2``); tensors or arrays. With
            ``boxes_from_masks=True`` (a results file of masks alone, read back) the results carry the
            ``rles`` and no ``"bbox"``: pycocotools' ``loadRes`` derives boxes and areas from the masks.
        category_ids: dataset category id of each contiguous label:
            label ``l`` (1..C) maps to ``category_ids[l - 1]``.
        iou_types: any of ``"bbox"``, ``"segm"``.  Every result carries
            ``"bbox"``; with ``"segm"`` it also carries ``"segmentation"``.
        mask_threshold: mask pixels with probability ``> mask_threshold`` are
            foreground.

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score",
        "segmentation": {"size": [H, W], "counts": str}}, ...]`` (compressed RLE).
    """
    unknown = set(iou_types) - set(_IOU_TYPES)
    if unknown:
        raise ValueError(f"iou_types must be among {_IOU_TYPES}, got {sorted(unknown)}")
    category_ids = np.asarray(list(category_ids), dtype=np.int64)
    with_masks = "segm" in iou_types
    results = []
    for image_id, pred in predictions.items():
        results.extend(_image_results(image_id, pred, category_ids, with_masks, mask_threshold))
    return results


# --------------------------------------------------------------------------
# COCOeval wrapper
# --------------------------------------------------------------------------
def _check_results(coco_gt: COCO, results: list, iou_type: str) -> list:
    """Validate ``results`` and return copies ready for ``loadRes``.

    ``loadRes`` mutates the dicts it gets (adds id/area/...), hence the copies.
    For ``segm`` the box is dropped so that ``loadRes`` takes the area from the
    mask, which decides the small/medium/large range (as detectron2 does).
    """
    key = "bbox" if iou_type == "bbox" else "segmentation"
    image_ids, cat_ids = set(coco_gt.getImgIds()), set(coco_gt.getCatIds())
    prepared = []
    for i, result in enumerate(results):
        if key not in result and "segmentation" not in result:  # loadRes derives a missing box from the mask
            raise ValueError(f"result {i} has no {key!r}, needed for iou_type={iou_type!r}")
        if result["image_id"] not in image_ids:
            raise ValueError(f"result {i}: image_id {result['image_id']!r} is not in the ground truth")
        if result["category_id"] not in cat_ids:
            raise ValueError(f"result {i}: category_id {result['category_id']!r} is not in the ground truth")
        result = dict(result)
        if iou_type == "segm":
            result.pop("bbox", None)
        prepared.append(result)
    return prepared


def _empty_results(coco_gt: COCO) -> COCO:
    """A results COCO object with no detections (``loadRes([])`` crashes)."""
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    coco_dt.createIndex()
    return coco_dt


def _per_class_ap(coco_gt: COCO, coco_eval: COCOeval) -> dict:
    """AP@[.5:.95] per category, from ``eval["precision"]`` like detectron2.

    precision has shape (iou, recall, category, area, max_dets); take area
    "all" and the largest max_dets, and drop the -1 entries (undefined).  A
    category with no ground truth gets ``nan``.  Values are fractions.
    """
    precision = coco_eval.eval["precision"]
    per_class = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[coco_gt.cats[cat_id]["name"]] = float(np.mean(p)) if p.size else float("nan")
    return per_class


#: "auto": faster-coco-eval when it can be imported, else pycocotools (see :func:`resolve_backend`).
BACKENDS = ("auto", "pycocotools", "faster-coco-eval")


def resolve_backend(backend: str = "auto") -> str:
    """The backend that will run: ``"auto"`` is faster-coco-eval when importable, else pycocotools."""
    check_choice("COCO evaluation backend", backend, BACKENDS)
    if backend != "auto":
        return backend
    try:
        import faster_coco_eval  # noqa: F401  (an optional dependency: the [dev] extra)
    except ImportError:
        return "pycocotools"
    return "faster-coco-eval"


def _evaluator(coco_gt, results, iou_type, backend):
    """A COCOeval-compatible object, evaluated and accumulated, from the chosen (resolved) backend."""
    if backend == "pycocotools":
        coco_dt = coco_gt.loadRes(results) if results else _empty_results(coco_gt)
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
    else:
        try:
            import faster_coco_eval
        except ImportError:
            raise UserError("the faster-coco-eval backend is not installed: pip install faster-coco-eval, or use "
                            "backend 'auto' or 'pycocotools'") from None
        # copies of the annotation dicts: its COCOeval adds keys to them ("ignore", "rle") and changes nothing
        # else (a deepcopy of the whole ground truth cost a sixth of its time on 300 images with masks)
        dataset = dict(coco_gt.dataset, annotations=[dict(a) for a in coco_gt.dataset.get("annotations", [])])
        gt = faster_coco_eval.COCO(dataset)
        dt = gt.loadRes(results) if results else faster_coco_eval.COCO(_empty_results(coco_gt).dataset)
        # print, not its default logger: summarize()'s table is captured like pycocotools' (summary_text)
        coco_eval = faster_coco_eval.COCOeval_faster(gt, dt, iou_type, print_function=print)
    coco_eval.evaluate()
    coco_eval.accumulate()
    return coco_eval


def evaluate_coco(coco_gt: COCO, results: list, iou_type: str = "bbox", backend: str = "auto") -> dict:
    """Run ``COCOeval`` and return its summary by name.

    Args:
        coco_gt: ground truth as a pycocotools ``COCO`` object.
        results: COCO results list, e.g. from :func:`to_coco_results`.  May be
            empty: every defined stat is then 0.
        iou_type: ``"bbox"`` or ``"segm"``.
        backend: one of :data:`BACKENDS`; ``"auto"`` resolves as :func:`resolve_backend`.

    Returns:
        ``{name: float for name in STAT_NAMES}`` (``AP``, ``AP50``, ..., ``ARl``)
        exactly as ``COCOeval.stats``, fractions in [0, 1]; COCO's ``-1`` for
        an undefined value (e.g. no small objects in the ground truth) is
        kept as ``-1.0``.  Also ``"per_class": {category name: AP@[.5:.95]}``
        (``nan`` where undefined) and ``"summary_text"``, the table
        ``COCOeval.summarize()`` prints (captured, not printed), and ``"backend"``,
        the one that ran (``"pycocotools"`` or ``"faster-coco-eval"``).

    Raises:
        ValueError: unknown iou_type, or a result with an image id / category
        id absent from ``coco_gt`` or without the needed box / segmentation.
    """
    if iou_type not in _IOU_TYPES:
        raise ValueError(f"iou_type must be one of {_IOU_TYPES}, got {iou_type!r}")
    backend = resolve_backend(backend)
    results = _check_results(coco_gt, list(results), iou_type)
    # pycocotools prints progress; keep the caller's stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = _evaluator(coco_gt, results, iou_type, backend)
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats)}
    stats["per_class"] = _per_class_ap(coco_gt, coco_eval)
    stats["precision_recall"] = _precision_recall(coco_gt, coco_eval)
    stats["summary_text"] = summary.getvalue()
    stats["backend"] = backend
    return stats


def defined_stats(stats: Mapping) -> dict:
    """An :func:`evaluate_coco` result with COCO's ``-1`` (undefined: no ground truth in that size range) as
    ``None``, for what people and programs read: a table would print it as -100.00 AP, a JSON reader
    would average it in."""
    return {k: (None if k in STAT_NAMES and v < 0 else v) for k, v in stats.items()}


def _precision_recall(coco_gt, coco_eval) -> dict:
    """Per class: (recall thresholds, precision at IoU 0.5, all areas, 100 detections)."""
    precision = np.asarray(coco_eval.eval["precision"])  # (T, R, K, A, M)
    recall = np.asarray(coco_eval.params.recThrs)
    curves = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[0, :, k, 0, -1]
        keep = p > -1
        curves[coco_gt.cats[cat_id]["name"]] = (recall[keep], p[keep])
    return curves
