"""The Ultralytics YOLO layout -> :class:`DetectionData`.

A dataset folder with ``data.yaml``, images and one label file per image::

    data.yaml            names: [cat, dog]   (or {0: cat, 1: dog}); train: images/train; val: images/val
    images/train/a.jpg
    labels/train/a.txt   0 0.5 0.5 0.25 0.4                  cls cx cy w h, normalised by the image size
                         1 0.1 0.1 0.3 0.1 0.2 0.4 ...       the segment form: cls x1 y1 x2 y2 ... (a polygon)

A split entry of ``data.yaml`` (``train``, ``val``, ``test``) is a folder of
images (searched recursively), a ``.txt`` file listing images (lines relative
to the list's folder, ``./images/...`` as COCO's lists have them) or a list of
such entries, relative to the dataset folder. That folder is ``root:`` of the
dataset YAML: ``data.yaml``'s own ``path:`` often names the annotator's
machine, so it is used only when it is absolute and exists. Without a
``data.yaml``, ``classes:`` names the classes and ``images/<split>`` is the
split. As Ultralytics does, an image's label file is its path with the last
``/images/`` replaced by ``/labels/`` and the extension by ``.txt``; an image
without one has no objects.

A label file may mix boxes (5 fields) and segments (an odd number of at least
7: a class and 3 or more points); a segment's box is the polygon's extent.
Sizes, to de-normalise, come from the image headers with EXIF orientation
applied (as Ultralytics' ``exif_size``, which the annotations are relative to;
orientations 5-8 swap width and height). Class ids out of range, a wrong
number of fields and non-numbers are errors naming the file and line;
coordinates outside [0, 1] are clipped and counted, as are duplicate lines
(removed, as Ultralytics does).
"""
import math
from pathlib import Path

import yaml

from backbones.errors import UserError

from .records import DataProblems, DetectionData, note_duplicates
from .tool_shapes import Shape, image_size, make_record, polygon_shape, settle_masks

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp")  # Ultralytics' that PIL reads


def load_yolo(root, split, data=None, classes=None, name=None, strict=True, box_masks=False) -> DetectionData:
    """Load split ``split`` (a key of ``data.yaml``: train, val, test) of the YOLO dataset folder ``root``.

    ``data``: its data.yaml (default ``root/data.yaml``). ``classes``: the class names in label order, when
    data.yaml has none (or to check they agree). ``box_masks``: in data mixing boxes and segments, boxes get
    box-shaped masks (otherwise the data has no masks). ``strict=False`` (``check_dataset``) loads a list
    naming an image twice to report it.
    """
    root = Path(root)
    data = Path(data) if data is not None else root / "data.yaml"
    if not root.is_dir():
        raise UserError(f"YOLO dataset folder {root} does not exist (root: in the dataset YAML)")
    spec = _read_data_yaml(data) if data.is_file() else None
    if spec is None and classes is None:
        raise UserError(f"{data} does not exist; give data: (the dataset's data.yaml with names:) or classes: "
                        f"in the dataset YAML")
    class_names = _class_names(spec, data, classes)
    base = root
    if spec is not None and isinstance(spec.get("path"), str) and Path(spec["path"]).is_absolute() \
            and Path(spec["path"]).is_dir():
        base = Path(spec["path"])
    if spec is None:
        entries = [f"images/{split}"]
    else:
        if split not in spec or spec[split] in (None, ""):
            present = [k for k in ("train", "val", "test") if spec.get(k)]
            raise UserError(f"{data} has no {split!r} entry (it has {', '.join(present) or 'none'}); set split: "
                            f"in the dataset YAML to one of them")
        entries = spec[split] if isinstance(spec[split], list) else [spec[split]]
    images = []
    for entry in entries:
        if not isinstance(entry, str):
            raise UserError(f"{data}: {split} must be a folder or .txt list of images, or a list of them, "
                            f"got {entry!r}")
        images += _images(base / entry, data, split)
    problems = DataProblems()
    note_duplicates([str(p) for p in images], problems, lambda p, where: (
        f"{data}: {split} lists image {p} {len(where)} times; list each image once"))
    if strict:
        problems.refuse_errors()
    records = []
    for path in images:
        width, height = image_size(path, f"{data}: {split}")
        label_file = label_path(path)
        shapes = _shapes(label_file, width, height, len(class_names), problems) if label_file.is_file() else []
        image_id = path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)
        records.append(make_record(image_id, path, width, height, shapes, problems,
                                   f"{path}: no objects (label file {label_file.name} "
                                   f"{'empty' if label_file.is_file() else 'absent'})"))
    settle_masks(records, box_masks, problems, lambda r, k: f"{label_path(r.file_name)}: object {k}")
    return DetectionData(name or f"{root.name}_{split}", records, class_names,
                         list(range(1, len(class_names) + 1)), problems)


def label_path(image) -> Path:
    """Ultralytics' ``img2label_paths``: the last ``/images/`` of the path becomes ``/labels/``, the suffix .txt."""
    text = Path(image).as_posix()
    if "/images/" in text:
        head, tail = text.rsplit("/images/", 1)
        text = f"{head}/labels/{tail}"
    return Path(text).with_suffix(".txt")


def _read_data_yaml(path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise UserError(f"{path}: a YOLO data.yaml is a mapping (path, train, val, names), got {spec!r:.80}")
    return spec


def _class_names(spec, data, classes) -> list:
    names = None if spec is None else spec.get("names")
    if isinstance(names, dict):
        keys = sorted(names, key=lambda k: (not isinstance(k, int), k if isinstance(k, int) else 0))
        if keys != list(range(len(names))):
            raise UserError(f"{data}: names keys must be the class ids 0..{len(names) - 1}, got {list(names)}")
        names = [names[k] for k in keys]
    if names is not None:
        if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
            raise UserError(f"{data}: names must be a list of class names or a mapping {{id: name}}, got {names!r}")
        names = [str(n) for n in names]
        if "nc" in spec and spec["nc"] != len(names):
            raise UserError(f"{data}: nc is {spec['nc']!r} but names lists {len(names)} classes")
        if classes is not None and list(classes) != names:
            raise UserError(f"classes {classes} differ from the names in {data} ({names}); leave classes: out "
                            f"or make them agree")
        return names
    if not classes:
        raise UserError(f"{data} has no names:; give the class names (in class-id order) as classes: in the "
                        f"dataset YAML or names: in {data.name}")
    if len(set(classes)) != len(classes):
        raise UserError(f"classes {classes} must name each class once")
    return list(classes)


def _images(entry, data, split) -> list:
    if entry.suffix == ".txt":
        if not entry.is_file():
            raise UserError(f"{data}: {split} image list {entry} does not exist")
        lines = [line.strip() for line in entry.read_text(encoding="utf-8").splitlines() if line.strip()]
        paths = [Path(line) if Path(line).is_absolute() else entry.parent / line for line in lines]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"{entry}: {len(missing)} of {len(paths)} listed images do not exist, the first "
                            f"{missing[0]} (lines are relative to the list's folder)")
        return paths
    if not entry.is_dir():
        raise UserError(f"{data}: {split} image folder {entry} does not exist (relative to the dataset folder, "
                        f"root: in the dataset YAML)")
    paths = sorted(p for p in entry.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise UserError(f"{data}: {split} image folder {entry} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def _shapes(label_file, width, height, class_count, problems) -> list:
    try:
        text = label_file.read_text(encoding="utf-8-sig")  # a BOM from Windows editors
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read YOLO label file {label_file}: {err}") from None
    shapes, seen = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{label_file}:{number}"
        if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
            raise UserError(f"{where}: {len(fields)} fields; a YOLO label line is 'class cx cy w h' (5) or a "
                            f"segment 'class x1 y1 x2 y2 x3 y3 ...' (an odd number, at least 7)")
        try:
            values = [float(v) for v in fields[1:]]
            cls = float(fields[0])
        except ValueError:
            raise UserError(f"{where}: {line.strip()!r} holds a field that is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise UserError(f"{where}: {line.strip()!r} holds a coordinate that is not finite")
        if not math.isfinite(cls) or cls != int(cls):
            raise UserError(f"{where}: class {fields[0]!r} is not a whole number")
        if not 0 <= cls < class_count:
            raise UserError(f"{where}: class {int(cls)} is out of range; the dataset has {class_count} classes "
                            f"(ids 0..{class_count - 1})")
        key = (int(cls), *values)
        if key in seen:
            problems.note("dropped_boxes", f"{where}: a duplicate of an earlier line; removed")
            continue
        seen.add(key)
        label = int(cls) + 1
        if len(values) == 4:
            cx, cy, w, h = values
            shapes.append(Shape(label, ((cx - w / 2) * width, (cy - h / 2) * height,
                                        (cx + w / 2) * width, (cy + h / 2) * height), where))
            continue
        if min(values) < 0 or max(values) > 1:
            problems.note("clipped_boxes", f"{where}: segment coordinates from {min(values):g} to "
                                           f"{max(values):g} clipped to [0, 1]")
            values = [min(max(v, 0.0), 1.0) for v in values]
        shapes.append(polygon_shape(label, [v * width for v in values[0::2]],
                                    [v * height for v in values[1::2]], where))
    return shapes
