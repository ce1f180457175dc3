"""Named datasets: ``shapes_train``, ``shapes_val``, the COCO splits, and train/test pairs.

A name resolves to a :class:`DatasetSpec` (where the annotations and images
are). Pair names (``shapes``, ``coco``) stand for a training split and an
evaluation split. Data lives under ``$DETECTION_DATASETS`` (default
``./datasets``); the built-in ``shapes`` set is generated there on first use.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from backbones.errors import UserError, check_choice

from . import shapes


def data_root() -> Path:
    return Path(os.environ.get("DETECTION_DATASETS", "datasets"))


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    annotations: Path          # COCO-format JSON
    images: Path               # folder the JSON's file_name entries are relative to
    prepare: Optional[Callable] = None  # makes the data if it can (shapes), else None
    how_to_get: str = "see datasets/README.md"

    def ensure_ready(self):
        if self.prepare is not None:
            self.prepare()
        for path in (self.annotations, self.images):
            if not path.exists():
                raise UserError(f"dataset {self.name}: {path} does not exist; {self.how_to_get}")
        return self


# The generator settings behind shapes_train/shapes_val (tests swap in a smaller set).
SHAPES_CONFIG = shapes.ShapesConfig()


def _shapes(split):
    def spec():
        root = data_root() / "shapes"
        return DatasetSpec(f"shapes_{split}", root / f"instances_{split}.json", root / "JPEGImages",
                           prepare=lambda: shapes.ensure_generated(root, SHAPES_CONFIG))
    return spec


def _coco(name, split):
    def spec():
        root = data_root() / "coco"
        return DatasetSpec(name, root / "annotations" / f"instances_{split}.json", root / split,
                           how_to_get="download COCO as described in datasets/README.md")
    return spec


DATASETS = {
    "shapes_train": _shapes("train"),
    "shapes_val": _shapes("val"),
    "coco_2017_train": _coco("coco_2017_train", "train2017"),
    "coco_2017_val": _coco("coco_2017_val", "val2017"),
}
# name -> (training split, evaluation split)
PAIRS = {"shapes": ("shapes_train", "shapes_val"), "coco": ("coco_2017_train", "coco_2017_val")}


def names() -> list:
    return sorted(DATASETS) + sorted(PAIRS)


def evaluation_split(name: str) -> str:
    """The split to evaluate a model trained on ``name`` (a pair or its training split)."""
    for train, test in PAIRS.values():
        if name == train:
            return test
    return PAIRS[name][1] if name in PAIRS else name


def get_dataset_spec(name: str, role: str = "train") -> DatasetSpec:
    """Resolve ``name`` for ``role`` ("train" or "test"): a pair name picks its split."""
    check_choice("dataset", name, names())
    if name in PAIRS:
        name = PAIRS[name][0 if role == "train" else 1]
    return DATASETS[name]().ensure_ready()
