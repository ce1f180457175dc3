"""Caffe2/Detectron blob names (the MSRA ResNets of detectron2's ImageNetPretrained/MSRA) <-> ours.

Blobs: ``conv1_w``, ``res_conv1_bn_s``/``_b``, ``res2_0_branch2a_w``,
``res2_0_branch2a_bn_s``, ``res2_0_branch1_w`` (the projection shortcut),
``fc1000_w`` (``pred_w`` in some files), following detectron2's
``convert_basic_c2_names``.

MSRA's models were converted with their BatchNorms folded into an affine
"AffineChannel" layer, y = x * s + b, so the files hold only ``_bn_s`` and
``_bn_b``. Our norms compute (x - mean) / sqrt(var + eps) * w + b; with mean 0
and var = 1 - eps that is exactly x * w + b (detectron2 uses var = 1, which
scales every norm by 1/sqrt(1 + 1e-5)).

Names only: these files expect BGR input; backbones.conversions.colour turns
the first conv to RGB.
"""
import torch

from .common import BN_EPS, OURS, Naming, rename

NAMES = Naming(
    {
        "stem_conv": "conv1_{param}",
        "stem_norm": "res_conv1_{param}",
        "conv": "res{stage}_{block}_branch2{letter}_{param}",
        "norm": "res{stage}_{block}_branch2{letter}_{param}",
        "shortcut_conv": "res{stage}_{block}_branch1_{param}",
        "shortcut_norm": "res{stage}_{block}_branch1_{param}",
        "fc": ("fc1000_{param}", "pred_{param}"),
    },
    params={
        "stem_conv": {"weight": "w"}, "conv": {"weight": "w"}, "shortcut_conv": {"weight": "w"},
        "fc": {"weight": "w", "bias": "b"},
        **{kind: {"weight": "bn_s", "bias": "bn_b", "running_mean": "bn_rm", "running_var": "bn_riv"}
           for kind in ("stem_norm", "norm", "shortcut_norm")},
    })

# Detectron built conv1 without a bias and ignored this blob of the converted
# Caffe model (its values are ~1e-9); detectron2 does too.
IGNORED = ("conv1_b",)


def is_caffe2(names) -> bool:
    return any(n in ("conv1_w", "res_conv1_bn_s") or n.startswith("res2_0_branch") for n in names)


def _norm_prefixes(state_dict):
    return {k[:-len(".weight")] for k in state_dict
            if k.endswith(".weight") and OURS.slot(k) is not None and OURS.slot(k).kind.endswith("norm")}


def from_caffe2(blobs: dict) -> dict:
    """Caffe2 blob names -> ours; affine-only norms get mean 0 and var 1 - eps (exactly affine)."""
    state = rename({k: v for k, v in blobs.items() if k not in IGNORED}, NAMES, OURS, "Caffe2", "from")
    for norm in _norm_prefixes(state):
        if f"{norm}.running_var" not in state:  # AffineChannel: make BN compute x * s + b
            weight = state[f"{norm}.weight"]
            state[f"{norm}.running_mean"] = torch.zeros_like(weight)
            state[f"{norm}.running_var"] = torch.full_like(weight, 1 - BN_EPS)
    return state


def to_caffe2(state_dict: dict) -> dict:
    """Ours -> Caffe2 blob names, each BatchNorm folded into an affine ``_bn_s``/``_bn_b`` pair."""
    state = dict(state_dict)
    for norm in _norm_prefixes(state):
        mean, var = state.pop(f"{norm}.running_mean", None), state.pop(f"{norm}.running_var", None)
        state.pop(f"{norm}.num_batches_tracked", None)
        if mean is not None:
            scale = state[f"{norm}.weight"] * torch.rsqrt(var + BN_EPS)
            state[f"{norm}.weight"], state[f"{norm}.bias"] = scale, state[f"{norm}.bias"] - mean * scale
    return rename(state, OURS, NAMES, "Caffe2", "to")
