"""Detection evaluation: PASCAL VOC (devkit rules) and COCO (pycocotools)."""

from .coco import STAT_NAMES, evaluate_coco, to_coco_results
from .voc import evaluate_voc, evaluate_voc_coco_style, from_voc_boxes, to_voc_boxes, voc_ap

__all__ = [
    "voc_ap",
    "to_voc_boxes",
    "from_voc_boxes",
    "evaluate_voc",
    "evaluate_voc_coco_style",
    "to_coco_results",
    "evaluate_coco",
    "STAT_NAMES",
]
