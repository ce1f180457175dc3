"""Pretrained weights and the input normalisation that travels with them.

Each registry entry declares its weight sources next to its builder (timm's
pretrained-config idea). A source knows where its file lives, how to check
it, how its names are laid out, which colour order and normalisation its
inputs need and which architecture options (``stride_in_1x1``) it was
trained with, so a detector built on those weights computes what the
weights were trained to compute.

Whatever the file, loading gives our names and RGB input: BGR weights get
their first conv's channels reversed and their mean/std expressed for RGB
images in [0, 1] (torchvision's convention, what our detector normalises).

Files from outside are untrusted: ``.pth`` loads with
``torch.load(weights_only=True)``, ``.pkl`` through a restricted unpickler,
``.safetensors`` with the safetensors package (see backbones.weight_files).
"""
import dataclasses
import os
import urllib.error
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torchvision

from . import conversions
from .conversions.colour import rgb01_from_bgr255, swap_rgb_bgr
from .download import cache_dir, fetch, offline_hint
from .weight_files import PretrainedWeightsUnavailable, read_checkpoint_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# detectron2's PIXEL_MEAN/PIXEL_STD for MSRA's Caffe ResNets (BGR, 0-255), in RGB 0-1 units
CAFFE_MEAN, CAFFE_STD = rgb01_from_bgr255((103.530, 116.280, 123.675), (1.0, 1.0, 1.0))

__all__ = ["CAFFE_MEAN", "CAFFE_STD", "IMAGENET_MEAN", "IMAGENET_STD", "LoadedWeights", "PretrainedWeights",
           "PretrainedWeightsUnavailable", "load_into", "local_file", "read_checkpoint_file",
           "torchvision_weights"]


@dataclass(frozen=True)
class LoadedWeights:
    """A source's weights, ready for our backbone, with what the model must do to use them."""

    state_dict: dict  # our names, first conv reading RGB
    mean: tuple       # RGB, [0, 1] scale
    std: tuple
    options: dict     # builder options the weights need, e.g. {"stride_in_1x1": True}
    origin: str       # for messages
    guessed: bool = False  # conventions guessed from the file's layout rather than declared


@dataclass(frozen=True)
class PretrainedWeights:
    """One source of weights for one backbone.

    ``mean``/``std`` apply to RGB images scaled to [0, 1], torchvision's
    convention, whatever ``input_space`` (the colour order the file's weights
    expect) is. ``layout="auto"`` and ``input_space="auto"`` (local files
    only): tell the layout from the names and assume the conventions usual for it.
    """

    source: str
    url: Optional[str]  # torchvision: torch.hub checks the sha256 prefix in the file name on download
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    input_space: str = "RGB"
    layout: str = "torchvision"  # torchvision | timm | detectron2 | caffe2 | auto
    sha256: Optional[str] = None  # None: trust on first use (see backbones.download)
    options: dict = field(default_factory=dict, hash=False)
    cache_name: Optional[str] = None  # file name in the cache; default: the URL's
    local_path: Optional[Path] = None  # a local copy to read instead of downloading
    torchvision_enum: Any = field(default=None, compare=False, repr=False)

    @property
    def file_name(self):
        return self.cache_name or os.path.basename(self.url)

    def cache_path(self) -> Path:
        """Where torch.hub caches the file (follows ``TORCH_HOME``)."""
        return cache_dir() / self.file_name

    @property
    def hash_check(self) -> str:
        if self.torchvision_enum is not None:
            return "sha256 prefix in the file name, checked by torch.hub on download"
        return "sha256 pinned" if self.sha256 else "sha256 recorded at first download (trust on first use)"

    def with_file(self, path) -> "PretrainedWeights":
        """This source's conventions for a local copy at ``path`` (any layout)."""
        return dataclasses.replace(self, local_path=Path(path).expanduser())

    def _read(self, progress):
        if self.local_path is not None:
            return read_checkpoint_file(self.local_path)
        if self.torchvision_enum is None:
            return read_checkpoint_file(fetch(self.url, self.cache_path(), self.sha256, self.source, progress))
        try:  # torchvision's own weights API
            return self.torchvision_enum.get_state_dict(
                progress=progress, check_hash=True, weights_only=True, map_location="cpu")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            raise PretrainedWeightsUnavailable(
                f"{offline_hint(self.source, self.url, self.cache_path())} ({err})") from None
        except Exception as err:  # hash mismatch, truncated or foreign file: torch raises many kinds
            raise PretrainedWeightsUnavailable(
                f"the {self.source} weights file {self.cache_path()} is damaged or not the expected file "
                f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); delete it and retry") from None

    def _layout(self, state_dict):
        found = conversions.detect_layout(state_dict)
        if found == "torchvision" and self.layout == "timm":
            return "timm"  # same names
        if self.local_path is None and self.layout != found:
            raise PretrainedWeightsUnavailable(
                f"the {self.source} weights file {self.cache_path()} has {found} names, not the expected "
                f"{self.layout} ones: it is not the expected file; delete it and retry")
        return found

    def load(self, progress=True) -> LoadedWeights:
        """Download (or reuse the cached copy), load safely, convert to our names and RGB."""
        raw = self._read(progress)
        layout = self._layout(raw)
        origin = str(self.local_path) if self.local_path is not None else f"{self.source} ({self.url})"
        try:
            state = conversions.to_ours(raw, layout)
        except conversions.ConversionError as err:
            raise PretrainedWeightsUnavailable(f"weights from {origin}: {err}") from None
        conventions = _usual_conventions(layout, origin) if self.input_space == "auto" else self
        if conventions.input_space == "BGR":
            state = swap_rgb_bgr(state)
        return LoadedWeights(state, tuple(conventions.mean), tuple(conventions.std), dict(conventions.options),
                             origin, guessed=self.input_space == "auto")

    def state_dict(self, progress=True) -> dict:
        """The weights with our names, for RGB input."""
        return self.load(progress).state_dict


def _usual_conventions(layout, origin) -> PretrainedWeights:
    """What a file of this layout almost always expects, when nobody said."""
    if layout in ("torchvision", "timm"):
        return PretrainedWeights("file", None)  # RGB, ImageNet mean/std
    # Caffe2 files and detectron2 checkpoints: detectron2's config defaults (MSRA conventions)
    warnings.warn(
        f"{origin} has {layout} names; assuming detectron2's defaults for them: BGR input, mean "
        f"[103.530, 116.280, 123.675] and std [1, 1, 1] on 0-255 pixels, stride_in_1x1=True. If the file "
        f"follows other conventions, pass SOURCE:PATH with a source whose conventions it shares (e.g. "
        f"torchvision:PATH for RGB ImageNet normalisation) or a backbones.PretrainedWeights", stacklevel=3)
    return PretrainedWeights("file", None, CAFFE_MEAN, CAFFE_STD, "BGR", options={"stride_in_1x1": True})


def local_file(path) -> PretrainedWeights:
    """A local weight file whose layout and conventions are told from its names."""
    return PretrainedWeights("file", None, layout="auto", input_space="auto", local_path=Path(path).expanduser())


def torchvision_weights(enum_name: str, member: str, source: str = "torchvision") -> PretrainedWeights:
    """Describe torchvision's ``<enum_name>.<member>`` weights (e.g. ResNet50_Weights.IMAGENET1K_V1)."""
    weights = getattr(torchvision.models, enum_name)[member]
    preprocess = weights.transforms()
    return PretrainedWeights(source=source, url=weights.url, mean=tuple(preprocess.mean),
                             std=tuple(preprocess.std), torchvision_enum=weights)


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
    missing = [k for k in own if k not in state and not k.startswith(head)
               and not k.endswith("num_batches_tracked")]  # converted files have no such counter
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
