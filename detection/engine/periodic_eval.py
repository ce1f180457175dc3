"""Evaluation during training: each rank predicts its share of the test images, rank 0 scores them all.

The evaluator follows the data: COCO AP (boxes, and masks for Mask R-CNN)
for data loaded from COCO JSON, VOC mAP@0.5 (area rule, as tools/eval_voc.py)
for VOC folders. Metrics are percentages named ``eval/...``; the first is the
one the best checkpoint is chosen by.
"""
import torch

from ..evaluation.dataset_eval import coco_metrics, voc_metrics
from . import distributed
from .inference import predict


def primary_metric(dataset, mask=False) -> str:
    return "eval/bbox_AP" if dataset.data.coco is not None else "eval/voc_mAP50"


def score(dataset, predictions, mask=False) -> dict:
    if dataset.data.coco is not None:
        iou_types = ("bbox", "segm") if mask else ("bbox",)
        result = coco_metrics(dataset, predictions, iou_types=iou_types)
        return {f"eval/{t}_{k}": 100 * result[t][k] for t in iou_types for k in ("AP", "AP50", "AP75")}
    result = voc_metrics(dataset, predictions)
    return {"eval/voc_mAP50": 100 * result["mAP"], "eval/voc_AP": 100 * result["voc_style_coco_ap"]["AP"]}


def evaluate(model, dataset, mask=False):
    """Metrics on rank 0 (None on the others); ``model`` is left in training mode."""
    shard = torch.utils.data.Subset(dataset, range(distributed.rank(), len(dataset), distributed.world_size()))
    predictions = {}
    for part in distributed.gather_objects(predict(model, shard, progress=False)):
        predictions.update(part)
    model.train()
    return score(dataset, predictions, mask) if distributed.is_main() else None
