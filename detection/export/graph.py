"""The detector as the exporters trace it: one CHW image in, a tuple of tensors out.

torchvision's detectors take a list of images and return a list of dicts;
the ONNX graph and the TorchScript module take one ``float32`` RGB image in
[0, 1] (3 x H x W, any H and W) and return ``(boxes, labels, scores)`` and,
for Mask R-CNN, ``masks``, in the order of :data:`OUTPUTS`.

The resize is the one part written again for tracing, because the traced
graph would otherwise compute it differently from PyTorch:
torchvision's traceable path resizes by a scale factor, which the ONNX
``Resize`` operator applies as given (e.g. 1.4953 for 214 -> 320 rows),
while eager PyTorch rounds the output size down (320 x 478 for a 214 x 320
image) and interpolates by the ratio of the sizes (478 / 320 = 1.49375).
The columns then sample different positions, and pixels differ by up to 1.8
(of 0-1 images) on a 214 x 320 photograph. :class:`ExactSizeTransform` computes
the output size as eager PyTorch does (float64, rounded down) and resizes to
that size, so both interpolate by the same ratio. It is computed in float64 throughout: in
float32, 214 x (320 / 214) rounds down to 319 rows.
"""
import copy

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from ..detector import DetectorTransform

BOX_OUTPUTS = ("boxes", "labels", "scores")
MASK_OUTPUTS = BOX_OUTPUTS + ("masks",)


def output_names(model) -> tuple:
    """The names of the exported graph's outputs, in order."""
    return MASK_OUTPUTS if model.config.mask else BOX_OUTPUTS


class ExactSizeTransform(DetectorTransform):
    """:class:`DetectorTransform` whose traced resize has eager PyTorch's output size and ratio."""

    def resize(self, image, target=None):
        if not torchvision._is_tracing() or self.training or self.fixed_size is not None:
            return super().resize(image, target)
        shape = torch.onnx.operators.shape_as_tensor(image)[-2:].to(torch.float64)
        # float64 tensors of one dimension on both sides: the exporter computes a Python number or a
        # 0-dimensional constant divided by a tensor in float32
        limits = torch.tensor([float(self.min_size[-1]), float(self.max_size)], dtype=torch.float64)
        scale = (limits / torch.stack([shape.min(), shape.max()])).min()
        size = torch.floor(shape * scale).to(torch.int64)
        image = F.interpolate(image[None], size=(size[0], size[1]), mode="bilinear", align_corners=False)[0]
        return image, target


class ExportableDetector(nn.Module):
    """A detector in eval mode as one image -> a tuple of tensors (see :func:`output_names`)."""

    def __init__(self, model):
        super().__init__()
        model = copy.copy(model)  # the caller's model keeps its own transform: a shallow copy with its own
        model._modules = dict(model._modules)  # table of submodules, the others shared
        t = model.transform
        model.transform = ExactSizeTransform(t.min_size, t.max_size, t.image_mean, t.image_std)
        self.model = model.eval()
        self.names = output_names(model)

    def forward(self, image):
        detections = self.model([image])[0]
        return tuple(detections[name] for name in self.names)
