"""Read a weight file of any common format into ``{name: tensor}``, safely.

- ``.safetensors``: the safetensors package (a tensor table, no code at all).
- ``.pkl``: detectron2 model-zoo and Caffe2/Detectron files, numpy arrays in
  dicts, through :mod:`backbones.safe_pickle`.
- anything else (``.pth``, ``.pt``, ``.bin``, torch zip files also named
  ``.pkl``): ``torch.load(weights_only=True)``.

Names are returned as the file has them; :mod:`backbones.conversions` maps
them to ours.
"""
from pathlib import Path

import numpy as np
import torch

from . import safe_pickle
from .errors import UserError


class PretrainedWeightsUnavailable(UserError):
    """The weights could not be downloaded or read."""


def _first_line(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _read_safetensors(path):
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise PretrainedWeightsUnavailable(f"reading {path} needs the safetensors package: "
                                           f"pip install safetensors") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # truncated or not a safetensors file
        raise PretrainedWeightsUnavailable(f"{path} is not a readable .safetensors file "
                                           f"({_first_line(err)}); delete it and fetch it again") from None


def _read_pickle(path):
    try:
        return safe_pickle.load(path)
    except safe_pickle.UnsafePickleError as err:
        raise PretrainedWeightsUnavailable(str(err)) from None
    except Exception as err:
        raise PretrainedWeightsUnavailable(f"{path} is not a readable .pkl weight file "
                                           f"({_first_line(err)}); delete it and fetch it again") from None


def _read_torch(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code, a truncated or foreign file
        raise PretrainedWeightsUnavailable(
            f"{path} is not a PyTorch weight file that can be loaded safely ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})") from None


def _is_zip(path):
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"  # torch.save's format, whatever the file is called


def _unwrap(obj):
    """The name -> array dict inside the common checkpoint wrappers."""
    # ours and detectron2's: {"model": ...}; Lightning and others: {"state_dict": ...};
    # Caffe2 Detectron detection models: {"blobs": ...} (its ImageNet models are bare dicts)
    for key in ("model", "state_dict", "blobs"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return obj


def read_checkpoint_file(path) -> dict:
    """Load a local weight file safely and return its ``{name: tensor}``."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsUnavailable(f"weight file {path} does not exist; check the path "
                                           f"or pass --pretrained none")
    if path.suffix == ".safetensors":
        obj = _read_safetensors(path)
    elif path.suffix == ".pkl" and not _is_zip(path):
        obj = _read_pickle(path)
    else:
        obj = _read_torch(path)
    obj = _unwrap(obj)
    if not isinstance(obj, dict):
        raise PretrainedWeightsUnavailable(f"{path} holds no state dict of tensors")
    if not obj or not all(isinstance(k, str) and isinstance(v, (np.ndarray, torch.Tensor))
                          for k, v in obj.items()):
        raise PretrainedWeightsUnavailable(f"{path} holds no state dict of tensors")
    # Caffe2 files also carry the solver's state ("*_momentum"): keep the weights only.
    # np.array copies: arrays from a pickle may be read-only, which torch does not support.
    return {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
            for k, v in obj.items() if not k.endswith("_momentum")}
