"""Resolving a run: config files, flags, overrides and a saved run's config -> one frozen :class:`Run`.

Every setting whose value depends on others is decided here, once:

- ``model.pretrained`` unset: ``torchvision``'s ImageNet weights, ``none`` on
  the built-in ``shapes`` data (:func:`default_pretrained`);
- ``model.norm`` / ``model.freeze_at`` unset: frozen BN and stem + res2 frozen
  when fine-tuning, GroupNorm and nothing frozen from scratch
  (:meth:`DetectorConfig.with_defaults`);
- ``data.test`` unset: the evaluation split paired with ``data.train`` (:func:`test_split`);
- ``runtime.device`` unset: ``cuda`` when this machine has one, else ``cpu``;
- ``model.num_classes``: the training data's class count;
- the linear scaling rule: ``solver`` adapted to ``ims_per_batch``.

Who resizes training images is decided by the data: the training pipeline
resizes (multi-scale, boxes and masks together), and the trainer tells the
model so (``DetectionDataset.resizes_images``). Normalisation and
``stride_in_1x1`` are properties of the backbone weights, read when the model
is built (:func:`detection.run.build_run`), which records them in ``config.yaml``.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from backbones.errors import UserError

from ..config import SECTIONS, TrainConfig, load_config, merge, parse_overrides, read_sections
from ..data.catalog import PAIRS, evaluation_split
from ..engine.checkpointer import Checkpointer
from ..engine.device import resolve_device
from ..engine.run_folder import CONFIG_FILE, check_output_folder, config_differences
from ..engine.solver import scale_to_batch
from ..init.architecture import with_source_architecture
from ..init.source import InitSource
from ..init.sources import resolve_init
from ..init.surgery import check_class_names
from .configs import find_config
from .data import training_data

SHAPES_NAMES = PAIRS["shapes"] + ("shapes",)


@dataclass(frozen=True)
class Run:
    """A fully resolved training run. ``config`` is what the run folder's config.yaml records."""
    config: TrainConfig
    class_names: tuple                   # the training data's classes, label l is class_names[l - 1]
    output: Optional[Path] = None        # the run folder
    resume: bool = False                 # continue the run in ``output``
    overwrite: bool = False              # start again in an ``output`` that holds a run
    resuming: bool = False               # ``resume`` and ``output`` holds a checkpoint: weights come from it
    # ``model.init``'s detector, read once (its weights go into the model when it is built); None when
    # the run starts from backbone weights or resumes from a checkpoint
    init_source: Optional[InitSource] = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return self.config.to_dict()


def default_pretrained(train: str) -> str:
    """The backbone weights of a run that names none: ImageNet's, except on the synthetic ``shapes`` data."""
    return "none" if train in SHAPES_NAMES else "torchvision"


def test_split(data) -> str:
    """The data a run is evaluated on: ``data.test``, or the evaluation split paired with ``data.train``."""
    return data.test or evaluation_split(data.train)


def config_overrides(flags: Optional[dict] = None, overrides: Sequence[str] = ()) -> dict:
    """{section: {key: value}} of the flags (None values left out) with ``section.key=value`` strings over them."""
    sections = {s: {k: v for k, v in values.items() if v is not None} for s, values in (flags or {}).items()}
    return merge({s: v for s, v in sections.items() if v}, parse_overrides(list(overrides)))


def resolve_config(config=None, flags: Optional[dict] = None, overrides: Sequence[str] = (),
                   saved: Union[None, str, Path, dict] = None, log=print) -> TrainConfig:
    """The settings of a run with every default decided except those the data and weights decide.

    ``config``: a YAML file (a path, or a shipped config's name such as ``configs/shapes_demo.yaml``).
    ``flags``: {section: {key: value or None}}. ``overrides``: ``section.key=value`` strings, applied last.
    ``saved``: the config of the run being resumed or evaluated (its config.yaml, or a checkpoint's mapping);
    ``config`` may not contradict its model and data.
    """
    changes = config_overrides(flags, overrides)
    path = find_config(config) if config is not None else None
    cfg = load_config(path if path is not None else saved, changes)
    if saved is not None and path is not None:
        differences = config_differences(load_config(saved).to_dict(), cfg.to_dict())
        if differences:
            raise UserError(f"--resume: {config} differs from the run's {saved} in {'; '.join(differences)}; "
                            f"resume without --config to use the saved one (key=value overrides for deliberate "
                            f"changes) or pass another --output")
    solver = scale_to_batch(cfg.solver)
    if solver is not cfg.solver and log is not None:
        log(f"linear scaling rule: batch {cfg.solver.ims_per_batch} vs reference {cfg.solver.reference_batch_size}"
            f" -> base_lr {solver.base_lr:g}, max_iter {solver.max_iter}, steps {list(solver.steps)}")
    return dataclasses.replace(
        cfg, solver=solver,
        model=cfg.model.with_defaults(default_pretrained(cfg.data.train)).validate(),
        data=dataclasses.replace(cfg.data, test=test_split(cfg.data)),
        runtime=dataclasses.replace(cfg.runtime, device=resolve_device(cfg.runtime.device)))


def resolve_run(config=None, flags: Optional[dict] = None, overrides: Sequence[str] = (), saved=None,
                output=None, resume: bool = False, overwrite: bool = False, class_names=None, log=print) -> Run:
    """The one place a run is resolved: (config file, flags, overrides, saved config) -> a frozen :class:`Run`.

    ``output`` with ``resume``: the run folder's config.yaml is the saved config (unless ``saved`` is given)
    and its last checkpoint, if any, provides the weights. ``class_names``: the classes when they are known
    (a checkpoint's); otherwise they are read from the training data.
    """
    output = Path(output) if output is not None else None
    if output is not None:
        check_output_folder(output, resume, overwrite)
    if saved is None and resume and output is not None and (output / CONFIG_FILE).is_file():
        saved = output / CONFIG_FILE
    cfg = resolve_config(config, flags, overrides, saved, log)
    resuming = bool(resume and output is not None and Checkpointer(output).last() is not None)
    source = None
    if cfg.model.init and not resuming:
        source = resolve_init(cfg.model.init)
        data = training_data(cfg.data.train)
        model_cfg, notes = with_source_architecture(cfg.model, source, explicit_model_keys(config, flags, overrides),
                                                    set(config_overrides(flags).get("model", {})),
                                                    data_has_masks=has_masks(data))
        cfg = dataclasses.replace(cfg, model=model_cfg)
        if log is not None:
            for line in notes:
                log(line)
    if class_names is None:
        class_names = training_data(cfg.data.train).class_names
    if source is not None:
        check_class_names(class_names, f"the classes of {cfg.data.train}")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_classes=len(class_names)).validate())
    return Run(cfg, tuple(class_names), output, resume, overwrite, resuming, source)


def has_masks(data) -> bool:
    """Whether every object of the data has an instance mask (what Mask R-CNN training needs)."""
    return all(r.segmentations is not None for r in data.records if len(r.boxes))


def explicit_model_keys(config=None, flags: Optional[dict] = None, overrides: Sequence[str] = ()) -> set:
    """The model settings the user set: in the config file (with its bases) or on the command line."""
    keys = set(config_overrides(flags, overrides).get("model", {}))
    path = find_config(config) if config is not None else None
    if path is not None:
        raw, _ = read_sections(path, None, SECTIONS)
        keys |= set(raw.get("model") or {})
    return keys
