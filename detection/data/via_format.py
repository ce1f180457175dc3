"""VGG Image Annotator (VIA 1.x and 2.x) JSON -> :class:`DetectionData`.

The file VIA exports (Annotation > Export Annotations (as json); the balloon
tutorial set's ``via_region_data.json``) is a dict keyed by
``<filename><size>``::

    {"b1.jpg1115004": {"filename": "b1.jpg", "size": 1115004, "file_attributes": {},
                       "regions": [{"shape_attributes": {"name": "polygon", "all_points_x": [...],
                                                         "all_points_y": [...]},
                                    "region_attributes": {"type": "balloon"}}]}}

``regions`` is a list in VIA 2 and a dict ``{"0": region, ...}`` in VIA 1.
A saved VIA 2 project holds the same dict under ``_via_img_metadata``.
Shapes: ``polygon`` (a mask; its box is its extent), ``rect`` (x, y, width,
height: a box), ``circle`` and ``ellipse`` (polygons of 64 points);
``point`` and ``polyline`` outline no object and are counted as skipped.
A region's class is the value of its region attribute ``class_attribute``
(text, dropdown or radio; a checkbox with one class ticked); with no
``class_attribute`` and a single class in ``classes`` (the balloon set has
no attribute), every region is that class. VIA stores no image sizes: they
are read from the image files' headers.
"""
import json
import math
from pathlib import Path

from backbones.errors import UserError

from .records import DataProblems, DetectionData, note_duplicates
from .tool_shapes import Shape, ellipse_shape, image_size, make_record, polygon_shape, settle_masks

SKIPPED_SHAPES = ("point", "polyline")


def load_via(annotations, images, class_attribute=None, classes=None, name=None, strict=True,
             box_masks=False) -> DetectionData:
    """Load a VIA JSON whose ``filename`` entries are relative to the folder ``images``.

    ``classes``: the class names in label order; without it, the values of ``class_attribute`` (the
    options a VIA 2 project declares for it, or else the values found, sorted). ``box_masks``: in data
    mixing boxes and polygons, boxes get box-shaped masks (otherwise the data has no masks).
    ``strict=False`` (``check_dataset``) loads data naming an image twice to report it.
    """
    path, images = Path(annotations), Path(images)
    metadata, declared = _read(path)
    entries = list(metadata.items())
    problems = DataProblems()
    note_duplicates([_filename(entry, key, path) for key, entry in entries], problems, lambda name, where: (
        f"{path}: image {name!r} has {len(where)} entries; VIA keeps one per image file, merge their regions"))
    if strict:
        problems.refuse_errors()
    class_names = _class_names(metadata, path, class_attribute, classes, declared)
    label_of = {n: i + 1 for i, n in enumerate(class_names)}
    missing = [images / _filename(entry, key, path) for key, entry in entries
               if not (images / _filename(entry, key, path)).is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3]) + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else "")
        raise UserError(f"{path}: {len(missing)} of {len(entries)} image files are missing: {shown}; VIA stores no "
                        f"image sizes, so they are read from the files: check `images:` in the dataset YAML")
    records = []
    for key, entry in entries:
        filename = _filename(entry, key, path)
        shapes = _shapes(entry, key, path, class_attribute, label_of, problems)
        file_name = images / filename
        width, height = image_size(file_name, f"{path}: image {filename!r}")
        records.append(make_record(filename, file_name, width, height, shapes, problems,
                                   f"{path}: image {filename!r} has no usable regions"))
    settle_masks(records, box_masks, problems, lambda r, k: f"{path}: image {r.image_id!r}: object {k}")
    return DetectionData(name or path.stem, records, class_names, list(range(1, len(class_names) + 1)), problems)


def _read(path):
    """(the ``<filename><size>`` dict, the region attribute options a VIA 2 project declares or {})."""
    if not path.is_file():
        raise UserError(f"VIA annotation file {path} does not exist")
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON: {err} (format: via reads VIA's JSON export or a VIA 2 "
                        f"project, not its CSV)") from None
    except OSError as err:
        raise UserError(f"cannot read VIA annotation file {path}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a JSON object keyed by image (VIA's export), "
                        f"not a {type(data).__name__}")
    if "project" in data and "file" in data and "metadata" in data:
        raise UserError(f"{path} is a VIA 3 project, which format: via does not read; export it from VIA 3 "
                        f"as COCO and use format: coco, or annotate with VIA 2")
    declared = {}
    if "_via_img_metadata" in data:  # a VIA 2 project file
        declared = (data.get("_via_attributes") or {}).get("region") or {}
        data = data["_via_img_metadata"]
        if not isinstance(data, dict):
            raise UserError(f"{path}: _via_img_metadata must be a JSON object keyed by image")
    return data, declared


def _filename(entry, key, path) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str) or not entry["filename"]:
        raise UserError(f"{path}: entry {key!r} must be an object with a filename (VIA's export), got "
                        f"{json.dumps(entry)[:80]}")
    return entry["filename"]


def _regions(entry, key, path) -> list:
    """The regions of an entry as a list (VIA 1 keeps a dict keyed "0", "1", ...)."""
    regions = entry.get("regions", [])
    if isinstance(regions, dict):
        return [regions[k] for k in sorted(regions, key=lambda k: int(k) if str(k).isdigit() else str(k))]
    if not isinstance(regions, list):
        raise UserError(f"{path}: image {entry['filename']!r}: regions must be a list (VIA 2) or an object "
                        f"(VIA 1), got {json.dumps(regions)[:80]}")
    return regions


def _class_names(metadata, path, class_attribute, classes, declared) -> list:
    if classes is not None:
        if len(set(classes)) != len(classes) or not classes:
            raise UserError(f"classes {classes} must name each class once")
        if class_attribute is None and len(classes) > 1:
            raise UserError(f"{path}: {len(classes)} classes need class_attribute: the region attribute that "
                            f"holds each region's class (without it every region is the one class of classes:)")
        return list(classes)
    if class_attribute is None:
        raise UserError(f"{path}: give class_attribute: (the region attribute holding the class) or, when "
                        f"every region is one class (as in the balloon set), classes: [that class]")
    options = (declared.get(class_attribute) or {}).get("options")
    if isinstance(options, dict) and options:
        return [str(k) for k in options]
    found = set()
    for key, entry in metadata.items():
        for k, region in enumerate(_regions(entry, key, path)):
            if isinstance(region, dict) and isinstance(region.get("region_attributes"), dict):
                value = region["region_attributes"].get(class_attribute)
                if isinstance(value, str) and value.strip():
                    found.add(value.strip())
                elif isinstance(value, dict):
                    found.update(str(c) for c, ticked in value.items() if ticked)
    if not found:
        raise UserError(f"{path}: no region has a {class_attribute!r} attribute; check class_attribute: (the "
                        f"region attribute holding the class)")
    return sorted(found)


def _class_of(region, where, class_attribute, label_of) -> int:
    if class_attribute is None:
        return 1
    attributes = region.get("region_attributes")
    value = attributes.get(class_attribute) if isinstance(attributes, dict) else None
    if isinstance(value, dict):  # a checkbox attribute: {option: true, ...}
        ticked = [str(c) for c, on in value.items() if on]
        if len(ticked) != 1:
            raise UserError(f"{where}: its {class_attribute!r} checkboxes tick {ticked or 'nothing'}; tick one class")
        value = ticked[0]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where} has no {class_attribute!r} region attribute (the class); give every region "
                        f"one, or set class_attribute: to the attribute that holds the class")
    label = label_of.get(value.strip())
    if label is None:
        raise UserError(f"{where} has class {value.strip()!r}, which is not one of the classes "
                        f"({', '.join(label_of)}); add it to classes: in the dataset YAML")
    return label


def _numbers(attributes, keys, where, name) -> list:
    values = [attributes.get(k) for k in keys]
    for k, v in zip(keys, values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise UserError(f"{where}: {name} {k} must be a finite number, got {json.dumps(v)}")
    return values


def _shapes(entry, key, path, class_attribute, label_of, problems) -> list:
    shapes = []
    for k, region in enumerate(_regions(entry, key, path)):
        where = f"{path}: image {entry['filename']!r} region {k}"
        attributes = region.get("shape_attributes") if isinstance(region, dict) else None
        if not isinstance(attributes, dict) or not isinstance(attributes.get("name"), str):
            raise UserError(f"{where}: shape_attributes with a shape name is missing")
        kind = attributes["name"]
        if kind in SKIPPED_SHAPES or kind not in ("polygon", "rect", "circle", "ellipse"):
            problems.note("skipped_shapes", f"{where}: a {kind} outlines no object; left out")
            continue
        label = _class_of(region, where, class_attribute, label_of)
        if kind == "rect":
            x, y, w, h = _numbers(attributes, ("x", "y", "width", "height"), where, "rect")
            shapes.append(Shape(label, (x, y, x + w, y + h), where))
        elif kind == "circle":
            cx, cy, r = _numbers(attributes, ("cx", "cy", "r"), where, "circle")
            shapes.append(ellipse_shape(label, cx, cy, r, r, 0.0, where))
        elif kind == "ellipse":
            cx, cy, rx, ry = _numbers(attributes, ("cx", "cy", "rx", "ry"), where, "ellipse")
            theta = _numbers(attributes, ("theta",), where, "ellipse")[0] if "theta" in attributes else 0.0
            shapes.append(ellipse_shape(label, cx, cy, rx, ry, theta, where))
        else:
            xs, ys = attributes.get("all_points_x"), attributes.get("all_points_y")
            if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
                raise UserError(f"{where}: polygon all_points_x and all_points_y must be lists of the same length")
            if not xs:
                problems.note("dropped_boxes", f"{where}: polygon without points")
                continue
            for axis, values in (("x", xs), ("y", ys)):
                _numbers({f"all_points_{axis}[{i}]": v for i, v in enumerate(values)},
                         [f"all_points_{axis}[{i}]" for i in range(len(values))], where, "polygon")
            shapes.append(polygon_shape(label, xs, ys, where))
    return shapes
