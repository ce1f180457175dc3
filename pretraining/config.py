"""Classification pretraining settings: one dataclass per section, read from YAML and validated.

The defaults are the ImageNet recipe of He et al. 2015, *Deep Residual
Learning for Image Recognition*, Sec. 3.4 (``configs/pretrain/imagenet_resnet_paper.yaml``
spells them out with the paper's words); ``configs/pretrain/shapes_crops.yaml``
is the built-in data's recipe (object crops of ``shapes``, what ``make demo`` runs).

A YAML file holds up to five sections, each optional::

    model:   {backbone: resnet50, norm: bn}
    solver:  {optimizer: sgd, base_lr: 0.1, batch_size: 256, epochs: 120, schedule: plateau, ...}
    data:    {dataset: imagenet, crop_size: 224, scale_min: 256, scale_max: 480, ...}
    eval:    {resize: 256, final: 10crop, period: 1}
    runtime: {device: cuda}

The run layer reads them (``detection.run.pretrain``): ``_base_`` inheritance,
``section.key=value`` overrides and the checks of unknown keys (with the
closest valid ones) and wrong types are those of the detector's training config;
each numeric setting's valid range is declared in :data:`RANGES` and checked by
:func:`validate`.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Sequence

from backbones.errors import UserError, check_choice
from backbones.norm import NORMS
from backbones.ranges import Range, above, at_least, between, check_settings

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("plateau", "step", "cosine")
EVAL_MODES = ("10crop", "center")


@dataclass(frozen=True)
class PretrainModelConfig:
    backbone: str = "resnet50"          # a registry name (backbones.names()); the paper trains 18 to 152 layers
    norm: str = "bn"                    # bn | gn (frozen_bn cannot train)
    shortcut: Optional[str] = None      # ResNets: option A, B or C of Sec. 3.3; None: the backbone's default (B)
    # each residual block's last BN scale starts at 0, so the block starts as the identity (Goyal et al. 2017,
    # torchvision's zero_init_residual): not in the paper; plain nets have no identity and are left as they are
    zero_init_residual: bool = False


@dataclass(frozen=True)
class PretrainSolverConfig:
    optimizer: str = "sgd"              # sgd (the paper's, with momentum) | adamw
    base_lr: float = 0.1                # Sec. 3.4: "starts from 0.1"
    momentum: float = 0.9               # Sec. 3.4 (SGD only)
    weight_decay: float = 1e-4          # Sec. 3.4
    batch_size: int = 256               # Sec. 3.4: "a mini-batch size of 256" (over all devices)
    epochs: int = 120                   # Sec. 3.4: "up to 60 x 10^4 iterations", ~120 epochs of 1.28M images
    # plateau: multiply the lr by gamma when the validation top-1 error has not fallen by plateau_threshold
    # for plateau_patience validated epochs (Sec. 3.4: "divided by 10 when the error plateaus"; the paper
    # gives no patience); step: by gamma at each epoch in steps; cosine: cosine decay to 0 per iteration
    schedule: str = "plateau"
    gamma: float = 0.1
    plateau_patience: int = 5
    plateau_threshold: float = 0.001    # absolute, in top-1 error (0.001 = 0.1 points)
    min_lr: float = 0.0
    steps: Sequence[int] = (30, 60, 90)  # epochs (schedule: step)
    warmup_fraction: float = 0.0        # linear warmup over this fraction of all iterations (the paper: none)
    seed: int = 0                       # initial weights, data order and augmentation


@dataclass(frozen=True)
class PretrainDataConfig:
    # an ImageFolder root (train/<class>/*.jpg and val/<class>/*.jpg; a relative path that does not exist
    # is also looked up under $DETECTION_DATASETS, default ./datasets), or a detection dataset name or
    # dataset .yaml (shapes, coco, ...), whose object crops become the classification set
    dataset: str = "imagenet"
    train_split: str = "train"          # ImageFolder sub-folders
    val_split: str = "val"
    num_workers: int = 8                # object crops: must be 0 (their augmentation RNG lives in the main process)
    crop_size: int = 224                # training crop side (Sec. 3.4: 224x224); object crops: the crop's side
    # scale augmentation (Sec. 3.4, after Simonyan & Zisserman): the shorter side resized to a random
    # length in [scale_min, scale_max], then a random crop_size square and a random horizontal flip
    scale_min: int = 256
    scale_max: int = 480
    hflip: bool = True
    # the "standard color augmentation" of Krizhevsky et al. 2012 (AlexNet's PCA lighting noise): the
    # std of the random weights of the RGB principal components of ImageNet; 0 disables it
    pca_lighting_std: float = 0.1
    context: float = 0.25               # object crops: the box grown by this fraction on each side


@dataclass(frozen=True)
class PretrainEvalConfig:
    resize: int = 256                   # evaluation: shorter side resized to this (Sec. 3.4 / Table 3: 256)
    crop_size: Optional[int] = None     # None: data.crop_size
    final: str = "10crop"               # after training: 10crop (Sec. 3.4: "the standard 10-crop testing") | center
    period: int = 1                     # centre-crop validation every N epochs; 0: only the final evaluation
    batch_size: Optional[int] = None    # None: solver.batch_size (images; a 10-crop batch holds a tenth as many)


@dataclass(frozen=True)
class PretrainRuntimeConfig:
    device: Optional[str] = None        # cpu | cuda | cuda:N; None: cuda when available


SECTIONS = {"model": PretrainModelConfig, "solver": PretrainSolverConfig, "data": PretrainDataConfig,
            "eval": PretrainEvalConfig, "runtime": PretrainRuntimeConfig}

_POSITIVE_COUNT = at_least(1)

# the values each numeric setting may take (list settings: each item); every int/float field has one
# (tests/test_pretraining.py checks)
RANGES = {
    "solver": {
        "base_lr": above(0),
        "momentum": between(0, 1, high_open=True),
        "weight_decay": at_least(0),
        "batch_size": _POSITIVE_COUNT,
        "epochs": _POSITIVE_COUNT,
        "gamma": between(0, 1, low_open=True, high_open=True),  # plateau's ReduceLROnPlateau needs < 1
        "plateau_patience": at_least(0),
        "plateau_threshold": at_least(0),
        "min_lr": at_least(0),
        "steps": Range(1, increasing=True),
        "warmup_fraction": between(0, 1, high_open=True, note="0: no warmup"),
        "seed": at_least(0),
    },
    "data": {
        "num_workers": at_least(0, "0: load in the main process"),
        "crop_size": _POSITIVE_COUNT,
        "scale_min": _POSITIVE_COUNT,
        "scale_max": _POSITIVE_COUNT,
        "pca_lighting_std": at_least(0, "0: off"),
        "context": at_least(0),
    },
    "eval": {
        "resize": _POSITIVE_COUNT,
        "crop_size": _POSITIVE_COUNT,
        "period": at_least(0, "0: only the final evaluation"),
        "batch_size": _POSITIVE_COUNT,
    },
}


@dataclass(frozen=True)
class PretrainConfig:
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    solver: PretrainSolverConfig = field(default_factory=PretrainSolverConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    eval: PretrainEvalConfig = field(default_factory=PretrainEvalConfig)
    runtime: PretrainRuntimeConfig = field(default_factory=PretrainRuntimeConfig)

    def to_dict(self) -> dict:
        """JSON/YAML-friendly values (tuples become lists)."""
        return {name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(section).items()}
                for name, section in ((n, getattr(self, n)) for n in SECTIONS)}

    @property
    def eval_crop_size(self) -> int:
        return self.eval.crop_size or self.data.crop_size


def validate(cfg: PretrainConfig, where="config", given=None):
    """Value checks the types cannot express: each setting in its range (:data:`RANGES`), then the names
    and the relations between settings; each message names the setting and what it may be. ``given``:
    the {section: {key: value}} the command line set, so an out-of-range value names where it came from."""
    for name, ranges in RANGES.items():
        check_settings(name, vars(getattr(cfg, name)), ranges, where, given)
    s, d, e = cfg.solver, cfg.data, cfg.eval
    check_choice(f"solver.optimizer in {where}", s.optimizer, OPTIMIZERS)
    check_choice(f"solver.schedule in {where}", s.schedule, SCHEDULES)
    check_choice(f"eval.final in {where}", e.final, EVAL_MODES)
    check_choice(f"model.norm in {where}", cfg.model.norm, [n for n in NORMS if n != "frozen_bn"])
    checks = [
        (d.scale_min <= d.scale_max, f"data.scale_min ({d.scale_min}) must not exceed data.scale_max ({d.scale_max})"),
        (d.crop_size <= d.scale_min, f"data.crop_size ({d.crop_size}) must not exceed data.scale_min "
                                     f"({d.scale_min}): a crop cannot be larger than the resized image"),
        (cfg.eval_crop_size <= e.resize, f"the evaluation crop ({cfg.eval_crop_size}) must not exceed "
                                         f"eval.resize ({e.resize})"),
        (s.schedule != "plateau" or e.period > 0,
         "solver.schedule=plateau lowers the lr when the validation error stops falling, so it needs "
         "eval.period >= 1; set eval.period or use schedule step or cosine"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(f"{where}: {message}")
    return cfg
