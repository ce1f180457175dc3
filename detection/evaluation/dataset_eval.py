"""Evaluate saved predictions against a :class:`CocoFormatDataset`'s ground truth.

VOC: ground truth boxes go to VOC's 1-based pixel convention exactly once
here (and predictions through ``to_voc_boxes``); COCO crowd regions count as
VOC "difficult" (matched detections are ignored, missed ones not penalised).
COCO: predictions are exported with the dataset's own category ids.
"""
import numpy as np

from .coco import evaluate_coco, to_coco_results
from .voc import evaluate_voc, to_voc_boxes


def voc_ground_truth(dataset) -> dict:
    coco, label_of = dataset.coco, {c: i + 1 for i, c in enumerate(dataset.category_ids)}
    truths = {}
    for image_id in dataset.image_ids:
        anns = coco.imgToAnns.get(image_id, [])
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        truths[image_id] = {"boxes": to_voc_boxes(xyxy),
                            "labels": np.array([label_of[a["category_id"]] for a in anns], dtype=np.int64),
                            "difficult": np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)}
    return truths


def voc_metrics(dataset, predictions, metric="area", iou_threshold=0.5) -> dict:
    detections = {i: {"boxes": to_voc_boxes(p["boxes"]), "scores": p["scores"], "labels": p["labels"]}
                  for i, p in predictions.items()}
    return evaluate_voc(detections, voc_ground_truth(dataset), dataset.class_names,
                        iou_threshold=iou_threshold, metric=metric)


def coco_metrics(dataset, predictions, iou_types=("bbox",)) -> dict:
    """iou_type -> the 12 COCO numbers by name plus per-class AP."""
    results = to_coco_results(predictions, dataset.category_ids, iou_types=iou_types)
    return {t: evaluate_coco(dataset.coco, results, iou_type=t) for t in iou_types}
