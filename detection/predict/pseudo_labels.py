"""Predictions as annotations a user can correct and train on (pseudo-labels).

``coco``: ``annotations.json`` (images relative to the inputs' common
folder; Mask R-CNN masks as polygons, which annotation tools such as CVAT
and labelme edit) plus ``dataset.yaml``; ``voc``: ``Annotations/*.xml``
(labelImg's and the VOC devkit's format), ``ImageSets/Main/pseudo.txt``,
``JPEGImages/`` (hard links to the images, copies where links are not
possible) plus ``dataset.yaml``. Either ``dataset.yaml`` is what
``tools/check_dataset.py`` and ``tools/train_det.py --dataset`` take.
Only detections scoring at least the threshold become objects.
"""
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import yaml
from pycocotools import mask as mask_utils

from backbones.atomic_files import write_text
from backbones.errors import UserError

FORMATS = ("coco", "voc")


def _kept(result, threshold) -> list:
    return [k for k, score in enumerate(result["scores"]) if score >= threshold]


def polygons(rle) -> list:
    """A mask's outer contours as COCO polygons [[x1, y1, x2, y2, ...], ...] (three points or more each)."""
    mask = mask_utils.decode(rle).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def image_root(results) -> Path:
    """The deepest folder holding every image (their file names in the annotations are relative to it)."""
    return Path(os.path.commonpath([str(Path(r["path"]).resolve().parent) for r in results]))


def _yaml(folder: Path, spec: dict) -> Path:
    return write_text(folder / "dataset.yaml", yaml.safe_dump(spec, sort_keys=False))


def write_coco(folder, results, class_names, category_ids, threshold=0.5) -> Path:
    folder = Path(folder)
    root = image_root(results)
    images, annotations = [], []
    for image_id, result in enumerate(results, start=1):
        file_name = Path(result["path"]).resolve().relative_to(root).as_posix()
        images.append({"id": image_id, "file_name": file_name, "width": result["width"], "height": result["height"]})
        for k in _kept(result, threshold):
            x1, y1, x2, y2 = (float(v) for v in result["boxes"][k])
            ann = {"id": len(annotations) + 1, "image_id": image_id,
                   "category_id": int(category_ids[int(result["labels"][k]) - 1]),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                   "score": float(result["scores"][k])}  # kept for the person correcting them
            if "rles" in result:
                shapes = polygons(result["rles"][k])
                if not shapes:  # a mask too thin for a polygon adds nothing to its box
                    continue
                ann["segmentation"] = shapes
                ann["area"] = float(mask_utils.area(result["rles"][k]))
            annotations.append(ann)
    categories = [{"id": int(c), "name": n} for c, n in zip(category_ids, class_names)]
    write_text(folder / "annotations.json",
               json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return _yaml(folder, {"format": "coco", "annotations": "annotations.json",
                          "images": os.path.relpath(root, folder.resolve()), "classes": list(class_names)})


def _voc_xml(result, stem, image_ext, class_names, keep) -> str:
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "filename").text = f"{stem}{image_ext}"
    size = ET.SubElement(annotation, "size")
    for tag, value in (("width", result["width"]), ("height", result["height"]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for k in keep:
        x1, y1, x2, y2 = (float(v) for v in result["boxes"][k])
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = class_names[int(result["labels"][k]) - 1]
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        # 0-based continuous -> VOC's 1-based inclusive pixels (the inverse of detection.data.voc_format)
        for tag, value in (("xmin", round(x1) + 1), ("ymin", round(y1) + 1), ("xmax", round(x2)), ("ymax", round(y2))):
            ET.SubElement(box, tag).text = str(int(value))
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="unicode") + "\n"


def _link(source: Path, target: Path):
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another disk, or a file system without hard links
        shutil.copy2(source, target)


def write_voc(folder, results, class_names, threshold=0.5) -> Path:
    folder = Path(folder)
    stems = [Path(r["path"]).stem for r in results]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise UserError(f"VOC names images by file stem, and {', '.join(repeated[:3])} name more than one image; "
                        f"use --pseudo-labels coco")
    extensions = sorted({Path(r["path"]).suffix.lower() for r in results})
    if len(extensions) > 1:
        raise UserError(f"a VOC folder holds images of one extension, these have {', '.join(extensions)}; "
                        f"use --pseudo-labels coco")
    (folder / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for result, stem in zip(results, stems):
        keep = _kept(result, threshold)
        write_text(folder / "Annotations" / f"{stem}.xml", _voc_xml(result, stem, extensions[0], class_names, keep))
        _link(Path(result["path"]), folder / "JPEGImages" / f"{stem}{extensions[0]}")
    write_text(folder / "ImageSets" / "Main" / "pseudo.txt", "".join(f"{s}\n" for s in stems))
    return _yaml(folder, {"format": "voc", "root": ".", "split": "pseudo", "classes": list(class_names),
                          "image_ext": extensions[0]})


def write_pseudo_labels(fmt, folder, results, class_names, category_ids, threshold=0.5) -> Path:
    """Write ``results`` (Predictor results of image files) as a dataset in ``fmt``; returns its dataset.yaml."""
    if not results:
        raise UserError("no image was predicted on, so there are no pseudo-labels to write")
    if any(r.get("frame") is not None or not r.get("path") for r in results):
        raise UserError("pseudo-labels are written for image files; extract the video's frames as images first "
                        "(e.g. `ffmpeg -i clip.mp4 frames/%06d.jpg`)")
    if fmt == "coco":
        return write_coco(folder, results, class_names, category_ids, threshold)
    return write_voc(folder, results, class_names, threshold)
