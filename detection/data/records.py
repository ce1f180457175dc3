"""The in-memory form every dataset format is loaded into (detectron2's "dataset dicts" idea).

Loaders (COCO JSON, VOC XML, ...) turn their files into :class:`DetectionData`:
one :class:`ImageRecord` per image with boxes in 0-based continuous pixel
coordinates (x1, y1, x2, y2), contiguous labels 1..C, and an ``ignore`` flag
for objects that are evaluated but never trained on (VOC ``difficult``, COCO
``iscrowd``). Conversions from each format's conventions happen once, in its
loader; exporting back goes through ``category_ids``.
"""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from backbones.errors import UserError


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
    """What a loader fixed or left out, so it can be reported instead of crashing, and what it cannot use.

    Fixes (clipped, dropped, images without objects) are counted and training
    goes on. Errors (:attr:`ERRORS`) make the data ambiguous: a strict load
    refuses them (:meth:`refuse_errors`); ``check_dataset`` loads leniently to
    report every one of them.
    """

    clipped_boxes: int = 0        # boxes partly outside the image, clipped to it
    dropped_boxes: int = 0        # empty after clipping, or degenerate
    images_without_objects: int = 0
    duplicate_ids: int = 0        # ids naming more than one image or annotation (an error)
    skipped_shapes: int = 0       # annotations of a kind the reader does not use (polylines, points, ...)
    objects_without_masks: int = 0  # boxes in data whose other objects have masks: the data trains without masks
    mask_problems: int = 0        # instance masks that disagree with their class or object (kept, or ignored)
    details: list = field(default_factory=list)  # human-readable lines, first few per kind

    ERRORS = ("duplicate_ids",)

    def note(self, kind: str, message: str, limit: int = 20):
        setattr(self, kind, getattr(self, kind) + 1)
        if sum(line.startswith(f"{kind}: ") for line in self.details) < limit:
            self.details.append(f"{kind}: {message}")

    def add(self, other: "DataProblems"):
        """Count ``other``'s problems too (data combined from several sources); its lines name their files."""
        for kind in ("clipped_boxes", "dropped_boxes", "images_without_objects", "skipped_shapes",
                     "objects_without_masks", "mask_problems", *self.ERRORS):
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))
        self.details.extend(other.details)

    def errors(self) -> list:
        """The noted lines of the error kinds."""
        return [line for line in self.details if line.startswith(tuple(f"{kind}: " for kind in self.ERRORS))]

    def refuse_errors(self):
        """Raise the first error (and how many more there are); nothing when there is none."""
        count = sum(getattr(self, kind) for kind in self.ERRORS)
        if count:
            first = self.errors()[0].split(": ", 1)[1]
            more = count - 1
            raise UserError(first + (f" (and {more} more such error{'s' if more > 1 else ''}; "
                                     f"python tools/check_dataset.py lists them all)" if more else ""))


def note_duplicates(ids, problems, describe):
    """Note every id of ``ids`` (a sequence) that occurs more than once as a ``duplicate_ids`` error.

    ``describe(id, positions)`` words the problem; positions are 0-based indices into ``ids``.
    """
    repeated = {key for key, count in Counter(ids).items() if count > 1}
    if not repeated:  # the usual case, in C: big datasets have hundreds of thousands of ids
        return
    positions = {}
    for position, key in enumerate(ids):
        if key in repeated:
            positions.setdefault(key, []).append(position)
    for key, where in positions.items():
        problems.note("duplicate_ids", describe(key, where))


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
