"""What every starting point gives: an architecture, its weights in our names, and its classes.

Each family of sources (torchvision's COCO detectors, the detectron2 model
zoo, our own checkpoints) turns what the user named into one
:class:`InitSource`; the head surgery (``detection.init.surgery``) then fits
its class-dependent layers to the dataset's classes.
"""
from dataclasses import dataclass

from ..detector import DetectorConfig


@dataclass(frozen=True)
class InitSource:
    name: str                  # what the user passed, e.g. "maskrcnn_resnet50_fpn_v2" or a file
    config: DetectorConfig     # the source's architecture and input normalisation; num_classes = len(class_names)
    state_dict: dict           # tensors under our detector's names; class rows in the source's order,
                               # background first (row 0), as our box predictor and mask predictor lay them out
    class_names: tuple         # the source's classes: label l is class_names[l - 1]
    description: str           # one line for the log, e.g. "torchvision maskrcnn_resnet50_fpn_v2 (COCO_V1 weights)"
