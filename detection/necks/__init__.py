"""Necks turn a registry backbone into the parts torchvision's detectors take.

Each neck returns keyword arguments for ``torchvision.models.detection.FasterRCNN``
/ ``MaskRCNN`` (backbone, anchor generator, RPN head, RoI poolers and heads),
so the detector itself is composed, never re-implemented.
"""
from .c4 import c4_parts
from .fpn import fpn_parts

NECKS = {"fpn": fpn_parts, "c4": c4_parts}
