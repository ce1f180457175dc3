"""Evaluate predictions against a :class:`DetectionDataset`'s ground truth.

VOC: boxes go to VOC's 1-based pixel convention through ``to_voc_boxes`` (the
inverse of the loaders' single conversion); ``ignore`` objects (VOC difficult,
COCO crowd) count as difficult: matched detections are ignored, missed ones
not penalised. COCO: predictions are exported with the dataset's own category
ids and compared with pycocotools (VOC data gets a COCO ground truth built
from its records).
"""
import numpy as np
from backbones.errors import UserError

from ..data.coco_format import records_have_masks, to_coco_ground_truth
from .coco import evaluate_coco, to_coco_results
from .voc import evaluate_voc, evaluate_voc_coco_style, to_voc_boxes


def voc_ground_truth(dataset) -> dict:
    return {rec.image_id: {"boxes": to_voc_boxes(rec.boxes.astype(np.float64)), "labels": rec.labels,
                           "difficult": rec.ignore} for rec in dataset.records}


def require_classes(dataset):
    """Ground truth without a single class (an empty categories list) leaves nothing to evaluate; every
    table and mean would be empty."""
    if not dataset.class_names:
        raise UserError(f"{dataset.name} has no classes (an empty categories list): nothing to evaluate")


def voc_metrics(dataset, predictions, metric="area", iou_threshold=0.5, inclusive_threshold=True) -> dict:
    """evaluate_voc's result plus ``"voc_style_coco_ap"``: AP/AP50/AP75 over IoU .5:.95 (detectron2's)."""
    require_classes(dataset)
    detections = {i: {"boxes": to_voc_boxes(p["boxes"]), "scores": p["scores"], "labels": p["labels"]}
                  for i, p in predictions.items()}
    truth = voc_ground_truth(dataset)
    result = evaluate_voc(detections, truth, dataset.class_names, iou_threshold=iou_threshold, metric=metric,
                          inclusive_threshold=inclusive_threshold)
    result["voc_style_coco_ap"] = evaluate_voc_coco_style(detections, truth, dataset.class_names, metric=metric,
                                                          inclusive_threshold=inclusive_threshold)
    return result


def has_ground_truth_masks(dataset) -> bool:
    """Whether mask AP can be computed: ground truth from COCO JSON whose every object has a segmentation, or
    records whose every object has one (instance-mask PNGs, VOC with masks: true). VOC boxes and box-only COCO
    JSON have none, and pycocotools fails on them (KeyError 'segmentation')."""
    coco = dataset.data.coco
    if coco is None:
        return records_have_masks(dataset.records)
    return all("segmentation" in a for a in coco.dataset.get("annotations", []))


def coco_metrics(dataset, predictions, iou_types=("bbox",), backend="auto") -> dict:
    """iou_type -> the 12 COCO numbers by name, per-class AP and precision-recall curves."""
    require_classes(dataset)
    if "segm" in iou_types and not has_ground_truth_masks(dataset):
        raise UserError(f"mask AP needs ground-truth masks, and {dataset.name} has none (an object without "
                        f"'segmentation'); evaluate boxes only")
    coco_gt, coco_id = to_coco_ground_truth(dataset.data)
    results = to_coco_results({coco_id[i]: p for i, p in predictions.items()}, dataset.category_ids,
                               iou_types=iou_types)
    return {t: evaluate_coco(coco_gt, results, iou_type=t, backend=backend) for t in iou_types}
