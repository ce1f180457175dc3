"""Loaded data -> COCO JSON (``annotations/instances_<split>.json``, images in ``images/<split>/``).

The inverse of :mod:`.coco_format`: ``bbox`` is ``[x, y, w, h]`` of the
record's x1 y1 x2 y2, each number the shortest decimal that reads back as
the same float32 (the records' precision; x + w included), ``iscrowd`` is
the ``ignore`` flag (VOC ``difficult`` too), ``segmentation`` the object's polygons or RLE
as held, ``area`` the mask's pixel area (pycocotools) or, without a mask,
the box's. Categories keep their ids (``category_ids``); image ids are the
records' own when they are distinct integers (COCO data), else 1..N in order.
"""
import json

import numpy as np

from backbones.atomic_files import write_text

from .mask_polygons import area, json_segmentation


def write_coco(parts, dst, with_masks) -> tuple:
    """Write each ``(split, data, file names)`` of ``parts``; returns the dataset-YAML keys (see conversion)."""
    per_split = {}
    for split, data, names in parts:
        path = f"annotations/instances_{split}.json"
        write_text(dst / path, json.dumps(coco_json(data, names, with_masks), ensure_ascii=False, default=_plain))
        per_split[split] = {"annotations": path, "images": f"images/{split}"}
    return {}, per_split


def coco_json(data, names, with_masks=True) -> dict:
    """The COCO ground-truth dict of ``data`` whose images are named ``names``."""
    ids = [r.image_id for r in data.records]
    if not (all(isinstance(i, int) and not isinstance(i, bool) for i in ids) and len(set(ids)) == len(ids)):
        ids = list(range(1, len(ids) + 1))
    images, annotations = [], []
    for image_id, record, name in zip(ids, data.records, names):
        images.append({"id": image_id, "file_name": name, "width": record.width, "height": record.height})
        for k, (box, label, crowd) in enumerate(zip(record.boxes.tolist(), record.labels.tolist(),
                                                    record.ignore.tolist())):
            x1, y1, x2, y2 = np.asarray(box, np.float32).astype(np.float64)
            x, y = float32_text(x1), float32_text(y1)
            bbox = [x, y, extent(x, x2), extent(y, y2)]
            annotation = {"id": len(annotations) + 1, "image_id": image_id,
                          "category_id": data.category_ids[label - 1], "bbox": bbox, "iscrowd": int(crowd)}
            segmentation = record.segmentations[k] if with_masks and record.segmentations else None
            if segmentation:
                annotation["segmentation"] = json_segmentation(segmentation)
                annotation["area"] = area(segmentation, record.height, record.width)
            else:
                annotation["area"] = float32_text((x2 - x1) * (y2 - y1))
            annotations.append(annotation)
    return {"info": {"description": f"{data.name}, written by tools/convert_dataset.py"},
            "images": images, "annotations": annotations,
            "categories": [{"id": c, "name": n} for c, n in zip(data.category_ids, data.class_names)]}


def float32_text(value) -> float:
    """The shortest decimal that reads back as the same float32."""
    return float(str(np.float32(value)))


def extent(start: float, end: float) -> float:
    """A width (height) that a reader's float32(start + width) turns back into ``end`` (a float32): the
    shortest decimal when it does, else the float64 difference (a float32 step too fine for few digits)."""
    for width in (float32_text(end - start), end - start):
        if np.float32(start + width) == np.float32(end):
            return width
    return end - start


def _plain(value):
    """numpy numbers (a reader's polygon coordinates) as JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
