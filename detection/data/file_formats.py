"""The formats a dataset YAML file can name (``format: coco``), each a reader into :class:`DetectionData`.

A format lists the YAML keys it takes (besides ``format``, ``name`` and
``classes``, which every format takes), those it needs, and its reader.
Paths in the YAML resolve against the YAML file's folder; the reader gets
them resolved. To add a format, write its reader module in
``detection/data/`` and add one entry to :data:`FORMATS`.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from backbones.errors import UserError, check_choice

from .coco_format import load_coco
from .labelme_format import load_labelme
from .cvat_format import load_cvat
from .masks_format import load_masks
from .records import DetectionData
from .via_format import load_via
from .voc_format import VOC_CLASSES, load_voc
from .yolo_format import load_yolo

COMMON_KEYS = ("format", "name", "classes")


@dataclass(frozen=True)
class DatasetFormat:
    keys: Sequence[str]        # the format's own YAML keys
    required: Sequence[str]    # those that must be given
    paths: Sequence[str]       # keys holding paths (resolved against the YAML file's folder)
    # read(spec with resolved paths, name, classes or None, strict, where) -> DetectionData; ``where``
    # names the YAML file in messages about its keys
    read: Callable[[dict, str, Optional[list], bool, Path], DetectionData]


def _read_coco(spec, name, classes, strict, where) -> DetectionData:
    data = load_coco(spec["annotations"], spec["images"], name, strict)
    if classes is not None and list(classes) != data.class_names:
        raise UserError(f"{where}: classes {classes} differ from the categories in {spec['annotations']} "
                        f"({data.class_names}, in category-id order)")
    return data


def _read_voc(spec, name, classes, strict, where) -> DetectionData:
    masks = spec.get("masks", False)
    if not isinstance(masks, bool):
        raise UserError(f"{where}: masks must be true (the images of ImageSets/Segmentation/<split>.txt with "
                        f"their SegmentationObject/ instance masks) or false, got {masks!r}")
    return load_voc(spec["root"], spec["split"], class_names=classes or VOC_CLASSES, name=name, strict=strict,
                    masks=masks, **({"image_ext": spec["image_ext"]} if "image_ext" in spec else {}))


def _read_masks(spec, name, classes, strict, where) -> DetectionData:
    if not classes:
        raise UserError(f"{where}: format masks needs classes: (one name: every object is of it; more: with "
                        f"class_masks:, a folder of PNGs whose pixel values are class ids 1..C)")
    if len(classes) > 1 and not spec.get("class_masks"):
        raise UserError(f"{where}: classes lists {len(classes)} names but there is no class_masks: folder to tell "
                        f"the objects' classes; give class_masks (PNGs of class ids 1..C) or a single class")
    void, suffix = spec.get("void"), spec.get("mask_suffix", "")
    if void is not None and (isinstance(void, bool) or not isinstance(void, int) or void <= 0):
        raise UserError(f"{where}: void must be a positive whole pixel value such as 255, got {void!r}")
    if not isinstance(suffix, str):
        raise UserError(f"{where}: mask_suffix must be text such as _mask, got {suffix!r}")
    return load_masks(spec["images"], spec["masks"], classes, class_masks=spec.get("class_masks"),
                      mask_suffix=suffix, void=void, name=name, strict=strict)


def _box_masks(spec, where) -> bool:
    value = spec.get("box_masks", False)
    if not isinstance(value, bool):
        raise UserError(f"{where}: box_masks must be true or false, got {value!r}")
    return value


def _read_via(spec, name, classes, strict, where) -> DetectionData:
    attribute = spec.get("class_attribute")
    if attribute is not None and (not isinstance(attribute, str) or not attribute):
        raise UserError(f"{where}: class_attribute must be the name of a VIA region attribute, got {attribute!r}")
    return load_via(spec["annotations"], spec["images"], class_attribute=attribute, classes=classes, name=name,
                    strict=strict, box_masks=_box_masks(spec, where))


def _read_cvat(spec, name, classes, strict, where) -> DetectionData:
    return load_cvat(spec["annotations"], spec["images"], classes=classes, name=name, strict=strict,
                     box_masks=_box_masks(spec, where))


def _read_yolo(spec, name, classes, strict, where) -> DetectionData:
    split = spec["split"]
    if not isinstance(split, str):
        raise UserError(f"{where}: split must be a key of the YOLO data.yaml such as train or val, got {split!r}")
    return load_yolo(spec["root"], split, data=spec.get("data"), classes=classes, name=name, strict=strict,
                     box_masks=_box_masks(spec, where))


def _read_labelme(spec, name, classes, strict, where) -> DetectionData:
    return load_labelme(spec["root"], classes=classes, name=name, strict=strict, box_masks=_box_masks(spec, where))


FORMATS = {
    "coco": DatasetFormat(("annotations", "images"), ("annotations", "images"), ("annotations", "images"),
                          _read_coco),
    "voc": DatasetFormat(("root", "split", "image_ext", "masks"), ("root", "split"), ("root",), _read_voc),
    "via": DatasetFormat(("annotations", "images", "class_attribute", "box_masks"), ("annotations", "images"),
                         ("annotations", "images"), _read_via),
    "cvat": DatasetFormat(("annotations", "images", "box_masks"), ("annotations", "images"),
                          ("annotations", "images"), _read_cvat),
    "masks": DatasetFormat(("images", "masks", "class_masks", "mask_suffix", "void"), ("images", "masks"),
                           ("images", "masks", "class_masks"), _read_masks),
    "yolo": DatasetFormat(("root", "split", "data", "box_masks"), ("root", "split"), ("root", "data"), _read_yolo),
    "labelme": DatasetFormat(("root", "box_masks"), ("root",), ("root",), _read_labelme),
}


def read_spec(spec: dict, base: Path, name: str, where, strict: bool = True) -> DetectionData:
    """Check ``spec`` (one split's YAML keys) against its format and read it; ``where`` names the YAML file."""
    fmt = spec.get("format")
    check_choice(f"format in {where}", fmt, FORMATS)
    entry = FORMATS[fmt]
    for key in spec:
        check_choice(f"key in {where}", key, (*COMMON_KEYS, *entry.keys))
    missing = [k for k in entry.required if not spec.get(k)]
    if missing:
        raise UserError(f"{where}: format {fmt} needs {', '.join(entry.required)}; missing {', '.join(missing)}")
    classes = spec.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise UserError(f"{where}: classes must be a list of names, got {classes!r}")
    resolved = {k: (base / v if k in entry.paths and isinstance(v, str) else v) for k, v in spec.items()}
    return entry.read(resolved, name, classes, strict, where)
