"""timm's ResNet names <-> ours.

timm's ``resnet18``..``resnet152`` (and their hub weights such as
``resnet50.a1_in1k``) use torchvision's names and shapes, conv1, bn1,
layer1..layer4 with ``downsample.0/1``, fc, and the same stride placement,
so both directions are the identity. timm's variants are not: a deep stem
(``resnet50d``: ``conv1.0``), average-pool shortcuts (``downsample.1`` is the
conv there) or squeeze-excitation blocks are other architectures, and
:func:`from_timm` names them instead of letting them fail as a list of
missing keys.
"""
from .common import ConversionError

_VARIANTS = {"conv1.0.weight": "a deep stem (timm's *c/*d/*s variants)",
             ".downsample.2.weight": "average-pool shortcuts (timm's *d variants)",
             ".se.": "squeeze-excitation blocks (timm's seresnet*)"}


def from_timm(state_dict: dict) -> dict:
    """timm names -> ours (the same names); refuses timm's ResNet variants."""
    for marker, what in _VARIANTS.items():
        if any(marker in name for name in state_dict):
            raise ConversionError(f"these timm weights have {what}; only the plain ResNet "
                                  f"(timm's resnet18/34/50/101/152) matches our backbones")
    return dict(state_dict)


def to_timm(state_dict: dict) -> dict:
    """Ours -> timm names (the same names)."""
    return dict(state_dict)
