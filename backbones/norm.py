"""Normalisation layers a backbone can be built with.

- ``frozen_bn``: BatchNorm with fixed statistics and affine parameters, the
  standard for fine-tuning ImageNet weights with small detection batches.
- ``bn``: ordinary trainable BatchNorm (needs reasonably large batches).
- ``gn``: GroupNorm with 32 groups, the usual choice when training detectors
  from scratch (Wu & He, 2018), since it does not depend on the batch size.
"""
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from .errors import check_choice

NORMS = ("frozen_bn", "bn", "gn")


def norm_layer(kind):
    """Return a callable ``channels -> nn.Module`` for the given norm kind."""
    check_choice("norm", kind, NORMS)
    if kind == "frozen_bn":
        return FrozenBatchNorm2d
    if kind == "bn":
        return nn.BatchNorm2d
    return lambda channels: nn.GroupNorm(min(32, channels), channels)


def freeze_batchnorm(module):
    """Replace every BatchNorm2d inside ``module`` by an equivalent FrozenBatchNorm2d.

    Used for frozen stages: a frozen stage must also stop updating its running
    statistics, which ``requires_grad=False`` alone would not do.
    """
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        if module.affine:
            frozen.weight.copy_(module.weight.detach())
            frozen.bias.copy_(module.bias.detach())
        frozen.running_mean.copy_(module.running_mean)
        frozen.running_var.copy_(module.running_var)
        return frozen
    for name, child in module.named_children():
        new = freeze_batchnorm(child)
        if new is not child:
            setattr(module, name, new)
    return module
