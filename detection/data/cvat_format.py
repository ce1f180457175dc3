"""CVAT "for images 1.1" XML -> :class:`DetectionData`.

The file CVAT exports for a task, job or project (Export dataset > CVAT for
images 1.1, ``annotations.xml``; a project's numbers its images within each
task, so their ids become ``"<task_id>/<id>"``)::

    <annotations>
      <version>1.1</version>
      <meta><task>... <labels><label><name>cat</name>...</label></labels></task></meta>
      <image id="0" name="a.jpg" width="640" height="480">
        <box label="cat" occluded="0" xtl="10.5" ytl="20" xbr="110" ybr="90.25"/>
        <polygon label="dog" occluded="0" points="10,20;110,20;60,95.5"/>
      </image>
    </annotations>

Coordinates are continuous pixels: ``<box>`` is x1 y1 x2 y2 already (a
``rotation`` in degrees, clockwise about its centre, gives the turned
rectangle's extent); a ``<polygon>`` is an object with a mask, its box its
extent; ``<ellipse>`` becomes a polygon of 64 points; ``<mask>`` (CVAT's
run-length encoding over the ``left top width height`` rectangle, background
first) is decoded into a COCO RLE. ``<polyline>``, ``<points>``,
``<cuboid>`` and ``<skeleton>`` outline no object: they are counted as
skipped. ``<tag>`` is an image-level label, not an object: ignored. Class
names are the ``<meta>`` labels in order, or ``classes:``.
"""
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from backbones.errors import UserError

from .records import DataProblems, DetectionData, note_duplicates
from .tool_shapes import Shape, ellipse_shape, make_record, polygon_shape, settle_masks
from .xml_file import parse_xml

OBJECT_SHAPES = ("box", "polygon", "ellipse", "mask")
SKIPPED_SHAPES = ("polyline", "points", "cuboid", "skeleton")


def load_cvat(annotations, images, classes=None, name=None, strict=True, box_masks=False) -> DetectionData:
    """Load a CVAT for images 1.1 XML whose image ``name`` attributes are relative to the folder ``images``.

    ``box_masks``: in data mixing boxes and polygons or masks, boxes get box-shaped masks (otherwise the
    data has no masks). ``strict=False`` (``check_dataset``) loads data with an image id used twice to
    report it.
    """
    path, images = Path(annotations), Path(images)
    root = _parse(path)
    class_names = list(classes) if classes is not None else _meta_labels(root, path)
    if len(set(class_names)) != len(class_names):
        raise UserError(f"{path}: classes {class_names} name a class more than once")
    label_of = {n: i + 1 for i, n in enumerate(class_names)}
    elements = root.findall("image")
    problems = DataProblems()
    parsed = [_image_attributes(element, k, path) for k, element in enumerate(elements)]
    note_duplicates([p[0] for p in parsed], problems, lambda image_id, where: (
        f"{path}: image id {image_id} is used by {len(where)} <image> elements "
        f"({', '.join(parsed[k][1] for k in where)}); give each image its own id"))
    if strict:
        problems.refuse_errors()
    records = []
    for element, (image_id, file, width, height) in zip(elements, parsed):
        where = f"{path}: image {image_id} ({file})"
        shapes = _shapes(element, where, label_of, width, height, problems)
        records.append(make_record(image_id, images / file, width, height, shapes, problems,
                                   f"{where} has no usable objects"))
    settle_masks(records, box_masks, problems, lambda r, k: f"{path}: image {r.image_id} "
                                                            f"({r.file_name.relative_to(images)}) object {k}")
    return DetectionData(name or path.stem, records, class_names, list(range(1, len(class_names) + 1)), problems)


def _parse(path) -> ET.Element:
    root = parse_xml(path, "CVAT annotation file", f"CVAT annotation file {path} does not exist")
    if root.tag != "annotations":
        raise UserError(f"{path}: the root element is <{root.tag}>, not <annotations>; export the task as "
                        f"'CVAT for images 1.1'")
    if root.find("track") is not None:
        raise UserError(f"{path} is a 'CVAT for video 1.1' export (it has <track> elements); export the task as "
                        f"'CVAT for images 1.1'")
    return root


def _meta_labels(root, path) -> list:
    """The label names of ``<meta>`` (a task's, job's or project's), in order, each once; a skeleton's
    points (labels with a ``<parent>``) are not classes."""
    names = []
    meta = root.find("meta")
    for label in meta.iter("label") if meta is not None else ():
        name = (label.findtext("name") or "").strip()
        if name and not (label.findtext("parent") or "").strip() and name not in names:
            names.append(name)
    if not names:
        raise UserError(f"{path}: <meta> lists no labels; give classes: in the dataset YAML")
    return names


def _attribute_number(element, key, where) -> float:
    text = element.get(key)
    try:
        value = float(text)
    except (TypeError, ValueError):
        found = "missing" if text is None else f"not a number ({text!r})"
        raise UserError(f"{where}: attribute {key} is {found}") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: attribute {key} is not a finite number ({text!r})")
    return value


def _image_attributes(element, index, path) -> tuple:
    """(id, name, width, height) of an <image>; the id is ``"<task_id>/<id>"`` in a project's export, whose
    images are numbered within each task."""
    where = f"{path}: <image> {index} (0-based)"
    file = element.get("name")
    if not file:
        raise UserError(f"{where} has no name attribute (the image file)")
    where = f"{where} ({file})"
    image_id = element.get("id")
    try:
        image_id = int(image_id)
    except (TypeError, ValueError):
        raise UserError(f"{where}: attribute id is {'missing' if image_id is None else repr(image_id)}, not a "
                        f"whole number") from None
    task = element.get("task_id")  # a project export: frame ids count within each task
    if task is not None:
        image_id = f"{task}/{image_id}"
    width, height = (_attribute_number(element, key, where) for key in ("width", "height"))
    if width <= 0 or height <= 0 or width != int(width) or height != int(height):
        raise UserError(f"{where}: width and height must be positive whole numbers, got {width:g}x{height:g}")
    return image_id, file, int(width), int(height)


def _shapes(image, where, label_of, width, height, problems) -> list:
    shapes = []
    for k, element in enumerate(child for child in image if child.tag != "tag"):
        here = f"{where} <{element.tag}> {k}"
        if element.tag not in OBJECT_SHAPES:
            problems.note("skipped_shapes", f"{here}: a <{element.tag}> outlines no object; left out")
            continue
        name = element.get("label")
        label = label_of.get(name)
        if label is None:
            raise UserError(f"{here} has label {name!r}, which is not one of the classes ({', '.join(label_of)}); "
                            f"add it to classes: in the dataset YAML")
        here = f"{here} ({name})"
        if element.tag == "box":
            x1, y1, x2, y2 = (_attribute_number(element, key, here) for key in ("xtl", "ytl", "xbr", "ybr"))
            rotation = _attribute_number(element, "rotation", here) if element.get("rotation") else 0.0
            shapes.append(Shape(label, _turned_box(x1, y1, x2, y2, rotation), here))
        elif element.tag == "polygon":
            points = _points(element, here)
            shapes.append(polygon_shape(label, points[:, 0].tolist(), points[:, 1].tolist(), here))
        elif element.tag == "ellipse":
            cx, cy, rx, ry = (_attribute_number(element, key, here) for key in ("cx", "cy", "rx", "ry"))
            rotation = _attribute_number(element, "rotation", here) if element.get("rotation") else 0.0
            shapes.append(ellipse_shape(label, cx, cy, abs(rx), abs(ry), math.radians(rotation), here))
        else:
            shapes.append(_mask(element, label, here, width, height))
    return shapes


def _turned_box(x1, y1, x2, y2, degrees) -> tuple:
    """The extent of the rectangle x1 y1 x2 y2 turned by ``degrees`` clockwise about its centre."""
    if degrees % 360 == 0:
        return x1, y1, x2, y2
    cx, cy, theta = (x1 + x2) / 2, (y1 + y2) / 2, math.radians(degrees)
    half_w = abs((x2 - x1) / 2 * math.cos(theta)) + abs((y2 - y1) / 2 * math.sin(theta))
    half_h = abs((x2 - x1) / 2 * math.sin(theta)) + abs((y2 - y1) / 2 * math.cos(theta))
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def _points(element, where) -> np.ndarray:
    """(N, 2) of a ``points="x1,y1;x2,y2;..."`` attribute."""
    text = element.get("points")
    try:
        points = np.array([[float(v) for v in pair.split(",")] for pair in (text or "").split(";") if pair.strip()],
                          dtype=np.float64)
    except ValueError:
        points = None
    if points is None or points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise UserError(f"{where}: points must be 'x1,y1;x2,y2;...' with finite numbers, got {text!r}")
    return points


def _mask(element, label, where, width, height) -> Shape:
    """A ``<mask>``: CVAT's run lengths (background first) over its left/top/width/height rectangle, row by
    row, placed in the image and encoded as a COCO RLE; its box is the mask's extent."""
    left, top, w, h = (_attribute_number(element, key, where) for key in ("left", "top", "width", "height"))
    left, top, w, h = int(left), int(top), int(w), int(h)
    try:
        counts = [int(v) for v in (element.get("rle") or "").split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0 or sum(counts) != w * h:
        raise UserError(f"{where}: rle must be comma-separated run lengths adding up to width x height = {w * h}")
    if left < 0 or top < 0 or left + w > width or top + h > height:
        raise UserError(f"{where}: its rectangle left {left} top {top} width {w} height {h} reaches outside the "
                        f"{width}x{height} image")
    full = np.zeros((height, width), np.uint8)
    full[top:top + h, left:left + w] = np.repeat(np.arange(len(counts)) % 2, counts).reshape(h, w)
    rle = mask_util.encode(np.asfortranarray(full))
    x, y, bw, bh = mask_util.toBbox(rle).tolist()
    rle["counts"] = rle["counts"].decode("ascii")  # a JSON-ready compressed RLE, as in COCO files
    return Shape(label, (x, y, x + bw, y + bh), where, rle=rle)
