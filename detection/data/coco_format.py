"""COCO-format annotations (the format ``shapes`` and COCO itself use) -> :class:`DetectionData`.

COCO boxes are ``[x, y, w, h]`` in continuous pixels: converted once to
x1 y1 x2 y2. Category ids become contiguous labels 1..C in id order and are
kept in ``category_ids`` for export. ``iscrowd`` regions are flagged
``ignore``: pycocotools handles them in COCO evaluation, training skips them.
The JSON is checked entry by entry before it is indexed (:mod:`.coco_schema`),
for training and for evaluation alike, so a malformed entry or an id used twice
is named once, at load.
"""
import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from backbones.errors import UserError

from .coco_schema import note_duplicate_ids, validate_coco
from .records import DataProblems, DetectionData, ImageRecord, clip_box


def read_coco_json(path, problems=None) -> COCO:
    """Read a COCO JSON quietly, each entry checked first (:mod:`.coco_schema`); a missing, malformed or
    ill-formed file gets an error naming it, the entry and the field.

    Ids used twice are noted in ``problems``, or refused when none is given:
    the index would merge their entries.
    """
    dataset = _read_json(path)
    validate_coco(dataset, path)
    found = DataProblems() if problems is None else problems
    note_duplicate_ids(dataset, path, found)
    if problems is None:
        found.refuse_errors()
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    _complete_annotations(coco)
    return coco


def _complete_annotations(coco):
    """What the format asks of ground truth and some tools leave out, filled as pycocotools' own loadRes
    fills it for results: an empty ``segmentation`` means no mask; a missing ``area`` is the mask's area,
    or the box's. (COCOeval reads ``area`` for every object, so a file without it could not be scored.)"""
    for ann in coco.dataset.get("annotations", []):
        if "segmentation" in ann and not ann["segmentation"]:
            del ann["segmentation"]
        if ann.get("area") is None:
            if "segmentation" in ann:
                ann["area"] = float(mask_util.area(coco.annToRLE(ann)))
            else:
                ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])


def _read_json(path):
    if not Path(path).is_file():
        raise UserError(f"annotation file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as err:  # json.JSONDecodeError (and UnicodeDecodeError) is a ValueError, with line/column
        raise UserError(f"{path} is not valid COCO JSON: {err}") from None
    except OSError as err:
        raise UserError(f"cannot read annotation file {path}: {err}") from None


def load_coco(annotations, images, name=None, strict=True) -> DetectionData:
    """Load a COCO-format JSON whose ``file_name`` entries are relative to ``images``.

    ``strict=False`` (``check_dataset``) loads data with duplicate ids to report them in ``problems``.
    """
    problems = DataProblems()
    coco = read_coco_json(annotations, problems)
    if strict:
        problems.refuse_errors()
    category_ids = sorted(coco.cats)
    label_of = {c: i + 1 for i, c in enumerate(category_ids)}
    records = [_record(coco, image_id, Path(images), label_of, problems, annotations)
               for image_id in sorted(coco.imgs)]
    return DetectionData(name or Path(annotations).stem, records, [coco.cats[c]["name"] for c in category_ids],
                         category_ids, problems, coco=coco)


def _record(coco, image_id, images, label_of, problems, path):
    info = coco.imgs[image_id]
    width, height = int(info["width"]), int(info["height"])  # whole numbers, possibly written as 640.0
    boxes, labels, ignore, segmentations = [], [], [], []
    for ann in coco.imgToAnns.get(image_id, []):
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


def records_have_masks(records) -> bool:
    """Whether every object of ``records`` (and at least one) has a segmentation."""
    with_objects = [r for r in records if len(r.boxes)]
    return bool(with_objects) and all(r.segmentations is not None and all(s is not None for s in r.segmentations)
                                      for r in with_objects)


def _to_rle(segmentation, height, width):
    """COCO polygons, uncompressed or compressed RLE -> compressed RLE (pycocotools' annToRLE rule)."""
    if isinstance(segmentation, list):
        return mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_util.frPyObjects(segmentation, height, width)
    return segmentation


def to_coco_ground_truth(data: DetectionData):
    """``(COCO object, {dataset image_id: COCO image id})`` for any loaded data.

    Data loaded from COCO JSON keeps its original ground truth; otherwise (VOC,
    as detectron2 does for COCO-style numbers on VOC) it is built from the
    records with integer image ids: ignored objects become crowd regions and
    areas are box areas, or, when every object has a mask (:func:`records_have_masks`:
    instance-mask PNGs, VOC SegmentationObject), the masks are its segmentations
    and their areas the areas, as in COCO.
    """
    if data.coco is not None:
        return data.coco, {rec.image_id: rec.image_id for rec in data.records}
    images, annotations = [], []
    masks = records_have_masks(data.records)
    for index, rec in enumerate(data.records):
        images.append({"id": index, "width": rec.width, "height": rec.height, "file_name": str(rec.file_name)})
        for k, (box, label, crowd) in enumerate(zip(rec.boxes.tolist(), rec.labels.tolist(), rec.ignore.tolist())):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": index, "bbox": [box[0], box[1], w, h],
                                "area": w * h, "iscrowd": int(crowd), "category_id": data.category_ids[label - 1]})
            if masks:
                segmentation = rec.segmentations[k]
                annotations[-1].update(segmentation=segmentation,
                                       area=float(mask_util.area(_to_rle(segmentation, rec.height, rec.width))))
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": c, "name": n} for c, n in zip(data.category_ids, data.class_names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco, {rec.image_id: index for index, rec in enumerate(data.records)}
