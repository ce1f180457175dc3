"""The in-memory form every dataset format is loaded into (detectron2's "dataset dicts" idea).

Loaders (COCO JSON, VOC XML, ...) turn their files into :class:`DetectionData`:
one :class:`ImageRecord` per image with boxes in 0-based continuous pixel
coordinates (x1, y1, x2, y2), contiguous labels 1..C, and an ``ignore`` flag
for objects that are evaluated but never trained on (VOC ``difficult``, COCO
``iscrowd``). Conversions from each format's conventions happen once, in its
loader; exporting back goes through ``category_ids``.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np


@dataclass
class ImageRecord:
    image_id: Any                 # the dataset's own id (int for COCO, file stem for VOC)
    file_name: Path               # absolute or relative to the working directory
    width: int
    height: int
    boxes: np.ndarray             # (N, 4) float32, x1 y1 x2 y2, 0-based continuous pixels
    labels: np.ndarray            # (N,) int64 in 1..C
    ignore: np.ndarray            # (N,) bool: difficult / crowd, kept for evaluation only
    segmentations: Optional[list] = None  # per object: COCO polygons or RLE, or None


@dataclass
class DataProblems:
    """What a loader fixed or left out, so it can be reported instead of crashing."""

    clipped_boxes: int = 0        # boxes partly outside the image, clipped to it
    dropped_boxes: int = 0        # empty after clipping, or degenerate
    images_without_objects: int = 0
    details: list = field(default_factory=list)  # human-readable lines, first few per kind

    def note(self, kind: str, message: str, limit: int = 20):
        setattr(self, kind, getattr(self, kind) + 1)
        if sum(line.startswith(kind) for line in self.details) < limit:
            self.details.append(f"{kind}: {message}")


@dataclass
class DetectionData:
    name: str
    records: list                 # [ImageRecord]
    class_names: list             # label l (1..C) is class_names[l - 1]
    category_ids: list            # label l exports as category_ids[l - 1]
    problems: DataProblems = field(default_factory=DataProblems)
    coco: Any = None              # the original pycocotools COCO ground truth, for data loaded from COCO JSON
    split: Optional[str] = None   # the VOC ImageSets list it came from (devkit results files are named after it)


def clip_box(box, width, height):
    """Clip an x1 y1 x2 y2 box to the image; returns (box, was_clipped, is_empty)."""
    clipped = np.array([min(max(box[0], 0), width), min(max(box[1], 0), height),
                        min(max(box[2], 0), width), min(max(box[3], 0), height)], dtype=np.float32)
    changed = not np.allclose(clipped, box)
    return clipped, changed, bool(clipped[2] <= clipped[0] or clipped[3] <= clipped[1])
