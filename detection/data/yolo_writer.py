"""Loaded data -> the Ultralytics YOLO layout: ``images/<split>/``, ``labels/<split>/<stem>.txt``, ``data.yaml``.

One line per object, class index 0..C-1 then coordinates normalised by the
image's width and height, with 6 decimals (within 1e-6 of the image size):
``cls cx cy w h`` for a box, or, when the object has a mask, the segment form
``cls x1 y1 x2 y2 ...`` (one polygon: a mask is traced and its parts and holes
joined, :mod:`.mask_polygons`; readers take the box as the polygon's extent).
YOLO has no ignore flag: crowd / difficult objects are left out, as
Ultralytics' own COCO converter does, and counted. An image without objects
gets an empty label file. ``data.yaml`` holds ``names`` (index: name), ``nc``
and each split's image folder; it has no ``path:``, so Ultralytics takes its
own folder as the dataset root.
"""
from pathlib import Path

import yaml

from backbones.atomic_files import write_text

from .mask_polygons import object_polygon


def write_yolo(parts, dst, with_masks) -> tuple:
    """Write each ``(split, data, file names)`` of ``parts``; returns the dataset-YAML keys (see conversion)."""
    per_split = {}
    for split, data, names in parts:
        for record, name in zip(data.records, names):
            lines = label_lines(record, with_masks)
            write_text(dst / "labels" / split / f"{Path(name).stem}.txt", "".join(f"{line}\n" for line in lines))
        per_split[split] = {"split": split}
    class_names = parts[0][1].class_names
    spec = {**{split: f"images/{split}" for split, _, _ in parts},
            "nc": len(class_names), "names": dict(enumerate(class_names))}
    write_text(dst / "data.yaml", "# Ultralytics YOLO dataset, written by tools/convert_dataset.py\n"
               + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return {"root": "."}, per_split


def label_lines(record, with_masks=True) -> list:
    """The label-file lines of one record's trainable objects."""
    lines = []
    width, height = record.width, record.height
    for k, (box, label, ignore) in enumerate(zip(record.boxes.tolist(), record.labels.tolist(),
                                                 record.ignore.tolist())):
        if ignore:
            continue
        segmentation = record.segmentations[k] if with_masks and record.segmentations else None
        polygon = object_polygon(segmentation, height, width) if segmentation else []
        if len(polygon) >= 6:
            coordinates = [v / (width if i % 2 == 0 else height) for i, v in enumerate(polygon)]
        else:
            x1, y1, x2, y2 = box
            coordinates = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
        lines.append(" ".join([str(label - 1)] + [f"{min(max(v, 0.0), 1.0):.6f}" for v in coordinates]))
    return lines
