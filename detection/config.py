"""Training configuration: one dataclass per concern, read from YAML and validated.

A YAML file holds up to five sections, each optional::

    model:   {backbone: resnet18, neck: fpn, mask: true, ...}   # DetectorConfig
    solver:  {schedule: 1x, ims_per_batch: 16, ...}            # SolverConfig
    data:    {train: shapes, num_workers: 2, ...}               # DataConfig
    runtime: {amp: bf16, channels_last: true, ...}              # RuntimeConfig
    test:    {tta: {scales: [640, 800, 960], merge: vote}}      # TestConfig

Unknown keys, wrong types and values outside a setting's range (:data:`RANGES`)
are rejected before anything runs, naming the key, the file and the closest
valid keys or the valid range.
"""
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import yaml

from backbones.errors import UserError, check_choice
from backbones.ranges import Range, above, at_least, between, check_settings

from .data.sampler import SAMPLERS
from .detector import DetectorConfig, plain_dict
from .engine.solver import apply_schedule
from .tta import check_tta_mapping
from .yaml_file import read_yaml_mapping


@dataclass(frozen=True)
class SolverConfig:
    # a named schedule (1x, 2x, 3x, paper_coco, paper_voc; see engine/solver.py) fills base_lr,
    # max_iter, steps, warmup_iters and reference_batch_size wherever the config leaves them unset
    schedule: Optional[str] = None
    ims_per_batch: int = 2          # images per iteration over all processes (split across ranks)
    reference_batch_size: Optional[int] = None  # set: the linear scaling rule adapts lr/iterations to ims_per_batch
    optimizer: str = "sgd"          # "sgd" (the paper's) or "adamw" (converges faster on short runs)
    base_lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm: Optional[float] = None  # for norm layers' scale/shift; None: weight_decay
    weight_decay_bias: Optional[float] = None  # for biases; None: weight_decay
    max_iter: int = 90000
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    steps: Sequence[int] = (60000, 80000)  # multiply the LR by gamma at these iterations
    gamma: float = 0.1
    clip_grad_norm: Optional[float] = None
    checkpoint_period: int = 5000
    keep_last: int = 3              # periodic checkpoints kept (0: all); final and best are always kept
    eval_period: int = 0            # evaluate on data.test every N iterations and at the end; 0: never
    log_period: int = 20
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    train: str = "coco"             # dataset name or dataset .yaml (see detection.data.catalog)
    test: Optional[str] = None       # None: the evaluation split paired with ``train`` (decided by the run layer)
    num_workers: int = 2
    hflip_prob: float = 0.5
    color_jitter: float = 0.0       # brightness/contrast/saturation strength; 0 disables it
    skip_unreadable_images: bool = False  # warn and use the next image instead of stopping
    filter_empty_images: bool = True  # leave images without trainable objects out of training
    sampler: str = "default"        # default (each image once an epoch) | repeat_factor (rare classes repeated, LVIS)
    repeat_threshold: float = 0.001  # repeat_factor: classes in fewer than this fraction of images are repeated


AMP_MODES = ("none", "fp16", "bf16")


@dataclass(frozen=True)
class RuntimeConfig:
    device: Optional[str] = None     # cpu | cuda; None: cuda when available (decided by the run layer)
    amp: str = "none"                # none | fp16 (CUDA, with a grad scaler) | bf16 (CUDA or CPU)
    channels_last: bool = False      # NHWC convolutions (faster with AMP on recent GPUs)
    # cuDNN autotuning pays off only when input shapes repeat; multi-scale training and mixed
    # aspect ratios give new shapes nearly every iteration, hence off by default (as detectron2)
    cudnn_benchmark: bool = False


@dataclass(frozen=True)
class TestConfig:
    # test-time augmentation for evaluation with --tta and the Predictor: {scales, flip, merge, iou, max_size},
    # keys as detection.tta.TTAConfig; keys left out take --tta's defaults (detection.tta.default_tta)
    tta: Optional[dict] = None


SECTIONS = {"model": DetectorConfig, "solver": SolverConfig, "data": DataConfig, "runtime": RuntimeConfig,
            "test": TestConfig}

_PROBABILITY = between(0, 1)
_POSITIVE_COUNT = at_least(1)

# the values each numeric setting may take (list settings: each item), checked with the types when a config
# is built; every int/float field has one (tests/test_config.py checks), except model.pixel_mean (any number)
RANGES = {
    "model": {
        "num_classes": _POSITIVE_COUNT,
        "freeze_at": at_least(0, "0: nothing frozen"),  # the upper bound depends on the backbone (it checks)
        "fpn_channels": _POSITIVE_COUNT,
        "anchor_sizes": above(0),
        "aspect_ratios": above(0),
        "box_representation_size": _POSITIVE_COUNT,
        "mask_head_layers": _POSITIVE_COUNT,
        "mask_upsample_channels": _POSITIVE_COUNT,
        "rpn_conv_depth": _POSITIVE_COUNT,
        "backbone_norm_eps": at_least(0, "null: the layers' 1e-5"),
        "min_size": _POSITIVE_COUNT,
        "max_size": _POSITIVE_COUNT,
        "pixel_std": above(0),
        "rpn_pre_nms_top_n_train": _POSITIVE_COUNT,
        "rpn_pre_nms_top_n_test": _POSITIVE_COUNT,
        "rpn_post_nms_top_n_train": _POSITIVE_COUNT,
        "rpn_post_nms_top_n_test": _POSITIVE_COUNT,
        "rpn_batch_size_per_image": _POSITIVE_COUNT,
        "box_batch_size_per_image": _POSITIVE_COUNT,
        "box_score_thresh": _PROBABILITY,
        "box_nms_thresh": between(0, 1, low_open=True),  # an IoU; 1 keeps every box
        "box_detections_per_img": _POSITIVE_COUNT,
    },
    "solver": {
        "ims_per_batch": _POSITIVE_COUNT,
        "reference_batch_size": _POSITIVE_COUNT,
        "base_lr": above(0),
        "momentum": between(0, 1, high_open=True),
        "weight_decay": at_least(0),
        "weight_decay_norm": at_least(0),
        "weight_decay_bias": at_least(0),
        "max_iter": _POSITIVE_COUNT,
        "warmup_iters": at_least(0, "0: no warmup"),
        "warmup_factor": between(0, 1, low_open=True),
        # steps past max_iter are allowed: they never fire, so a short run (--max-iter 2) keeps the schedule
        "steps": Range(1, increasing=True),
        "gamma": between(0, 1, low_open=True),
        "clip_grad_norm": above(0, "null: no clipping"),
        "checkpoint_period": _POSITIVE_COUNT,
        "keep_last": at_least(0, "0: keep all"),
        "eval_period": at_least(0, "0: never"),
        "log_period": _POSITIVE_COUNT,
        "seed": at_least(0),
    },
    "data": {
        "num_workers": at_least(0, "0: load in the main process"),
        "hflip_prob": _PROBABILITY,
        "color_jitter": at_least(0, "0: off"),
        "repeat_threshold": between(0, 1, low_open=True),
    },
}


@dataclass(frozen=True)
class TrainConfig:
    model: DetectorConfig = field(default_factory=DetectorConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    data: DataConfig = field(default_factory=DataConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    test: TestConfig = field(default_factory=TestConfig)

    def to_dict(self) -> dict:
        return {name: plain_dict(getattr(self, name)) for name in SECTIONS}


def _check_type(where, key, value, annotation):
    """Reject values whose type cannot be what the field holds (ints where a float fits)."""
    args = typing.get_args(annotation)
    if value is None:
        if type(None) in args:
            return
        raise UserError(f"{where}: {key} may not be empty (null)")
    if typing.get_origin(annotation) is typing.Union:  # Optional[X], Union[...]: try each
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check_type(where, key, value, arg)
            except UserError as err:
                errors.append(err)
        raise errors[0]
    base = typing.get_origin(annotation) or annotation
    if base in (Sequence, list, tuple, typing.get_origin(Sequence[int])):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: {key} must be a list, got {value!r}")
        for item in value:  # Sequence[int] and the like: check every element
            for arg in typing.get_args(annotation)[:1]:
                _check_type(where, f"{key} element", item, arg)
        return
    ok = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(base)
    if ok and (not isinstance(value, ok) or (base is not bool and isinstance(value, bool))):
        raise UserError(f"{where}: {key} must be {base.__name__}, got {value!r} ({type(value).__name__})")


def _section(cls, values, where):
    if not isinstance(values, dict):
        raise UserError(f"{where} must be a mapping of keys to values, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        check_choice(f"key in {where}", key, fields)
        _check_type(where, key, value, hints[key])
    return cls(**values)


def merge(base: dict, child: dict) -> dict:
    """Child values win; sections (mappings) merge key by key."""
    merged = dict(base)
    for key, value in child.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def read_config_file(path, _seen=()) -> dict:
    """A YAML config with its ``_base_`` files (a path or a list, relative to it) merged underneath."""
    path = Path(path).resolve()
    if path in _seen:
        raise UserError(f"{path} inherits from itself through _base_")
    raw = read_yaml_mapping(path, "config file", "with model/solver/data sections")
    bases = raw.pop("_base_", [])
    merged = {}
    for base in [bases] if isinstance(bases, str) else bases:
        base_path = path.parent / base
        if not base_path.is_file():
            raise UserError(f"{path}: _base_ file {base_path} does not exist")
        merged = merge(merged, read_config_file(base_path, _seen + (path,)))
    return merge(merged, raw)


def parse_overrides(items) -> dict:
    """``["solver.base_lr=0.02", "model.min_size=[640,800]"]`` -> {section: {key: value}} (values as YAML)."""
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise UserError(f"override {item!r} must look like section.key=value, e.g. solver.base_lr=0.02")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"override {item!r}: {text!r} is not a valid value") from None
        overrides.setdefault(section, {})[name] = value
    return overrides


def read_sections(path, overrides: Optional[dict], sections: dict):
    """``(raw, where)``: the {section: {key: value}} of ``path`` (YAML with ``_base_``; None: empty; a mapping:
    those sections, e.g. a checkpoint's saved config) with ``overrides`` merged over it, every section name
    checked against ``sections``; ``where`` names the source."""
    if isinstance(path, dict):
        raw, where = dict(path), "saved config"
    else:
        raw, where = ({}, "config") if path is None else (read_config_file(path), str(path))
    for key, values in raw.items():
        check_choice(f"section in {where}", key, sections)
        if values is not None and not isinstance(values, dict):
            raise UserError(f"{where} [{key}] must be a mapping of keys to values, got {values!r}")
    for section in overrides or {}:
        check_choice("override section", section, sections)
    return merge({k: v or {} for k, v in raw.items()}, overrides or {}), where


def build_sections(raw: dict, where: str, sections: dict, ranges: Optional[dict] = None,
                   given: Optional[dict] = None) -> dict:
    """{name: the section's dataclass built from ``raw[name]``, keys and types checked, and the values
    against ``ranges`` ({name: {key: Range}}, e.g. :data:`RANGES`)}. ``given``: the command line's
    {section: {key: value}}, so that a value out of range names where it came from."""
    built = {}
    for name, cls in sections.items():
        built[name] = _section(cls, raw.get(name) or {}, f"{where} [{name}]")
        check_settings(name, vars(built[name]), (ranges or {}).get(name, {}), where, given)
    return built


def load_config(path=None, overrides: Optional[dict] = None) -> TrainConfig:
    """Read ``path`` (YAML, with ``_base_`` inheritance; or a mapping of sections) if given, then apply
    ``overrides`` ({section: {key: value}}). Settings left unset stay unset: ``detection.run`` resolves them."""
    raw, where = read_sections(path, overrides, SECTIONS)
    solver = raw.get("solver") or {}
    if solver.get("schedule") is not None:
        _check_type(f"{where} [solver]", "schedule", solver["schedule"], str)
        raw["solver"] = apply_schedule(solver)
    cfg = TrainConfig(**build_sections(raw, where, SECTIONS, RANGES, overrides))
    check_choice("runtime.amp", cfg.runtime.amp, AMP_MODES)
    check_choice("data.sampler", cfg.data.sampler, SAMPLERS)
    if cfg.test.tta is not None:
        check_tta_mapping(cfg.test.tta, f"{where}: test.tta")
    return cfg
