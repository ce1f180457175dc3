"""The contract every registry backbone follows.

Modelled on detectron2's ``Backbone``: a backbone is an ordered list of named
stages, each with a known channel count and stride; ``forward`` returns the
feature maps named in ``out_features`` and ``output_shape()`` reports their
channels and strides, so necks are built without hard-coded numbers.

Parameter names stay those of the torchvision model the backbone mirrors, so a
torchvision ImageNet state dict loads unchanged. That is why stages are
described by name -> modules rather than by wrapping layers in new containers.
"""
from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from .errors import UserError
from .norm import freeze_batchnorm
from .shape_spec import ShapeSpec


@dataclass
class C4Split:
    """The paper's C4 layout (He et al. 2015, Appendix A), as far as the network is concerned.

    The trunk (stem to the stride-16 stage) is shared by RPN and RoI heads;
    ``roi_stage`` holds the network's remaining layers, which run on each pooled
    RoI of ``pooler_resolution`` x ``pooler_resolution``. It returns a feature map
    per RoI (``roi_output="map"``: res5) or one vector per RoI (``"vector"``: VGG's
    fc6/fc7). The detector builds its heads around it (``detection.necks.c4``).
    """

    trunk: "Backbone"
    roi_stage: nn.Module
    roi_channels: int
    pooler_resolution: int
    roi_output: str  # "map" | "vector"


class Backbone(nn.Module):
    """Base class: subclasses fill ``self._stages`` via :meth:`_add_stage`."""

    def __init__(self):
        super().__init__()
        # name -> ([dotted paths of the stage's modules], ShapeSpec). Names and paths
        # only (no bound methods or module objects), so copies, replicas and
        # freezing, which swaps children in place, all see the current modules.
        self._stages = OrderedDict()
        self._out_features = []

    # -- subclass API -------------------------------------------------------
    def _add_stage(self, name: str, module_paths: list, channels: int, stride: int):
        self._stages[name] = (list(module_paths), ShapeSpec(channels, stride))

    def _forward_stage(self, name: str, x):
        """Run one stage; subclasses define what each stage name computes."""
        raise NotImplementedError

    def _remove_stages_after(self, last: str):
        names = list(self._stages)
        for name in names[names.index(last) + 1:]:
            del self._stages[name]
        self._out_features = [n for n in self._out_features if n in self._stages] or [last]

    # -- public contract ----------------------------------------------------
    @property
    def stage_names(self) -> list:
        return list(self._stages)

    @property
    def out_features(self) -> list:
        return list(self._out_features)

    @out_features.setter
    def out_features(self, names):
        names = list(names)
        unknown = [n for n in names if n not in self._stages]
        if unknown or not names:
            raise UserError(f"unknown out_features {unknown or names} for {type(self).__name__}; "
                            f"stages are {self.stage_names}")
        self._out_features = sorted(names, key=self.stage_names.index)

    def stage_shapes(self) -> "OrderedDict[str, ShapeSpec]":
        """Channels and stride of every stage, in order."""
        return OrderedDict((name, spec) for name, (_, spec) in self._stages.items())

    def output_shape(self) -> "OrderedDict[str, ShapeSpec]":
        """Channels and stride of each map ``forward`` returns."""
        shapes = self.stage_shapes()
        return OrderedDict((name, shapes[name]) for name in self._out_features)

    @property
    def out_channels(self) -> int:
        """Channels of the last output (torchvision's detectors read this)."""
        return self.output_shape()[self._out_features[-1]].channels

    def forward(self, x):
        outputs = OrderedDict()
        wanted = set(self._out_features)
        for name in self._stages:
            x = self._forward_stage(name, x)
            if name in wanted:
                outputs[name] = x
                if len(outputs) == len(wanted):
                    break  # later stages are not needed
        return outputs

    def freeze(self, freeze_at: int, freeze_norm: bool = True):
        """Freeze the first ``freeze_at`` stages (detectron2's convention).

        For ResNets the stem counts as stage 1: ``freeze_at=2`` freezes the
        stem and res2, detectron2's default for fine-tuning; ``0`` freezes
        nothing. Frozen stages also get their BatchNorms frozen, unless
        ``freeze_norm=False``: then only their parameters stop learning and
        their BatchNorms still use batch statistics in train mode (what
        torchvision's ``trainable_backbone_layers`` does to BatchNorm backbones).
        """
        names = self.stage_names
        if not 0 <= freeze_at <= len(names):
            raise UserError(f"freeze_at must be between 0 and {len(names)} for {type(self).__name__} "
                            f"(stages {names}), got {freeze_at}")
        for name in names[:freeze_at]:
            for path in self._stages[name][0]:
                parent_path, _, attr = path.rpartition(".")
                parent = self.get_submodule(parent_path) if parent_path else self
                module = freeze_batchnorm(getattr(parent, attr)) if freeze_norm else getattr(parent, attr)
                setattr(parent, attr, module)
                for p in module.parameters():
                    p.requires_grad_(False)
        return self

    def drop_classifier(self):
        """Remove the ImageNet classification head (not used by detectors)."""
        raise NotImplementedError

    def c4_split(self) -> C4Split:
        """Split into the C4 trunk and the per-RoI stage (consumes this backbone's last stages)."""
        raise NotImplementedError(f"{type(self).__name__} does not support the C4 design")
