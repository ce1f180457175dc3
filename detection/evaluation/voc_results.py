"""The VOC devkit's results files: ``comp4_det_<split>_<class>.txt``, one per class.

Each line is ``image_id score x1 y1 x2 y2`` with VOC's 1-based pixel boxes.
Writing converts from our 0-based continuous boxes (``to_voc_boxes``);
reading converts back, so predictions round-trip exactly up to the printed
precision.
"""
import math
from pathlib import Path

import numpy as np

from backbones.errors import UserError

from .voc import from_voc_boxes, to_voc_boxes


def results_path(folder, split, class_name) -> Path:
    return Path(folder) / f"comp4_det_{split}_{class_name}.txt"


def write_voc_results(folder, predictions, class_names, split) -> list:
    """Write one file per class; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = {name: [] for name in class_names}
    for image_id, pred in predictions.items():
        boxes = to_voc_boxes(pred["boxes"])
        for box, score, label in zip(boxes, pred["scores"], pred["labels"]):
            lines[class_names[int(label) - 1]].append(
                f"{image_id} {float(score):.6f} {box[0]:.2f} {box[1]:.2f} {box[2]:.2f} {box[3]:.2f}\n")
    paths = []
    for name, rows in lines.items():
        path = results_path(folder, split, name)
        path.write_text("".join(rows))
        paths.append(path)
    return paths


def read_voc_results(folder, split, class_names, image_ids) -> dict:
    """Read the per-class files back into per-image predictions (0-based continuous boxes).

    A class without a file has no detections. Unknown image ids, malformed
    lines, NaN or inverted boxes get an error naming the file and line.
    """
    known = {str(i): i for i in image_ids}
    per_image = {i: ([], [], []) for i in image_ids}
    for label, name in enumerate(class_names, start=1):
        path = results_path(folder, split, name)
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            image_id, score, box = _parse_line(line, path, number, known)
            boxes, scores, labels = per_image[image_id]
            boxes.append(box)
            scores.append(score)
            labels.append(label)
    return {i: {"boxes": from_voc_boxes(np.array(b, dtype=np.float64).reshape(-1, 4)),
                "scores": np.array(s, dtype=np.float64), "labels": np.array(lab, dtype=np.int64)}
            for i, (b, s, lab) in per_image.items()}


def _parse_line(line, path, number, known):
    fields = line.split()
    where = f"{path}:{number}"
    if len(fields) != 6:
        raise UserError(f"{where}: expected 'image_id score x1 y1 x2 y2', got {line.strip()!r}")
    if fields[0] not in known:
        raise UserError(f"{where}: image {fields[0]!r} is not in the dataset")
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        raise UserError(f"{where}: score and box must be numbers, got {line.strip()!r}") from None
    score, box = values[0], values[1:]
    if any(math.isnan(v) or math.isinf(v) for v in values):
        raise UserError(f"{where}: NaN or infinite value in {line.strip()!r}")
    if box[2] < box[0] - 1 or box[3] < box[1] - 1:
        raise UserError(f"{where}: inverted box {box}")
    return known[fields[0]], score, box
