"""What one experiment needs before it can run: data, weights, a checkpoint, a GPU.

Each need says whether it is met and, when not, what to do, so a suite over
missing data lists every experiment with its own message instead of stopping
at the first error.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from backbones.errors import UserError
from backbones.registry import resolve_pretrained

from ..data.catalog import README_HINT, missing_files
from ..run.configs import find_config
from ..run.resolve import resolve_config


@dataclass(frozen=True)
class Need:
    what: str
    met: Optional[bool]           # None: cannot tell before trying (a download, a server)
    fix: str = ""
    blocking: bool = True         # False: shown for information (what training would need, in --eval-only)
    unknown: str = "on first use"  # the mark when ``met`` is None

    def line(self) -> str:
        mark = {True: "ok", False: "MISSING", None: self.unknown}[self.met]
        return f"{self.what}: {mark}" + (f" ({self.fix})" if self.fix and self.met is not True else "")


def training_config(experiment):
    """The experiment's resolved training settings (its YAML plus its overrides; the run layer's defaults)."""
    path = find_config(experiment.config)
    if not path.is_file():
        raise UserError(f"experiment {experiment.name}: config {experiment.config} does not exist")
    return resolve_config(path, overrides=list(experiment.overrides), log=None)


def dataset_need(name, role) -> Need:
    missing = missing_files(name, role)
    return Need(f"dataset {name}", not missing,
                f"{', '.join(str(p) for p in missing)} not found; {README_HINT}" if missing else "")


def weights_need(backbone, pretrained) -> Optional[Need]:
    """ImageNet weights of a registry source, or a local file; None when training from scratch."""
    weights = resolve_pretrained(backbone, pretrained)
    if weights is None:
        return None
    what = f"{backbone} weights '{pretrained}'"
    if weights.local_path is not None:
        return Need(what, weights.local_path.is_file(), f"{weights.local_path} does not exist")
    if weights.cache_path().is_file():
        return Need(what, True)
    return Need(what, None, f"downloaded from {weights.url} into {weights.cache_path()}; without network, "
                            f"put the file there")


def training_needs(experiment, cfg, blocking=True) -> list:
    """Data, ImageNet weights (unless the suite pretrains them) and a GPU (when the run is GPU-sized)."""
    result = [dataset_need(cfg.data.train, "train")]
    if not experiment.uses_pretraining:
        need = weights_need(experiment.backbone, cfg.model.pretrained)
        if need:
            result.append(need)
    if experiment.gpu_hours:
        result.append(Need("a CUDA GPU", torch.cuda.is_available(),
                           f"{experiment.gpu_hours}; CPU training would take months"))
    return [dataclasses.replace(n, blocking=blocking) for n in result]


def checkpoint_path(experiment, run_dir: Path) -> Path:
    """The checkpoint an experiment evaluates: its own, or, for a test-time variant, the one it names."""
    if experiment.checkpoint_from:
        return run_dir.parent / experiment.checkpoint_from / "model_final.pth"
    return run_dir / "model_final.pth"


def needs(experiment, run_dir: Path, eval_only: bool, suite_name: str = "SUITE") -> list:
    """Every need of ``experiment`` (run folder ``run_dir``), met or not. With ``eval_only`` the
    checkpoint and test data block; when the checkpoint is missing, what training it needs follows."""
    cfg = training_config(experiment)
    if experiment.ensemble_of:  # the members' predictions, written when they were evaluated
        members = [run_dir.parent / name / f"model_final.{cfg.data.test}.predictions.json"
                   for name in experiment.ensemble_of]
        return [Need(f"predictions {path}", path.is_file(), f"evaluate {name} first: python tools/reproduce.py "
                                                           f"--suite {suite_name} --only {name}")
                for name, path in zip(experiment.ensemble_of, members)] + [dataset_need(cfg.data.test, "test")]
    checkpoint = checkpoint_path(experiment, run_dir)
    trained_by = experiment.checkpoint_from or experiment.name
    checkpoint_need = Need(f"checkpoint {checkpoint}", checkpoint.is_file(),
                           f"train it: python tools/reproduce.py --suite {suite_name} --only {trained_by}")
    if experiment.checkpoint_from:  # a test-time variant: the checkpoint of the experiment it names
        return [checkpoint_need, dataset_need(cfg.data.test, "test")]
    result = []
    if eval_only:
        result.append(checkpoint_need)
    else:
        result += training_needs(experiment, cfg)
    result.append(dataset_need(cfg.data.test, "test"))
    if experiment.scored_by_server:
        result.append(Need("scoring", None, "test annotations are not public: submit the written results "
                                            "files to the PASCAL VOC evaluation server",
                           unknown="by the evaluation server"))
    if eval_only and not checkpoint.is_file():
        result += [dataclasses.replace(n, what=f"to train it, {n.what}")
                   for n in training_needs(experiment, cfg, blocking=False)]
    return result


def unmet(need_list) -> list:
    """The needs that stop the experiment."""
    return [n for n in need_list if n.met is False and n.blocking]
