"""The data of a run: the training set (loaded once per process) and the evaluation set."""
import dataclasses
from functools import lru_cache
from pathlib import Path

from backbones.errors import UserError

from ..data.catalog import data_root, is_dataset_file, load_dataset
from ..data.dataset import DetectionDataset, require_image_files
from ..data.sampler import repeat_factors
from ..data.transforms import train_augmentation
from ..engine import distributed


def training_data(name):
    """The training split ``name`` as loaded records; resolving and building a run share one load.

    The load is cached per process under what identifies the data: a dataset YAML by its absolute path
    and modification time (a relative name means another file in another folder), a named dataset
    with $DETECTION_DATASETS.
    """
    key = str(name)
    if is_dataset_file(key) and Path(key).is_file():
        key = f"{Path(key).resolve()}@{Path(key).stat().st_mtime_ns}"
    return _load_training(key, str(name), str(data_root()))


@lru_cache(maxsize=4)
def _load_training(key, name, root):  # the key and the data root identify the data; name is what to load
    return load_dataset(name, "train")


def report_problems(data):
    p = data.problems
    if p.clipped_boxes or p.dropped_boxes or p.images_without_objects:
        print(f"{data.name}: clipped {p.clipped_boxes} boxes to their image, dropped {p.dropped_boxes} empty "
              f"boxes, {p.images_without_objects} images without objects (see tools/check_dataset.py)")


def training_dataset(cfg) -> DetectionDataset:
    """The augmented training set of a resolved config: resized by the pipeline (multi-scale), flipped."""
    data = training_data(cfg.data.train)
    if distributed.is_main():
        report_problems(data)
    if cfg.data.filter_empty_images:
        data = dataclasses.replace(data, records=[r for r in data.records if (~r.ignore).any()])
    if not cfg.data.skip_unreadable_images:
        require_image_files(data.records, data.name)
    elif distributed.is_main():  # missing files will be skipped like unreadable ones: say so once
        require_image_files(data.records, data.name, warn=True)
    augment = train_augmentation(cfg.model.min_size, cfg.model.max_size, cfg.data.hflip_prob, cfg.data.color_jitter,
                                 seed=cfg.solver.seed)
    return DetectionDataset(data, augment=augment, with_masks=cfg.model.mask,
                            skip_unreadable=cfg.data.skip_unreadable_images)


def training_repeat_factors(cfg, dataset):
    """Per image of the training set, how often an epoch shows it (``data.sampler: repeat_factor``);
    None (each image once) for the default sampler."""
    if cfg.data.sampler != "repeat_factor":
        return None
    return repeat_factors(dataset.records, cfg.data.repeat_threshold)


def evaluation_dataset(name, class_names, model="the model") -> DetectionDataset:
    """The evaluation split ``name`` (a split, a pair's evaluation split, or a dataset YAML's val section),
    whose classes must be ``class_names``, those ``model`` predicts; its images must all be there."""
    dataset = open_evaluation_dataset(name)
    if list(dataset.class_names) != list(class_names):
        raise UserError(f"{model} predicts classes {list(class_names)}, but {name} has {dataset.class_names}")
    require_image_files(dataset.records, dataset.name)
    return dataset


def open_evaluation_dataset(name) -> DetectionDataset:
    """The evaluation split ``name``, whatever its classes (saved predictions name their own categories;
    scoring them needs no image files)."""
    return DetectionDataset(load_dataset(name, "test"))
