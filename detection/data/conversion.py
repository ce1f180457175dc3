"""Writing loaded data (:class:`DetectionData`) out in another format: the part every writer shares.

:func:`convert` takes one or two splits (``[(split name, data)]``, e.g. a
dataset YAML's ``train:`` and ``val:``), gives every image a file name that
is unique in the output (case-insensitively, and by stem, since annotation
files are named after it), hard-links each image into the output tree
(copies it where a link is impossible: another disk), lets the format's
writer (:data:`WRITERS`) write its annotation files, and writes
``dataset.yaml`` so that any tool's ``--dataset DST/dataset.yaml`` reads the
result with the same readers. Every file is written whole or not at all
(:mod:`backbones.atomic_files`); an output folder that is not empty is
refused unless ``overwrite`` is given.
"""
import os
import shutil
from pathlib import Path

import yaml

from backbones.atomic_files import write_atomically, write_text
from backbones.errors import UserError

from .coco_writer import write_coco
from .voc_writer import check_voc, write_voc
from .yolo_writer import write_yolo

# format -> write(parts, dst, with_masks) -> (keys shared by the splits, {split: its own keys}); parts are
# [(split, data, output file names)], the images already in place
WRITERS = {"coco": write_coco, "voc": write_voc, "yolo": write_yolo}
# format -> check(parts, with_masks): what the format cannot hold, refused before anything is written
CHECKS = {"voc": check_voc}
# where each format keeps a split's images, relative to the output folder
IMAGE_FOLDERS = {"coco": "images/{split}", "voc": "JPEGImages", "yolo": "images/{split}"}
DATASET_FILE = "dataset.yaml"


def convert(parts, fmt, dst, with_masks=True, overwrite=False) -> Path:
    """Write ``parts`` ([(split, data)]: one split, or a training and an evaluation split) as ``fmt`` under
    ``dst``; returns the dataset YAML written there. ``with_masks=False`` writes boxes only."""
    dst = Path(dst)
    check_destination(dst, overwrite)
    _check_parts(parts)
    missing = [r.file_name for _, data in parts for r in data.records if not Path(r.file_name).is_file()]
    if missing:  # before anything is written
        raise UserError(f"image file {missing[0]} does not exist ({len(missing)} of "
                        f"{sum(len(data.records) for _, data in parts)} are missing); the converted dataset needs "
                        f"every image (python tools/check_dataset.py lists the missing ones)")
    names = output_names([r for _, data in parts for r in data.records], spaces=fmt != "voc")
    named, start = [], 0
    for split, data in parts:
        named.append((split, data, names[start:start + len(data.records)]))
        start += len(data.records)
    if fmt in CHECKS:
        CHECKS[fmt](named, with_masks)
    for split, data, files in named:
        folder = dst / IMAGE_FOLDERS[fmt].format(split=split)
        for record, name in zip(data.records, files):
            place_image(record.file_name, folder / name)
    shared, per_split = WRITERS[fmt](named, dst, with_masks)
    return write_dataset_yaml(dst, fmt, shared, per_split, [s for s, _ in parts])


def check_destination(dst: Path, overwrite: bool):
    if dst.exists() and not dst.is_dir():
        raise UserError(f"the output {dst} is a file; name a folder to convert into")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise UserError(f"the output folder {dst} is not empty; convert into a new folder, or pass --overwrite to "
                        f"write over the files of the same names there (others are left as they are)")


def _check_parts(parts):
    splits = [split for split, _ in parts]
    if len(set(splits)) != len(splits):
        raise UserError(f"the training and evaluation data are both split {splits[0]!r}; one split name "
                        f"cannot hold both (give them different splits)")
    first = parts[0][1]
    for _, data in parts[1:]:
        if list(data.class_names) != list(first.class_names) or list(data.category_ids) != list(first.category_ids):
            raise UserError(f"{first.name} and {data.name} have different classes ({list(first.class_names)} vs "
                            f"{list(data.class_names)}); one converted dataset needs one class list")


def output_names(records, spaces=True) -> list:
    """A file name per record: its image's own name, made unique (``a.jpg``, ``a_2.jpg``...) by stem and
    case-insensitively (annotation files take the stem; some disks ignore case); ``spaces=False`` replaces
    whitespace (VOC split lists are whitespace-separated)."""
    taken, names = set(), []
    for record in records:
        path = Path(record.file_name)
        stem = path.stem if spaces else "_".join(path.stem.split())
        name, count = stem, 1
        while name.lower() in taken:
            count += 1
            name = f"{stem}_{count}"
        taken.add(name.lower())
        names.append(name + path.suffix)
    return names


def place_image(source, target: Path):
    """``target`` becomes a hard link to ``source`` (a copy where a link cannot be made)."""
    source = Path(source)
    write_atomically(target, lambda tmp: _link_or_copy(source, tmp), needed=source.stat().st_size)


def _link_or_copy(source: Path, tmp: Path):
    try:
        os.link(source, tmp)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, tmp)


def write_dataset_yaml(dst: Path, fmt, shared, per_split, splits) -> Path:
    """``dst/dataset.yaml``: one split's keys at the top level (training and evaluation read it), or two splits
    as ``train:`` and ``val:`` sections."""
    spec = {"format": fmt, **shared}
    if len(splits) == 1:
        spec.update(per_split[splits[0]])
    else:
        spec.update({section: per_split[split] for section, split in zip(("train", "val"), splits)})
    # one line per key, lists and sections in flow style ({split: val}): short, and readable as YAML
    lines = [yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=10_000,
                            default_flow_style=None if isinstance(value, (list, dict)) else False)
             for key, value in spec.items()]
    text = f"# written by tools/convert_dataset.py; train with --dataset {dst / DATASET_FILE}\n" + "".join(lines)
    return write_text(dst / DATASET_FILE, text)

