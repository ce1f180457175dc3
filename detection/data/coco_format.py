"""COCO-format annotations (the format ``shapes`` and COCO itself use) -> :class:`DetectionData`.

COCO boxes are ``[x, y, w, h]`` in continuous pixels: converted once to
x1 y1 x2 y2. Category ids become contiguous labels 1..C in id order and are
kept in ``category_ids`` for export. ``iscrowd`` regions are flagged
``ignore``: pycocotools handles them in COCO evaluation, training skips them.
"""
import contextlib
import io
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from backbones.errors import UserError

from .records import DataProblems, DetectionData, ImageRecord, clip_box


def read_coco_json(path) -> COCO:
    """Read a COCO JSON quietly; a missing or malformed file gets an error naming it."""
    if not Path(path).is_file():
        raise UserError(f"annotation file {path} does not exist")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except ValueError as err:  # json.JSONDecodeError is a ValueError and carries line/column
        raise UserError(f"{path} is not valid COCO JSON: {err}") from None
    except (KeyError, TypeError) as err:
        raise UserError(f"{path} is not in COCO format (problem with {err}); expected "
                        f"images, annotations and categories lists") from None


def load_coco(annotations, images, name=None) -> DetectionData:
    """Load a COCO-format JSON whose ``file_name`` entries are relative to ``images``."""
    coco = read_coco_json(annotations)
    category_ids = sorted(coco.cats)
    label_of = {c: i + 1 for i, c in enumerate(category_ids)}
    problems = DataProblems()
    records = [_record(coco, image_id, Path(images), label_of, problems, annotations)
               for image_id in sorted(coco.imgs)]
    return DetectionData(name or Path(annotations).stem, records, [coco.cats[c]["name"] for c in category_ids],
                         category_ids, problems, coco=coco)


def _record(coco, image_id, images, label_of, problems, path):
    info = coco.imgs[image_id]
    width, height = info["width"], info["height"]
    boxes, labels, ignore, segmentations = [], [], [], []
    for ann in coco.imgToAnns.get(image_id, []):
        if ann["category_id"] not in label_of:
            raise UserError(f"{path}: annotation {ann.get('id')} has category_id {ann['category_id']}, "
                            f"which is not in the categories list")
        x, y, w, h = ann["bbox"]
        box, clipped, empty = clip_box((x, y, x + w, y + h), width, height)
        where = f"{path}: annotation {ann.get('id')} of image {image_id}"
        if empty:
            problems.note("dropped_boxes", f"{where}: empty box {ann['bbox']}")
            continue
        if clipped:
            problems.note("clipped_boxes", f"{where}: box {ann['bbox']} reaches outside {width}x{height}")
        boxes.append(box)
        labels.append(label_of[ann["category_id"]])
        ignore.append(bool(ann.get("iscrowd", 0)))
        segmentations.append(ann.get("segmentation"))
    if not boxes:
        problems.note("images_without_objects", f"{path}: image {image_id} ({info['file_name']})")
    return ImageRecord(
        image_id=image_id, file_name=images / info["file_name"], width=width, height=height,
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4), labels=np.array(labels, dtype=np.int64),
        ignore=np.array(ignore, dtype=bool),
        segmentations=segmentations if all(s for s in segmentations) else None)


def to_coco_ground_truth(data: DetectionData):
    """``(COCO object, {dataset image_id: COCO image id})`` for any loaded data.

    Data loaded from COCO JSON keeps its original ground truth; otherwise (VOC,
    as detectron2 does for COCO-style numbers on VOC) it is built from the
    records with integer image ids: ignored objects become crowd regions and
    areas are box areas.
    """
    if data.coco is not None:
        return data.coco, {rec.image_id: rec.image_id for rec in data.records}
    images, annotations = [], []
    for index, rec in enumerate(data.records):
        images.append({"id": index, "width": rec.width, "height": rec.height, "file_name": str(rec.file_name)})
        for k, (box, label, crowd) in enumerate(zip(rec.boxes.tolist(), rec.labels.tolist(), rec.ignore.tolist())):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": index, "bbox": [box[0], box[1], w, h],
                                "area": w * h, "iscrowd": int(crowd), "category_id": data.category_ids[label - 1]})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": c, "name": n} for c, n in zip(data.category_ids, data.class_names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco, {rec.image_id: index for index, rec in enumerate(data.records)}
