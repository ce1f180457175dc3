"""detectron2's ResNet names <-> ours (torchvision's).

detectron2 wraps each conv and its norm in one ``Conv2d`` module, so a norm
lives under its conv (``res2.0.conv1.norm.weight``); the projection shortcut
is ``shortcut`` and the classifier ``linear``. Stages keep the paper's
numbering, res2..res5, where torchvision counts layer1..layer4.

Names here are the backbone's own, without prefix. :func:`from_detectron2`
also accepts a whole detector's state dict: it keeps the bottom-up ResNet
(``backbone.bottom_up.`` in FPN models, ``backbone.`` plus the per-RoI
``roi_heads.res5`` in C4 models) and leaves out the heads, FPN and the
``pixel_mean``/``pixel_std`` buffers. Colour order is not part of the names:
detectron2's MSRA-based models take BGR input (see backbones.conversions.colour).
"""
from .common import OURS, ConversionError, Naming, rename

NAMES = Naming({
    "stem_conv": "stem.conv1.{param}",
    "stem_norm": "stem.conv1.norm.{param}",
    "conv": "res{stage}.{block}.conv{index}.{param}",
    "norm": "res{stage}.{block}.conv{index}.norm.{param}",
    "shortcut_conv": "res{stage}.{block}.shortcut.{param}",
    "shortcut_norm": "res{stage}.{block}.shortcut.norm.{param}",
    "fc": "linear.{param}",
})

# Longest first: the first that matches is removed.
PREFIXES = ("backbone.bottom_up.", "backbone.", "roi_heads.", "module.")


def strip_prefixes(state_dict: dict) -> dict:
    """The backbone's tensors of a detectron2 checkpoint, named without prefix."""
    detector = any(k.startswith(("backbone.", "roi_heads.")) for k in state_dict)
    out = {}
    for name, value in state_dict.items():
        short = next((name[len(p):] for p in PREFIXES if name.startswith(p)), name)
        if detector and (short == name or NAMES.slot(short) is None):
            continue  # heads, FPN (backbone.fpn_*), pixel_mean/pixel_std
        if short in out:
            raise ConversionError(f"two tensors of the checkpoint map to the backbone's {short!r}")
        out[short] = value
    return out


def is_detectron2(names) -> bool:
    """Whether these names (with or without prefix) are detectron2's ResNet names."""
    return any(n.endswith(("stem.conv1.weight", "stem.conv1.norm.weight")) for n in names)


def from_detectron2(state_dict: dict) -> dict:
    """detectron2 names (prefix-free, or a detector's ``backbone.bottom_up.`` ones) -> ours."""
    state = {k: v for k, v in strip_prefixes(state_dict).items() if not k.endswith("num_batches_tracked")}
    return rename(state, NAMES, OURS, "detectron2", "from")


def to_detectron2(state_dict: dict) -> dict:
    """Our names -> detectron2's, without prefix (a detector puts them under ``backbone.bottom_up.``).

    ``num_batches_tracked`` is left out: detectron2's FrozenBN has none.
    """
    state = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    return rename(state, OURS, NAMES, "detectron2", "to")
