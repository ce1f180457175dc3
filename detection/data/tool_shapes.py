"""What the annotation-tool readers (VIA, CVAT) share: shapes -> boxes and COCO-style masks, image sizes
from image headers, and the rule for data where only some objects have masks.

Every coordinate these tools write is a continuous pixel position on the
image as shown (0 at the top-left corner of the top-left pixel), the
convention of :class:`ImageRecord`: a polygon is kept as it is, its box is
its extent, and a box is kept as it is.
"""
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from backbones.errors import UserError

from .dataset import image_size as displayed_size
from .records import ImageRecord, clip_box

ELLIPSE_VERTICES = 64  # a circle or ellipse becomes a polygon of this many vertices (a multiple of 4)


@dataclass
class Shape:
    """One object as read from a tool's file, before clipping: ``box`` x1 y1 x2 y2, ``polygon`` a flat
    [x1, y1, x2, y2, ...] list (None for a box), ``rle`` a COCO RLE (a decoded tool mask), ``where`` names it."""
    label: int
    box: tuple
    where: str
    polygon: Optional[list] = None
    rle: Optional[dict] = None


def polygon_shape(label, xs, ys, where) -> Shape:
    """A polygon from its x and y lists (finite numbers, checked by the reader)."""
    flat = [float(v) for xy in zip(xs, ys) for v in xy]
    return Shape(label, (min(xs), min(ys), max(xs), max(ys)), where, polygon=flat)


def ellipse_shape(label, cx, cy, rx, ry, theta, where) -> Shape:
    """A polygon of :data:`ELLIPSE_VERTICES` points on the ellipse (rotated by ``theta`` radians, clockwise
    on the image, whose y axis points down); the box is the ellipse's exact extent."""
    t = np.arange(ELLIPSE_VERTICES) * (2 * math.pi / ELLIPSE_VERTICES)
    cos, sin = math.cos(theta), math.sin(theta)
    xs = cx + rx * np.cos(t) * cos - ry * np.sin(t) * sin
    ys = cy + rx * np.cos(t) * sin + ry * np.sin(t) * cos
    half_w, half_h = math.hypot(rx * cos, ry * sin), math.hypot(rx * sin, ry * cos)
    flat = np.stack([xs, ys], 1).reshape(-1).tolist()
    return Shape(label, (cx - half_w, cy - half_h, cx + half_w, cy + half_h), where, polygon=flat)


def polygon_area(flat) -> float:
    """The area enclosed by a flat [x1, y1, ...] polygon (shoelace formula)."""
    xs, ys = np.asarray(flat[0::2], np.float64), np.asarray(flat[1::2], np.float64)
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))


def image_size(path, where) -> tuple:
    """(width, height) of an image file as it is shown and decoded (:func:`.dataset.image_size`: EXIF
    orientation applied, the header only); ``where`` names the annotation that needs it."""
    try:
        return displayed_size(path)
    except FileNotFoundError:
        raise UserError(f"{where}: image file {path} does not exist (its size is read from it)") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{where}: cannot read the size of image {path}: {err}") from None


def make_record(image_id, file_name, width, height, shapes, problems, where) -> ImageRecord:
    """An :class:`ImageRecord` of ``shapes``: boxes clipped to the image (counted), empty ones and polygons of
    no area dropped (counted); ``segmentations`` holds each object's polygon list, RLE or None (a box) until
    :func:`settle_masks` decides for the whole data."""
    boxes, labels, segmentations = [], [], []
    for shape in shapes:
        box, clipped, empty = clip_box(shape.box, width, height)
        described = f"{shape.where}: x1 y1 x2 y2 = {' '.join(f'{v:g}' for v in shape.box)}"
        if empty:
            problems.note("dropped_boxes", f"{described} is empty inside the {width}x{height} image")
            continue
        if shape.polygon is not None and len(shape.polygon) < 6:
            problems.note("dropped_boxes", f"{shape.where}: polygon of {len(shape.polygon) // 2} point(s); a "
                                           f"polygon needs at least 3")
            continue
        if shape.polygon is not None and polygon_area(shape.polygon) == 0:
            problems.note("dropped_boxes", f"{shape.where}: polygon of no area (its points are on one line)")
            continue
        if clipped:
            problems.note("clipped_boxes", f"{described} clipped to the {width}x{height} image")
        boxes.append(box)
        labels.append(shape.label)
        segmentations.append([shape.polygon] if shape.polygon is not None else shape.rle)
    if not boxes:
        problems.note("images_without_objects", where)
    return ImageRecord(image_id=image_id, file_name=file_name, width=width, height=height,
                       boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
                       labels=np.array(labels, dtype=np.int64), ignore=np.zeros(len(boxes), bool),
                       segmentations=segmentations)


def settle_masks(records, box_masks, problems, names):
    """Masks for all objects or for none (what :class:`ImageRecord` and Mask R-CNN need).

    When every object has a polygon or mask, the records keep them; when none does, the data is boxes only.
    When some are boxes: with ``box_masks`` each box gets a box-shaped polygon; without, the data is boxes
    only and every box is counted in ``problems`` (``objects_without_masks``) with how to get masks.
    ``names(record, k)`` names object k of a record in those lines.
    """
    has = [s is not None for r in records for s in r.segmentations]
    if all(has) and has:
        return
    if any(has) and box_masks:
        for r in records:
            r.segmentations = [s if s is not None else [[b[0], b[1], b[2], b[1], b[2], b[3], b[0], b[3]]]
                               for s, b in zip(r.segmentations, r.boxes.tolist())]
        return
    if any(has):
        for r in records:
            for k, s in enumerate(r.segmentations):
                if s is None:
                    problems.note("objects_without_masks", f"{names(r, k)} is a box while other objects have "
                                  f"masks, so the data trains without masks (Faster R-CNN); draw it as a polygon, "
                                  f"or set box_masks: true in the dataset YAML to give boxes box-shaped masks")
    for r in records:
        r.segmentations = None
