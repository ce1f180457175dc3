"""Loaded data -> a PASCAL VOC tree: ``Annotations/<stem>.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``,
and with instance masks ``SegmentationObject/`` + ``SegmentationClass/`` PNGs listed in
``ImageSets/Segmentation/<split>.txt``.

The inverse of :mod:`.voc_format`: VOC boxes are whole 1-based inclusive
pixels, so each continuous x1 y1 x2 y2 edge is rounded to the nearest pixel
boundary (halves up) and written ``xmin = x1 + 1, ymin = y1 + 1, xmax = x2,
ymax = y2``; a box narrower than half a pixel keeps one pixel. ``difficult``
is the ``ignore`` flag. The segmentation PNGs are VOC's (:mod:`.voc_masks`):
palette indices, in ``SegmentationObject`` k for the k-th ``<object>``, in
``SegmentationClass`` the class's index in the class list; where masks
overlap, the smaller object is painted last (a pixel holds one object).
Data with masks gets PNGs for every image (blank where it has no objects),
all listed in ``ImageSets/Segmentation/``, and ``masks: true`` in its
dataset YAML.
"""
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from backbones.atomic_files import write_atomically, write_text
from backbones.errors import UserError

from .mask_polygons import decode

VOID = 255  # the index VOC keeps for boundaries: no object may take it


def write_voc(parts, dst, with_masks) -> tuple:
    """Write each ``(split, data, file names)`` of ``parts``; returns the dataset-YAML keys (see conversion)."""
    check_voc(parts, with_masks)
    suffixes = {Path(name).suffix for _, _, names in parts for name in names}
    per_split = {}
    for split, data, names in parts:
        # data with masks: every image gets its PNGs (blank without objects), so all are in the Segmentation list
        masks = with_masks and any(r.segmentations is not None for r in data.records)
        stems = [Path(name).stem for name in names]
        for record, name, stem in zip(data.records, names, stems):
            write_text(dst / "Annotations" / f"{stem}.xml", voc_xml(record, name, data.class_names, masks))
            if masks:
                write_masks(dst, stem, record)
        lines = "".join(f"{stem}\n" for stem in stems)
        write_text(dst / "ImageSets" / "Main" / f"{split}.txt", lines)
        if masks:
            write_text(dst / "ImageSets" / "Segmentation" / f"{split}.txt", lines)
        per_split[split] = {"split": split, **({"masks": True} if masks else {})}
    suffix = suffixes.pop() if suffixes else ".jpg"
    return {"root": ".", "classes": list(parts[0][1].class_names),
            **({} if suffix == ".jpg" else {"image_ext": suffix})}, per_split


def check_voc(parts, with_masks):
    """What a VOC tree cannot hold, refused before anything is written: images of several extensions (the
    tree has one, ``image_ext``), more objects in an image than an instance PNG has indices."""
    suffixes = {Path(name).suffix for _, _, names in parts for name in names}
    if len(suffixes) > 1:
        raise UserError(f"the images have several extensions ({', '.join(sorted(suffixes))}) and a VOC tree "
                        f"has one (image_ext); convert to coco or yolo instead, or convert the images first")
    for _, data, _ in parts:
        for record in data.records:
            if with_masks and record.segmentations is not None and len(record.boxes) >= VOID:
                raise UserError(f"image {record.file_name} has {len(record.boxes)} objects; a VOC instance PNG "
                                f"holds at most {VOID - 1}; convert to coco or yolo, or with --no-masks")


def voc_box(box, width, height) -> list:
    """[xmin, ymin, xmax, ymax] (1-based inclusive pixels) of a continuous x1 y1 x2 y2 box."""
    out = []
    for low, high, size in ((box[0], box[2], width), (box[1], box[3], height)):
        first, last = math.floor(float(low) + 0.5), math.floor(float(high) + 0.5)  # pixel boundaries
        if last <= first:  # under half a pixel wide: keep the pixel it lies in
            first = min(first, size - 1)
            last = first + 1
        out.append((first + 1, last))
    return [out[0][0], out[1][0], out[0][1], out[1][1]]


def voc_xml(record, name, class_names, segmented=False) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = name
    size = ET.SubElement(root, "size")
    for tag, value in (("width", record.width), ("height", record.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = str(int(segmented))
    for box, label, difficult in zip(record.boxes.tolist(), record.labels.tolist(), record.ignore.tolist()):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = class_names[label - 1]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(difficult))
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), voc_box(box, record.width, record.height)):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_masks(dst, stem, record):
    """``SegmentationObject/<stem>.png`` and ``SegmentationClass/<stem>.png`` of the record's masks."""
    objects = np.zeros((record.height, record.width), np.uint8)
    classes = np.zeros_like(objects)
    masks = [None if s is None else decode(s, record.height, record.width).astype(bool)
             for s in record.segmentations or [None] * len(record.boxes)]
    for k in sorted((k for k, m in enumerate(masks) if m is not None), key=lambda k: -int(masks[k].sum())):
        objects[masks[k]] = k + 1
        classes[masks[k]] = record.labels[k]
    for folder, pixels in (("SegmentationObject", objects), ("SegmentationClass", classes)):
        image = Image.fromarray(pixels, mode="P")
        image.putpalette(voc_palette())
        write_atomically(dst / folder / f"{stem}.png", lambda tmp, image=image: image.save(tmp, format="PNG"))


def voc_palette() -> list:
    """The VOC devkit's colour map (``labelcolormap``): index i's bits spread over R, G and B."""
    palette = []
    for index in range(256):
        r = g = b = 0
        for bit in range(8):
            r |= ((index >> (3 * bit)) & 1) << (7 - bit)
            g |= ((index >> (3 * bit + 1)) & 1) << (7 - bit)
            b |= ((index >> (3 * bit + 2)) & 1) << (7 - bit)
        palette += [r, g, b]
    return palette
