"""Feature Pyramid Network (Lin et al., 2017) on any registry backbone.

Channels and strides come from ``backbone.output_shape()``; the pyramid and
RoI pooling are torchvision's ``FeaturePyramidNetwork`` and ``MultiScaleRoIAlign``.
"""
from torch import nn

from backbones.errors import UserError
from backbones.norm import norm_layer
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


class BackboneWithFPN(nn.Module):
    """Backbone features -> FPN maps named like the backbone's, plus ``pool``."""

    def __init__(self, backbone, out_channels=256, norm=None):
        super().__init__()
        self.body = backbone
        shapes = backbone.output_shape()
        self.fpn = FeaturePyramidNetwork([s.channels for s in shapes.values()], out_channels,
                                         extra_blocks=LastLevelMaxPool(), norm_layer=norm)
        self.out_channels = out_channels
        # the max-pool level halves the last stride
        self.strides = [s.stride for s in shapes.values()] + [2 * list(shapes.values())[-1].stride]
        self.level_names = list(shapes) + ["pool"]

    def forward(self, x):
        return self.fpn(self.body(x))


def fpn_parts(backbone, cfg):
    """FasterRCNN/MaskRCNN keyword arguments for an FPN detector."""
    # head_norm: a norm after each conv of the FPN, the 4conv1fc box head and the mask head (torchvision's v2)
    norm = norm_layer(cfg.head_norm) if cfg.head_norm else None
    body = BackboneWithFPN(backbone.drop_classifier(), cfg.fpn_channels, norm)
    # one anchor size per level, 8x its stride (32 at stride 4, as in the FPN paper)
    sizes = cfg.anchor_sizes or [8 * s for s in body.strides]
    if len(sizes) != len(body.strides):
        raise UserError(f"anchor_sizes needs one size per FPN level ({len(body.strides)}: "
                         f"{body.level_names}), got {list(sizes)}")
    anchors = AnchorGenerator(tuple((s,) for s in sizes), (tuple(cfg.aspect_ratios),) * len(sizes))
    roi_levels = body.level_names[:-1]  # RoIs are pooled from the backbone levels, not "pool"
    rep = cfg.box_representation_size
    parts = dict(
        backbone=body,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(body.out_channels, anchors.num_anchors_per_location()[0],
                         conv_depth=cfg.rpn_conv_depth),
        box_roi_pool=MultiScaleRoIAlign(roi_levels, output_size=7, sampling_ratio=2),
        box_head=box_head(cfg, body.out_channels, norm),
        box_predictor=FastRCNNPredictor(rep, cfg.num_classes + 1),
    )
    if cfg.mask:
        parts.update(
            mask_roi_pool=MultiScaleRoIAlign(roi_levels, output_size=14, sampling_ratio=2),
            mask_head=MaskRCNNHeads(body.out_channels, tuple(cfg.mask_head_layers), 1, norm_layer=norm),
            mask_predictor=MaskRCNNPredictor(cfg.mask_head_layers[-1], cfg.mask_upsample_channels, cfg.num_classes + 1),
        )
    return parts


def box_head(cfg, channels, norm):
    """The box head on 7x7 RoIs: "mlp" (the FPN paper's two FC layers, torchvision's TwoMLPHead) or
    "4conv1fc" (four 3x3 convs of 256 and one FC layer, torchvision's FastRCNNConvFCHead, as its v2 models)."""
    rep = cfg.box_representation_size
    if cfg.box_head == "4conv1fc":
        return FastRCNNConvFCHead((channels, 7, 7), [256] * 4, [rep], norm_layer=norm)
    return TwoMLPHead(channels * 7 * 7, rep)
