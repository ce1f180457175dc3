"""Pretrained weights and the input normalisation that travels with them.

Each registry entry declares its weight sources next to its builder (timm's
pretrained-config idea). A source knows where its file lives, how to check it
and how its inputs must be normalised, so a detector built on those weights
normalises images the way the weights were trained.

Files from outside are untrusted pickles: everything here loads with
``torch.load(weights_only=True)``.
"""
import os
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision

from .errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsUnavailable(UserError):
    """The weights could not be downloaded or read."""


@dataclass(frozen=True)
class PretrainedWeights:
    """One source of weights for one backbone.

    ``mean``/``std`` apply to RGB images scaled to [0, 1], torchvision's convention.
    """

    source: str
    url: str  # torch.hub checks the sha256 prefix in the file name on download
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    input_space: str = "RGB"  # colour order the weights expect
    torchvision_enum: Any = field(default=None, compare=False, repr=False)

    @property
    def file_name(self):
        return os.path.basename(self.url)

    def cache_path(self) -> Path:
        """Where torch.hub caches the file (follows ``TORCH_HOME``)."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    def state_dict(self, progress=True) -> dict:
        """Download (or reuse the cached copy) and load the weights safely."""
        try:
            if self.torchvision_enum is not None:  # torchvision's own weights API
                return self.torchvision_enum.get_state_dict(
                    progress=progress, check_hash=True, weights_only=True, map_location="cpu")
            return torch.hub.load_state_dict_from_url(
                self.url, progress=progress, check_hash=True, weights_only=True, map_location="cpu")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            raise PretrainedWeightsUnavailable(
                f"could not download the {self.source} weights from {self.url} ({err}). "
                f"Without network access, fetch that file elsewhere and put it at {self.cache_path()} "
                f"(set TORCH_HOME to use another cache folder), pass --pretrained PATH to a local "
                f"file, or --pretrained none to train from scratch.") from None
        except Exception as err:  # hash mismatch, truncated or foreign file: torch raises many kinds
            raise PretrainedWeightsUnavailable(
                f"the {self.source} weights file {self.cache_path()} is damaged or not the expected file "
                f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); delete it and retry") from None


def torchvision_weights(enum_name: str, member: str) -> PretrainedWeights:
    """Describe torchvision's ``<enum_name>.<member>`` weights (e.g. ResNet50_Weights.IMAGENET1K_V1)."""
    weights = getattr(torchvision.models, enum_name)[member]
    preprocess = weights.transforms()
    return PretrainedWeights(source="torchvision", url=weights.url, mean=tuple(preprocess.mean),
                             std=tuple(preprocess.std), torchvision_enum=weights)


def read_checkpoint_file(path) -> dict:
    """Load a local weight file safely and return its state dict."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsUnavailable(f"weight file {path} does not exist; check the path "
                                           f"or pass --pretrained none")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code, a truncated or foreign file
        raise PretrainedWeightsUnavailable(
            f"{path} is not a PyTorch weight file that can be loaded safely ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})") from None
    for key in ("model", "state_dict"):  # our checkpoints and common trainer formats
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedWeightsUnavailable(f"{path} holds no state dict of tensors")
    return obj


def load_into(model: torch.nn.Module, state_dict: dict, origin: str):
    """Load ``state_dict`` into ``model``; name every key that does not fit.

    Leniency is limited to what cannot matter: BatchNorm bookkeeping, running
    statistics when the model uses GroupNorm, and a classifier (the keys under
    ``model.classifier_prefix``) the model does not have or whose class count differs.
    """
    own = model.state_dict()
    head = getattr(model, "classifier_prefix", "fc.")
    state = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    state = {k: v for k, v in state.items()
             if k in own or not (k.endswith(("running_mean", "running_var")) or k.startswith(head))}
    state = {k: v for k, v in state.items() if not (k.startswith(head) and own[k].shape != v.shape)}
    missing = [k for k in own if k not in state and not k.startswith(head)]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or shape:
        raise PretrainedWeightsUnavailable(
            f"weights from {origin} do not fit {type(model).__name__}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
            f"wrong shape {shape[:5]}")
    model.load_state_dict(state, strict=False)
    return model
