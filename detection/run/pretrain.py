"""Classification pretraining runs: config files, flags and overrides -> a resolved run -> weights.

The data is an ImageFolder tree or a detection dataset, whose object crops
become the classes (the built-in ``shapes``: what ``make demo`` pretrains on).
Without a config, a detection dataset starts from the shipped object-crop
recipe (``configs/pretrain/shapes_crops.yaml``), anything else from the
paper's ImageNet recipe (the dataclass defaults,
``configs/pretrain/imagenet_resnet_paper.yaml``).
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from tqdm import tqdm

from backbones.errors import UserError
from pretraining.config import SECTIONS, PretrainConfig, validate
from pretraining.data import Lighting
from pretraining.run import PretrainSets, folder_sets, run_paths, run_pretraining

from ..config import build_sections, read_sections
from ..data.catalog import data_root, evaluation_split, is_dataset_file, load_dataset, names
from ..data.dataset import DetectionDataset, require_image_files
from ..data.object_crops import ObjectCrops
from ..engine.device import resolve_device
from ..engine.run_folder import check_writable_folder
from ..engine.run_lock import RunLock
from .configs import find_config, shipped_config
from .resolve import config_overrides

PAPER_CONFIG = shipped_config("pretrain/imagenet_resnet_paper.yaml")
CROPS_CONFIG = shipped_config("pretrain/shapes_crops.yaml")  # the default for detection datasets (object crops)


@dataclass(frozen=True)
class PretrainRun:
    """A resolved pretraining run: its settings (device decided), where it writes, and its data's kind."""
    config: PretrainConfig
    output: Path                 # the backbone's weights (.pth); checkpoint and metrics beside it
    object_crops: bool           # the data is a detection dataset (else an ImageFolder tree)
    resume: bool = False
    overwrite: bool = False

    @classmethod
    def from_config(cls, cfg: PretrainConfig, output, resume=False, overwrite=False) -> "PretrainRun":
        """The run of a loaded config: the device decided, the data's kind told from its name."""
        cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime,
                                                                   device=resolve_device(cfg.runtime.device)))
        return cls(cfg, Path(output), is_detection_dataset(cfg.data.dataset), resume, overwrite)


def load_pretrain_config(path=None, overrides: Optional[dict] = None) -> PretrainConfig:
    """Read ``path`` (YAML, with ``_base_`` inheritance) if given, then apply ``overrides`` ({section: {key: value}})."""
    raw, where = read_sections(path, overrides, SECTIONS)
    return validate(PretrainConfig(**build_sections(raw, where, SECTIONS)), where, overrides)


def is_detection_dataset(name) -> bool:
    """A name the detection catalog knows (shapes, coco, voc_2007_test, ...) or a dataset .yaml."""
    return name in names() or is_dataset_file(name)


def resolve_pretrain_run(output, config=None, flags: Optional[dict] = None, overrides: Sequence[str] = (),
                         resume=False, overwrite=False, log=print) -> PretrainRun:
    """The pretraining counterpart of :func:`detection.run.resolve_run`."""
    changes = config_overrides(flags, overrides)
    dataset = (changes.get("data") or {}).get("dataset")
    path = find_config(config)
    if path is None and dataset is not None and is_detection_dataset(dataset):
        path = CROPS_CONFIG
        if log is not None:
            log(f"config: {path} (the object-crop recipe, the default for detection datasets)")
    return PretrainRun.from_config(load_pretrain_config(path, changes), output, resume, overwrite)


def pretrain(run: PretrainRun, progress=True, log=tqdm.write, on_epoch_end=None) -> dict:
    """Build the run's data and train, holding the run's lock; returns the metrics JSON's content (see
    ``pretraining.run``)."""
    check_output_file(run.output)
    with RunLock(run_paths(run.output)["lock"], f"the pretraining run writing {run.output}"):
        sets = crop_sets(run.config) if run.object_crops else folder_sets(run.config, image_folder_root(
            run.config.data.dataset))
        return run_pretraining(run.config, sets, run.output, device=run.config.runtime.device, resume=run.resume,
                               overwrite=run.overwrite, progress=progress, log=log, on_epoch_end=on_epoch_end)


def check_output_file(output: Path):
    """``--output`` names the weights file: not a folder, and somewhere this process can write."""
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; name the weights file to write, e.g. "
                        f"{output / 'backbone.pth'}")
    check_writable_folder(output.parent, "--output")


def image_folder_root(name) -> Path:
    """``name`` as a folder, or under $DETECTION_DATASETS when it is relative and not found as given."""
    path = Path(name).expanduser()
    if path.is_dir() or path.is_absolute():
        return path
    if (data_root() / path).is_dir():
        return data_root() / path
    raise UserError(f"dataset {name!r} is neither an ImageFolder directory (looked in {path.resolve()} and "
                    f"{(data_root() / path).resolve()}; expected train/<class>/*.jpg and val/<class>/*.jpg) "
                    f"nor a detection dataset ({', '.join(names())}, or a dataset .yaml)")


def crop_sets(cfg: PretrainConfig) -> PretrainSets:
    """Object crops of a detection dataset's training split (augmented) and of its evaluation split."""
    d = cfg.data
    if d.num_workers:
        raise UserError(f"data.num_workers={d.num_workers}: object crops are read in the main process "
                        f"(their augmentation RNG lives there); set data.num_workers=0")
    if cfg.eval.final != "center":
        raise UserError("eval.final=10crop needs an ImageFolder dataset (object crops are evaluated as they "
                        "are); set eval.final=center")

    def crops(role, augment):
        data = load_dataset(d.dataset if role == "train" else evaluation_split(d.dataset), role)
        require_image_files(data.records, data.name)  # found now, not an epoch into the run
        return ObjectCrops(DetectionDataset(data), size=d.crop_size, context=d.context, augment=augment)
    train = crops("train", True)
    if d.pca_lighting_std:
        train = Lighting(train, d.pca_lighting_std)
    val = crops("test", False)
    return PretrainSets(train, val, val, f"{len(train)} object crops of {d.dataset}",
                        f"{len(val)} held-out crops ({evaluation_split(d.dataset)})", eval_crops=False)
