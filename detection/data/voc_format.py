"""PASCAL VOC XML annotations -> :class:`DetectionData`.

A VOC tree (``VOC2007/``, ``VOC2012/`` or the built-in ``shapes/``) looks like::

    Annotations/<stem>.xml        one file per image: <size> and <object>s
    JPEGImages/<stem>.jpg
    ImageSets/Main/<split>.txt    one image stem per line

VOC boxes are 1-based *inclusive* pixel indices; they are converted once, here,
to the 0-based continuous coordinates every loader produces (detectron2's
convention): ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax``, so a
one-pixel box ``xmin = xmax = 5`` becomes ``[4, 4, 5, 5]``.  ``difficult``
objects are kept with ``ignore=True`` (evaluated, never trained on).

Images are not opened: sizes come from the XML, and checking image files is
the dataset class's job.
"""
import dataclasses
import math
from pathlib import Path

import numpy as np

from backbones.errors import UserError

from .dataset import image_size
from .records import DataProblems, DetectionData, ImageRecord, note_duplicates
from .voc_masks import object_masks
from .xml_file import parse_xml

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")
# Added to (xmin, ymin, xmax, ymax) to get 0-based continuous (x1, y1, x2, y2).
_VOC_TO_CONTINUOUS = np.array([-1.0, -1.0, 0.0, 0.0])


def load_voc(root, split, class_names=VOC_CLASSES, name=None, image_ext=".jpg", annotated=True,
             strict=True, masks=False) -> DetectionData:
    """Load the images listed in ``ImageSets/Main/<split>.txt`` under the VOC folder ``root``.

    Bad boxes are clipped or dropped and counted in ``problems``; files that
    cannot be read correctly (missing, malformed XML, unknown class, missing
    or non-numeric box field) raise :class:`UserError` naming the file.
    ``annotated=False``: a split without public annotations (VOC 2012 test):
    images only, their sizes read from the image files, for predictions that
    go to the evaluation server. A split list naming an image twice is
    refused, or with ``strict=False`` (``check_dataset``) noted in ``problems``.
    ``masks=True``: the images of ``ImageSets/Segmentation/<split>.txt`` with
    their objects' instance masks from ``SegmentationObject/`` and
    ``SegmentationClass/`` (:mod:`.voc_masks`).
    """
    root = Path(root)
    class_names = list(class_names)
    label_of = _label_map(class_names)
    problems = DataProblems()
    stems = _read_split(root / "ImageSets" / ("Segmentation" if masks else "Main") / f"{split}.txt", problems)
    if strict:
        problems.refuse_errors()
    if annotated:
        records = [_load_record(root, stem, label_of, image_ext, problems, masks) for stem in stems]
    else:
        records = [_unannotated_record(root, stem, image_ext) for stem in stems]
    return DetectionData(
        name=name or f"{root.name}_{split}",
        records=records,
        class_names=class_names,
        category_ids=list(range(1, len(class_names) + 1)),
        problems=problems,
        split=split,
    )


def voc_union(datas, name) -> DetectionData:
    """Concatenate several VOC DetectionData (e.g. VOC2007 + VOC2012 trainval) into one.

    With more than one source every image_id becomes ``"<source name>/<id>"``:
    VOC2007 and VOC2012 stems can coincide, and always prefixing keeps an id's
    form independent of whether a collision happened to occur.
    """
    datas = list(datas)
    if not datas:
        raise UserError(f"voc_union({name!r}) needs at least one dataset")
    first = datas[0]
    for data in datas[1:]:
        if list(data.class_names) != list(first.class_names) or list(data.category_ids) != list(first.category_ids):
            raise UserError(f"cannot combine {first.name!r} and {data.name!r} into {name!r}: "
                            f"their class lists differ ({list(first.class_names)} vs {list(data.class_names)})")
    prefix = len(datas) > 1
    if prefix:
        _check_distinct_names(datas, name)
    records = [dataclasses.replace(r, image_id=f"{d.name}/{r.image_id}") if prefix else r
               for d in datas for r in d.records]
    problems = DataProblems()
    for data in datas:
        problems.add(data.problems)  # each line names its file, so its source stays clear
    return DetectionData(name=name, records=records, class_names=list(first.class_names),
                         category_ids=list(first.category_ids), problems=problems)


# --------------------------------------------------------------------------
# Split list and class map
# --------------------------------------------------------------------------


def _label_map(class_names) -> dict:
    """Class name -> contiguous label 1..C; duplicates would make labels ambiguous."""
    label_of = {n: i + 1 for i, n in enumerate(class_names)}
    if len(label_of) != len(class_names):
        duplicates = sorted({n for n in class_names if class_names.count(n) > 1})
        raise UserError(f"class_names lists {duplicates} more than once; each class must appear once")
    return label_of


def _read_split(path: Path, problems) -> list:
    """Image stems of a split list: the first column, blank lines skipped; a stem listed twice is noted
    in ``problems`` (it would give two records the same image_id)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM from Windows editors
    except FileNotFoundError:
        raise UserError(f"VOC split list {path} does not exist (one image stem per line, next to "
                        f"Annotations/ and JPEGImages/; the data layout is described in "
                        f"datasets/README.md)") from None
    except OSError as err:
        raise UserError(f"cannot read VOC split list {path}: {err}") from None
    # Some lists (e.g. ImageSets/Main/<class>_<split>.txt) carry a second column.
    numbered = [(number, line.split()[0]) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    note_duplicates([stem for _, stem in numbered], problems, lambda stem, where: (
        f"{path}: image {stem!r} is listed {len(where)} times "
        f"(lines {', '.join(str(numbered[k][0]) for k in where)}); list each image once"))
    return [stem for _, stem in numbered]


# --------------------------------------------------------------------------
# One annotation file
# --------------------------------------------------------------------------


def _number(element, tag, path, where) -> float:
    """float(<tag> text) of ``element``; a missing or non-numeric field is a UserError."""
    text = element.findtext(tag)
    try:
        value = float(text)
    except (TypeError, ValueError):
        found = "missing" if text is None else f"not a number ({text!r})"
        raise UserError(f"{path}: {where} <{tag}> is {found}") from None
    if not math.isfinite(value):  # float() accepts "nan"/"inf", which would poison the targets
        raise UserError(f"{path}: {where} <{tag}> is not a finite number ({text!r})")
    return value


def _image_size(root_el, path) -> tuple:
    size = root_el.find("size")
    if size is None:
        raise UserError(f"{path}: <size> is missing (needed for the image width and height)")
    width, height = (int(_number(size, tag, path, "<size>")) for tag in ("width", "height"))
    if width <= 0 or height <= 0:
        raise UserError(f"{path}: <size> gives a non-positive image size {width}x{height}")
    return width, height


def _parse_object(obj, index, path, label_of) -> tuple:
    """(label, difficult, [xmin, ymin, xmax, ymax]) of one <object>, in VOC's own coordinates."""
    where = f"object index {index} (0-based)"
    class_name = (obj.findtext("name") or "").strip()  # some files put newlines around names
    label = label_of.get(class_name)
    if label is None:
        raise UserError(
            f"{path}: {where} has class {class_name!r}, which is not one of the {len(label_of)} "
            f"known classes ({', '.join(label_of)}). For a custom dataset, pass `classes:` with "
            f"the full list of its class names")
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise UserError(f"{path}: {where} ({class_name!r}) has no <bndbox>")
    box = [_number(bndbox, tag, path, f"{where} <bndbox>") for tag in _BOX_FIELDS]
    return label, _is_difficult(obj, path, where), box


def _is_difficult(obj, path, where) -> bool:
    """<difficult> as a bool; missing or empty means 0, as in the VOC devkit."""
    text = obj.findtext("difficult")
    if text is None or not text.strip():
        return False
    return _number(obj, "difficult", path, where) != 0


def _unannotated_record(root, stem, image_ext) -> ImageRecord:
    path = root / "JPEGImages" / f"{stem}{image_ext}"
    try:
        width, height = image_size(path)  # the header only; as displayed (EXIF orientation), as images are read
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}; the split's images must be in JPEGImages/") from None
    return ImageRecord(image_id=stem, file_name=path, width=width, height=height,
                       boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64), ignore=np.zeros(0, bool))


def _load_record(root, stem, label_of, image_ext, problems, masks=False) -> ImageRecord:
    path = root / "Annotations" / f"{stem}.xml"
    root_el = parse_xml(path, "annotation file",
                        f"annotation file not found: {path} (its image is listed in the split list)")
    width, height = _image_size(root_el, path)
    # Direct children only: VOC2012 person layouts nest <part>s that must not become objects.
    parsed = [_parse_object(obj, k, path, label_of) for k, obj in enumerate(root_el.findall("object"))]
    boxes = np.array([p[2] for p in parsed], dtype=np.float64).reshape(-1, 4) + _VOC_TO_CONTINUOUS
    ignore = np.array([p[1] for p in parsed], dtype=bool)
    segmentations = None
    if masks:  # instance k of the PNG is the k-th object: paired before any box is dropped
        segmentations, no_pixels = object_masks(root, stem, [p[0] for p in parsed], width, height, path,
                                                list(label_of), problems)
        ignore |= no_pixels
    keep = _clip_boxes(boxes, width, height, path, problems)
    if not keep.any():
        problems.note("images_without_objects", f"{path}: no usable objects")
    return ImageRecord(
        image_id=stem,
        file_name=root / "JPEGImages" / f"{stem}{image_ext}",
        width=width,
        height=height,
        boxes=boxes[keep].astype(np.float32),
        labels=np.array([p[0] for p in parsed], dtype=np.int64)[keep],
        ignore=ignore[keep],
        segmentations=None if segmentations is None else [s for s, k in zip(segmentations, keep) if k],
    )


def _clip_boxes(boxes, width, height, path, problems) -> np.ndarray:
    """Clip ``boxes`` (N, 4, 0-based continuous) in place; returns the mask of non-empty ones.

    Vectorised over the image's boxes; only the rare bad boxes get a Python-level note.
    """
    original = boxes.copy()
    np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    clipped = (boxes != original).any(axis=1) & keep  # a dropped box counts once, as dropped
    for k in np.flatnonzero(~keep):
        problems.note("dropped_boxes", f"{path}: object index {k} (0-based) is empty after clipping to "
                                       f"{width}x{height}: x1 y1 x2 y2 = {_fmt(original[k])}")
    for k in np.flatnonzero(clipped):
        problems.note("clipped_boxes", f"{path}: object index {k} (0-based) clipped to the "
                                       f"{width}x{height} image: x1 y1 x2 y2 = {_fmt(original[k])}")
    return keep


def _fmt(box) -> str:
    return " ".join(f"{v:g}" for v in box)


# --------------------------------------------------------------------------
# Union helpers
# --------------------------------------------------------------------------


def _check_distinct_names(datas, name):
    """Ids are prefixed with their source's name: two sources of one name would give two images one id."""
    names = [d.name for d in datas]
    if len(set(names)) != len(names):
        raise UserError(f"{name!r}: its sources {names} share a name, so their image ids would collide; "
                        f"give each source its own name")
