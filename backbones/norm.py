"""Normalisation layers a backbone can be built with.

- ``frozen_bn``: BatchNorm with fixed statistics and affine parameters, the
  standard for fine-tuning ImageNet weights with small detection batches.
- ``bn``: ordinary trainable BatchNorm (needs reasonably large batches).
- ``gn``: GroupNorm with 32 groups, the usual choice when training detectors
  from scratch (Wu & He, 2018), since it does not depend on the batch size.
"""
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d as TorchvisionFrozenBatchNorm2d

from .errors import check_choice

NORMS = ("frozen_bn", "bn", "gn")


class FrozenBatchNorm2d(TorchvisionFrozenBatchNorm2d):
    """torchvision's FrozenBatchNorm2d, with inference through one fused batch-norm kernel.

    torchvision computes ``x * scale + bias`` with ``scale`` and ``bias`` made
    from the statistics at every call: two passes over the feature map. Where
    no gradient is needed, ``F.batch_norm`` with fixed statistics does it in
    one, about twice as fast on CPU (the same values to float rounding:
    relative differences ~1e-7, tested). With gradients torchvision's form is
    kept: batch_norm's backward would also compute the unused gradients of the
    frozen statistics (detectron2's FrozenBatchNorm2d makes the same split).
    Under autocast (input dtype differing from the statistics') torchvision's
    form too, so output dtypes stay what they were. Same buffers, same state
    dict, still an instance of torchvision's class.
    """

    def forward(self, x):
        if x.requires_grad or x.dtype != self.weight.dtype:
            return super().forward(x)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


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
