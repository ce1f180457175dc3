"""Named datasets and custom dataset files.

``load_dataset(name, role)`` returns :class:`DetectionData` for

- a registered split (``coco_2017_val``, ``voc_2007_test``, ``shapes_train``...),
- a pair name (``coco``, ``voc``, ``shapes``): its training split for
  ``role="train"``, its evaluation split for ``role="test"`` (the paper's
  settings: COCO train/val, VOC 07+12 trainval / 2007 test),
- a YAML file describing a user's COCO- or VOC-format data (see datasets/README.md).

Data lives under ``$DETECTION_DATASETS`` (default ``./datasets``); the
built-in ``shapes`` set is generated there on first use.

Loading is strict: data the loaders cannot use unambiguously (ids used twice)
is refused. ``strict=False`` loads it anyway, its errors noted in
``problems``, for ``check_dataset`` to list them all.
"""
import os
from pathlib import Path

from backbones.errors import UserError, check_choice

from ..yaml_file import read_yaml_mapping
from . import shapes
from .coco_format import load_coco
from .file_formats import read_spec
from .records import DetectionData
from .voc_format import load_voc, voc_union

README_HINT = "see datasets/README.md for the expected layout and how to get the data"
# The generator settings behind shapes_train/shapes_val (tests swap in a smaller set).
SHAPES_CONFIG = shapes.ShapesConfig()


def data_root() -> Path:
    return Path(os.environ.get("DETECTION_DATASETS", "datasets"))


def _shapes(split):
    def load(strict=True):
        root = shapes.ensure_generated(data_root() / "shapes", SHAPES_CONFIG)
        return load_coco(root / f"instances_{split}.json", root / "JPEGImages", f"shapes_{split}", strict)
    load.files = lambda: []  # generated on first use
    return load


def _coco(name, annotation_file, image_folder):
    def files():
        root = data_root() / "coco"
        return [root / "annotations" / annotation_file, root / image_folder]

    def load(strict=True):
        annotations, images = (_exists(name, path) for path in files())
        return load_coco(annotations, images, name, strict)
    load.files = files
    return load


def _voc(name, year, split, annotated=True):
    def files():
        root = data_root() / "VOCdevkit" / f"VOC{year}"
        return [root, root / "ImageSets" / "Main" / f"{split}.txt"]

    def load(strict=True):
        return load_voc(_exists(name, files()[0]), split, name=name, annotated=annotated, strict=strict)
    load.files = files
    return load


def _union(name, parts):
    def load(strict=True):
        return voc_union([DATASETS[p](strict) for p in parts], name)
    load.files = lambda: [path for part in parts for path in DATASETS[part].files()]
    return load


def _exists(name, path: Path) -> Path:
    if not path.exists():
        raise UserError(f"dataset {name}: {path} does not exist; {README_HINT}")
    return path


DATASETS = {
    "shapes_train": _shapes("train"),
    "shapes_val": _shapes("val"),
    "coco_2017_train": _coco("coco_2017_train", "instances_train2017.json", "train2017"),
    "coco_2017_val": _coco("coco_2017_val", "instances_val2017.json", "val2017"),
    "coco_2014_train": _coco("coco_2014_train", "instances_train2014.json", "train2014"),
    "coco_2014_val": _coco("coco_2014_val", "instances_val2014.json", "val2014"),  # the paper's 40k val
    "coco_2014_valminusminival": _coco("coco_2014_valminusminival", "instances_valminusminival2014.json",
                                       "val2014"),
    "coco_2014_minival": _coco("coco_2014_minival", "instances_minival2014.json", "val2014"),
    "voc_2007_trainval": _voc("voc_2007_trainval", 2007, "trainval"),
    "voc_2007_test": _voc("voc_2007_test", 2007, "test"),
    "voc_2012_trainval": _voc("voc_2012_trainval", 2012, "trainval"),
    "voc_2012_test": _voc("voc_2012_test", 2012, "test", annotated=False),  # scored by the PASCAL server
}
# The paper's VOC training sets (Sec. 4.3 / Table 7): 07+12 for the 2007 test, 07++12 for the 2012 test.
DATASETS["voc_0712_trainval"] = _union("voc_0712_trainval", ["voc_2007_trainval", "voc_2012_trainval"])
DATASETS["voc_07++12"] = _union("voc_07++12", ["voc_2007_trainval", "voc_2007_test", "voc_2012_trainval"])

# name -> (training split, evaluation split)
PAIRS = {
    "shapes": ("shapes_train", "shapes_val"),
    "coco": ("coco_2017_train", "coco_2017_val"),
    "voc": ("voc_0712_trainval", "voc_2007_test"),
}


def names() -> list:
    return sorted(DATASETS) + sorted(PAIRS)


def evaluation_split(name: str) -> str:
    """The split to evaluate a model trained on ``name`` (a pair or its training split)."""
    for train, test in PAIRS.values():
        if name == train:
            return test
    return PAIRS[name][1] if name in PAIRS else name


def is_dataset_file(name: str) -> bool:
    return str(name).endswith((".yaml", ".yml"))


def missing_files(name: str, role: str = "train") -> list:
    """The files and folders a named split needs that are not under ``data_root()`` (none for ``shapes``,
    which is generated, and for dataset YAML files, which are checked when loaded)."""
    if is_dataset_file(name):
        return []
    check_choice("dataset", name, names() + ["<path to a dataset .yaml>"])
    if name in PAIRS:
        name = PAIRS[name][0 if role == "train" else 1]
    missing = []
    for path in dict.fromkeys(DATASETS[name].files()):  # a union may list a folder twice
        if not path.exists() and not any(m in path.parents for m in missing):  # a missing folder covers its files
            missing.append(path)
    return missing


def load_dataset(name: str, role: str = "train", strict: bool = True) -> DetectionData:
    """Load ``name`` for ``role`` ("train" or "test"); ``strict=False`` notes errors instead of raising them."""
    if is_dataset_file(name):
        return load_dataset_file(name, role, strict)
    check_choice("dataset", name, names() + ["<path to a dataset .yaml>"])
    if name in PAIRS:
        name = PAIRS[name][0 if role == "train" else 1]
    return DATASETS[name](strict)


# --- custom datasets from a YAML file (the formats: detection.data.file_formats) ---------------
def load_dataset_file(path, role="train", strict=True) -> DetectionData:
    """A user's data described by YAML; ``train:``/``val:`` sections give both splits.

    Relative paths resolve against the YAML file's folder.
    """
    path = Path(path)
    spec = read_yaml_mapping(path, "dataset file", "(format, annotations/images or root/split, ...)")
    section = "train" if role == "train" else "val"
    if section in spec or "train" in spec or "val" in spec:
        if section not in spec:
            raise UserError(f"{path} has no '{section}:' section, needed to {role} on it")
        shared = {k: v for k, v in spec.items() if k not in ("train", "val")}
        spec = {**shared, **(spec[section] or {})}
    return _load_spec(spec, path, section, strict)


def _load_spec(spec, path, section, strict):
    name = spec.get("name") or f"{path.stem}_{section}"
    return read_spec(spec, path.parent, name, path, strict)