"""The VOC devkit's results files: ``comp4_det_<split>_<class>.txt``, one per class.

Each line is ``image_id score x1 y1 x2 y2`` with VOC's 1-based pixel boxes.
Writing converts from our 0-based continuous boxes (``to_voc_boxes``);
reading converts back, so predictions round-trip exactly up to the printed
precision.
"""
import math
import re
from pathlib import Path

import numpy as np

from backbones.atomic_files import write_text
from backbones.errors import UserError

from ..engine.run_folder import record_if_run_folder
from .results_file import warn
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
        paths.append(write_text(record_if_run_folder(results_path(folder, split, name)), "".join(rows)))
    return paths


def read_voc_results(folder, split, class_names, image_ids) -> dict:
    """Read the per-class files back into per-image predictions (0-based continuous boxes).

    A folder without a single file of the split is an error that lists what it
    holds: a wrong prefix or split would otherwise score mAP 0 without a word.
    A class without its file is warned about and has no detections; a file of
    the split for a class the dataset lacks is warned about and skipped.
    Unknown image ids, malformed lines, NaN or inverted boxes get an error
    naming the file and line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of devkit results files (comp4_det_{split}_<class>.txt)")
    paths = {name: results_path(folder, split, name) for name in class_names}
    if not any(path.is_file() for path in paths.values()):
        raise UserError(_no_results_files(folder, split, class_names))
    for name, path in paths.items():
        if not path.is_file():
            warn(f"{folder} has no {path.name}: class {name} is evaluated as having no detections")
    _warn_other_classes(folder, split, class_names)
    known = {str(i): i for i in image_ids}
    per_image = {i: ([], [], []) for i in image_ids}
    for label, path in enumerate(paths.values(), start=1):
        if not path.is_file():
            continue
        for number, line in enumerate(_read_lines(path), start=1):
            if not line.strip():
                continue
            image_id, score, box = _parse_line(line, f"{path}:{number}", known, split)
            boxes, scores, labels = per_image[image_id]
            boxes.append(box)
            scores.append(score)
            labels.append(label)
    return {i: {"boxes": from_voc_boxes(np.array(b, dtype=np.float64).reshape(-1, 4)),
                "scores": np.array(s, dtype=np.float64), "labels": np.array(lab, dtype=np.int64)}
            for i, (b, s, lab) in per_image.items()}


_SPLIT_OF = re.compile(r"comp4_det_(.+)_([^_]+)\.txt$")  # split, class (a class name without '_')


def _no_results_files(folder, split, class_names) -> str:
    """What the folder holds instead (a few names and a count), and the split its files are of, if another."""
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    held = f"it holds {len(names)} files: {shown}" if names else "it is empty"
    splits = {m.group(1) for m in map(_SPLIT_OF.match, names) if m and m.group(2) in class_names}
    other = splits.pop() if len(splits) == 1 else None
    hint = f" (files of split {other!r}? pass --split {other})" if other else ""
    return (f"{folder} holds no devkit results files comp4_det_{split}_<class>.txt (one per class, e.g. "
            f"{results_path(folder, split, class_names[0]).name}); {held}{hint}")


def _warn_other_classes(folder, split, class_names):
    """Files of the split whose class the dataset lacks (a typo, or another label set): said, not read."""
    prefix = f"comp4_det_{split}_"
    for path in sorted(folder.iterdir()):
        name = path.name[len(prefix):-len(".txt")]
        if path.name.startswith(prefix) and path.name.endswith(".txt") and name not in class_names:
            warn(f"{path}: {name} is not one of the classes ({', '.join(class_names)}); "
                 f"its detections are not evaluated")


def _read_lines(path) -> list:
    """The file's lines. utf-8-sig: a byte-order mark, which Windows tools write, would otherwise become part
    of the first image id; a file in another encoding is named."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        utf16 = path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
        why = "it looks like UTF-16, as PowerShell's '>' writes" if utf16 else f"{err.reason} at byte {err.start}"
        raise UserError(f"{path} is not UTF-8 text ({why}); save it as UTF-8") from None


def _parse_line(line, where, known, split):
    fields = line.split()
    if len(fields) != 6:
        raise UserError(f"{where}: expected 'image_id score x1 y1 x2 y2', got {line.strip()!r}")
    if fields[0] not in known:
        examples = ", ".join(repr(i) for i in list(known)[:3]) + (", ..." if len(known) > 3 else "")
        raise UserError(f"{where}: image {fields[0]!r} is not in split {split} ({len(known)} images, such as "
                        f"{examples})")
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
