"""ImageNet backbones for detection: the ResNet family of He et al. (2015), its plain baselines and VGG-16.

    >>> import backbones
    >>> backbones.names()
    ['plain18', 'plain34', 'resnet101', 'resnet152', 'resnet18', 'resnet34', 'resnet50', 'vgg16']
    >>> net = backbones.build("resnet50", pretrained="none")
    >>> {k: (s.channels, s.stride) for k, s in net.output_shape().items()}
    {'res2': (256, 4), 'res3': (512, 8), 'res4': (1024, 16), 'res5': (2048, 32)}
"""
from .base import Backbone, C4Split
from .errors import UnknownNameError, UserError
from .pretrained import PretrainedWeights, PretrainedWeightsUnavailable
from .registry import build, get_entry, is_pretrained, names, register
from .shape_spec import ShapeSpec

# Importing the model files registers them.
from . import resnet, vgg  # noqa: E402,F401

__all__ = ["Backbone", "C4Split", "PretrainedWeights", "PretrainedWeightsUnavailable", "ShapeSpec",
           "UnknownNameError", "UserError", "build", "get_entry", "is_pretrained", "names", "register"]
