"""A folder of labelme JSON files -> :class:`DetectionData`.

labelme saves one JSON per image, usually beside it::

    {"version": "5.4.1", "flags": {}, "imagePath": "a.jpg", "imageData": null,
     "imageHeight": 120, "imageWidth": 160,
     "shapes": [{"label": "cat", "points": [[10, 20], [60, 20], [40, 70]], "group_id": null,
                 "description": "", "shape_type": "polygon", "flags": {}}]}

Every ``*.json`` under ``root`` (recursively) is read; its image is
``imagePath`` relative to the JSON's folder. When that file is absent and the
JSON embeds the image (``imageData``, base64), the image is written once to
``.labelme_images/<json stem>.<ext>`` beside the JSON and read from there.
Shapes: ``polygon`` (also ``null``, as old labelme versions write it) is a
mask whose box is its extent; ``rectangle`` (two opposite corners) is a box;
``circle`` (its centre, then a point on it) is a polygon of 64 points with the
circle's exact box; ``line``, ``linestrip``, ``point`` and ``points`` shapes,
and ``mask`` shapes (labelme 5.3+'s AI masks, not read: save them as
polygons), are counted as skipped. Shapes with the same ``label`` and
``group_id`` are one object (as labelme's own labelme2coco groups them): its
mask is the union of their polygons (a rectangle among them joins as its four
corners), its box their union. Points are continuous pixel positions on the
image as shown (labelme applies EXIF orientation); ``imageWidth`` and
``imageHeight`` give the size.

Classes are ``classes:`` (their order is the label order) or, without it, the
sorted set of labels found, an order that changes when a new label appears:
give ``classes:`` for data that grows.
"""
import base64
import binascii
import io
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from backbones.atomic_files import write_atomically
from backbones.errors import UserError

from .records import DataProblems, DetectionData, note_duplicates
from .tool_shapes import Shape, ellipse_shape, image_size, make_record, polygon_area, polygon_shape, settle_masks

OBJECT_SHAPES = ("polygon", "rectangle", "circle")  # a shape_type of null is a polygon (old labelme)
EMBEDDED = ".labelme_images"  # where embedded images are written, beside their JSON


def load_labelme(root, classes=None, name=None, strict=True, box_masks=False) -> DetectionData:
    """Load every labelme JSON under the folder ``root``.

    ``classes``: the class names in label order (default: the labels found, sorted). ``box_masks``: in data
    mixing rectangles and polygons, rectangles get box-shaped masks (otherwise the data has no masks).
    ``strict=False`` (``check_dataset``) loads data where two JSON files annotate one image, to report it.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"labelme folder {root} does not exist (root: in the dataset YAML)")
    files = sorted(p for p in root.rglob("*.json") if EMBEDDED not in p.parts)
    if not files:
        raise UserError(f"labelme folder {root} holds no .json files")
    documents = [(path, _read(path)) for path in files]
    if classes is not None:
        if not classes or len(set(classes)) != len(classes):
            raise UserError(f"classes {classes} must name each class once")
        class_names = list(classes)
    else:
        class_names = sorted({s["label"].strip() for _, doc in documents for s in doc["shapes"]
                              if isinstance(s, dict) and (s.get("shape_type") or "polygon") in OBJECT_SHAPES
                              and isinstance(s.get("label"), str) and s["label"].strip()})
        if not class_names:
            raise UserError(f"labelme folder {root}: no polygon, rectangle or circle has a label; give classes: "
                            f"in the dataset YAML")
    label_of = {n: i + 1 for i, n in enumerate(class_names)}
    problems = DataProblems()
    images = [_image_file(path, doc) for path, doc in documents]
    note_duplicates([p.resolve() for p in images], problems, lambda image, where: (
        f"{root}: {len(where)} labelme files annotate image {image}: "
        f"{', '.join(str(documents[k][0]) for k in where)}; keep one"))
    if strict:
        problems.refuse_errors()
    records = []
    for (path, doc), file_name in zip(documents, images):
        width, height = doc.get("imageWidth"), doc.get("imageHeight")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
            width, height = image_size(file_name, str(path))
        shapes = _objects(path, doc, label_of, problems)
        records.append(make_record(path.relative_to(root).with_suffix("").as_posix(), file_name, width, height,
                                   shapes, problems, f"{path}: no usable shapes"))
    settle_masks(records, box_masks, problems, lambda r, k: f"{root / r.image_id}.json: object {k}")
    return DetectionData(name or root.name, records, class_names, list(range(1, len(class_names) + 1)), problems)


def _read(path) -> dict:
    try:
        with open(path, encoding="utf-8-sig") as f:
            doc = json.load(f)
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None
    except OSError as err:
        raise UserError(f"cannot read labelme file {path}: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise UserError(f"{path} is not a labelme file (an object with a shapes list); keep only labelme JSON "
                        f"files under root:")
    return doc


def _image_file(path, doc) -> Path:
    image_path = doc.get("imagePath")
    if isinstance(image_path, str) and image_path:
        candidate = path.parent / image_path.replace("\\", "/")  # labelme on Windows writes backslashes
        if candidate.is_file():
            return candidate
    data = doc.get("imageData")
    if not isinstance(data, str) or not data:
        raise UserError(f"{path}: image {image_path!r} (imagePath, relative to the JSON's folder) does not exist "
                        f"and the file embeds no imageData; put the image there or fix imagePath")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            suffix = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif"}.get(image.format or "", ".png")
    except (binascii.Error, ValueError, OSError) as err:
        raise UserError(f"{path}: imageData is not a base64-encoded image ({err}) and imagePath "
                        f"{image_path!r} does not exist") from None
    target = path.parent / EMBEDDED / f"{path.stem}{suffix}"
    if not target.is_file() or target.read_bytes() != raw:
        write_atomically(target, lambda p: p.write_bytes(raw), needed=len(raw))
    return target


def _points(shape, where) -> list:
    points = shape.get("points")
    if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and math.isfinite(v) for v in p) for p in points):
        raise UserError(f"{where}: points must be a list of [x, y] pairs of finite numbers, got "
                        f"{json.dumps(points)[:80]}")
    return points


def _objects(path, doc, label_of, problems) -> list:
    """The file's objects: shapes read, then those of one (label, group_id) merged."""
    groups, order = {}, []
    for k, shape in enumerate(doc["shapes"]):
        where = f"{path}: shape {k}"
        if not isinstance(shape, dict):
            raise UserError(f"{where} must be an object (label, points, shape_type)")
        kind = shape.get("shape_type") or "polygon"
        if kind not in OBJECT_SHAPES:  # line, linestrip, point, points, mask
            problems.note("skipped_shapes", f"{where}: a {kind} outlines no object; left out" if kind != "mask" else
                          f"{where}: a mask shape is not read (save it as a polygon); left out")
            continue
        label_name = shape.get("label")
        label = label_of.get(label_name.strip()) if isinstance(label_name, str) else None
        if label is None:
            raise UserError(f"{where} has label {label_name!r}, which is not one of the classes "
                            f"({', '.join(label_of)}); add it to classes: in the dataset YAML")
        where = f"{where} ({label_name.strip()})"
        points = _points(shape, where)
        if kind == "polygon":
            if not points:
                problems.note("dropped_boxes", f"{where}: polygon without points")
                continue
            part = polygon_shape(label, [p[0] for p in points], [p[1] for p in points], where)
        elif len(points) != 2:
            meaning = "two opposite corners" if kind == "rectangle" else "its centre and a point on it"
            raise UserError(f"{where}: a {kind} has 2 points ({meaning}), got {len(points)}")
        elif kind == "rectangle":
            (xa, ya), (xb, yb) = points
            part = Shape(label, (min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)), where)
        else:
            (cx, cy), (px, py) = points
            r = math.hypot(px - cx, py - cy)
            part = ellipse_shape(label, cx, cy, r, r, 0.0, where)
        group = shape.get("group_id")
        key = (label, group) if group is not None else (label, None, k)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(part)
    return [_merge(groups[key], problems) for key in order]


def _merge(parts, problems) -> Shape:
    """One object of the shapes of a group: union box; the polygons (rectangles as theirs) as one mask."""
    if len(parts) == 1:
        return parts[0]
    boxes = np.array([p.box for p in parts], np.float64)
    box = (*boxes[:, :2].min(0).tolist(), *boxes[:, 2:].max(0).tolist())
    where = f"{parts[0].where} and {len(parts) - 1} more of its group"
    if all(p.polygon is None for p in parts):
        return Shape(parts[0].label, box, where)
    polygons = []
    for p in parts:
        flat = p.polygon if p.polygon is not None else [p.box[0], p.box[1], p.box[2], p.box[1],
                                                        p.box[2], p.box[3], p.box[0], p.box[3]]
        if len(flat) < 6 or polygon_area(flat) == 0:
            problems.note("dropped_boxes", f"{p.where}: polygon of no area in a group; left out of its mask")
            continue
        polygons.append([float(v) for v in flat])
    if len(polygons) <= 1:
        return Shape(parts[0].label, box, where, polygon=polygons[0] if polygons else [])
    return Shape(parts[0].label, box, where, rle=polygons)  # a COCO segmentation: a list of polygons
