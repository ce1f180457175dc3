"""Model complexity as the paper reports it: parameters and multiply-adds of the classification network.

    >>> from backbones.complexity import build_shapes_only, count_parameters, multiply_adds
    >>> net = build_shapes_only("resnet50", stride_in_1x1=True)
    >>> count_parameters(net), round(multiply_adds(net) / 1e9, 2)
    (25557032, 3.86)

Counts cover what the paper's numbers cover: the whole ImageNet network
(stem to the 1000-way fc) on one 224x224x3 image, convolutions and
fully-connected layers only (no BatchNorm, ReLU, pooling or additions).
"""
from collections import OrderedDict
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode

from .registry import build

# The paper's complexity figures, in 10^9 multiply-adds at 224x224 (He et al., 2015,
# "Deep Residual Learning for Image Recognition"). name -> (GMACs, where stated).
# Plain nets: Sec. 4.1 says the 18/34-layer plain nets are the Table 1 architectures
# ("See Table 1 for detailed architectures"), and Sec. 3.3 gives the 34-layer plain
# baseline's 3.6 billion FLOPs explicitly, so they share the 18/34-layer figures.
PAPER_GMACS = {
    "resnet18": (1.8, "Table 1"),
    "resnet34": (3.6, "Table 1"),
    "resnet50": (3.8, "Table 1"),
    "resnet101": (7.6, "Table 1"),
    "resnet152": (11.3, "Table 1"),
    "plain18": (1.8, "Table 1 (18-layer), Sec. 4.1"),
    "plain34": (3.6, "Table 1 (34-layer), Sec. 3.3"),
    "vgg16": (15.3, "Sec. 4.1"),
    "vgg19": (19.6, "Sec. 3.3 and 4.1"),
}


def build_shapes_only(name: str, **options):
    """Build a registry backbone on the ``meta`` device, with random-init options.

    Meta tensors have shapes but no storage, so nothing is allocated or
    computed: counting VGG-16 (138M parameters, 15 GMACs) is instant. The
    counts depend on shapes only, so they equal those of a real model.
    """
    with torch.device("meta"):
        return build(name, pretrained="none", **options)


def count_parameters(model, include_classifier: bool = True) -> int:
    """Number of parameters; without the classifier, the class-count dependent layer
    (a backbone's ``classifier_prefix``: ResNet's ``fc``, VGG's fc8) is left out."""
    prefix = getattr(model, "classifier_prefix", None)
    return sum(p.numel() for name, p in model.named_parameters()
               if include_classifier or not prefix or not name.startswith(prefix))


def _device(model):
    return next(model.parameters(), torch.empty(0)).device


@contextmanager
def _evaluating(model):
    """Eval mode and no autograd for one pass (BatchNorm statistics stay untouched), then restore."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _run(model, x):
    # classify() is the full ImageNet network (what the paper measured); forward()
    # stops at the detection features. Models without a classifier fall back to it.
    return model.classify(x) if hasattr(model, "classify") else model(x)


def multiply_adds(model, size: int = 224) -> int:
    """Multiply-adds of one ``size`` x ``size`` RGB image through ``model``.

    FlopCounterMode counts 2 FLOPs per multiply-add for convolutions and
    matrix products; the paper's "FLOPs" are multiply-adds, so we halve.
    Biases, normalisation, activations and pooling are not counted (nor by the paper).
    """
    with _evaluating(model), FlopCounterMode(display=False) as counter:
        _run(model, torch.zeros(1, 3, size, size, device=_device(model)))
    return counter.get_total_flops() // 2


def stage_shapes(model, size: int = 224) -> "OrderedDict[str, tuple]":
    """(channels, height, width) of every stage's output for one ``size`` x ``size`` image."""
    kept = model.out_features
    model.out_features = model.stage_names
    try:
        with _evaluating(model):
            outputs = model(torch.zeros(1, 3, size, size, device=_device(model)))
    finally:
        model.out_features = kept
    return OrderedDict((name, tuple(t.shape[1:])) for name, t in outputs.items())
