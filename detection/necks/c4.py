"""The paper's C4 detector (He et al. 2015, Appendix A; Mask R-CNN's C4 variant).

The backbone up to its stride-16 stage is shared by the RPN and RoI heads;
RoIs are pooled from that single map and the backbone's remaining stage
(res5 for ResNets, fc6/fc7 for VGG-16) runs per RoI as the box head. The
backbone says where it splits (``Backbone.c4_split``); the heads are built here.
"""
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

# detectron2's C4 defaults: five sizes on the single stride-16 map
C4_ANCHOR_SIZES = (32, 64, 128, 256, 512)
MASK_POOLER_RESOLUTION = 14  # Mask R-CNN's 14x14 mask RoIs


def c4_heads(split):
    """(box_head, box_channels, mask_head, mask_channels) around the backbone's per-RoI stage.

    A stage that returns maps (res5) is average-pooled for the box predictor and
    shared with the mask branch, as in Mask R-CNN's C4 variant. A stage that
    returns vectors (VGG's fc6/fc7) has no map for masks: those get
    torchvision's 4-conv mask head on the pooled trunk features.
    """
    if split.roi_output == "map":
        box_head = nn.Sequential(split.roi_stage, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        return box_head, split.roi_channels, split.roi_stage, split.roi_channels
    return split.roi_stage, split.roi_channels, MaskRCNNHeads(split.trunk.out_channels, (256,) * 4, 1), 256


def c4_parts(backbone, cfg):
    """FasterRCNN/MaskRCNN keyword arguments for a C4 detector."""
    split = backbone.c4_split()
    box_head, box_channels, mask_head, mask_channels = c4_heads(split)
    level = split.trunk.out_features[-1]
    sizes = tuple(cfg.anchor_sizes or C4_ANCHOR_SIZES)
    anchors = AnchorGenerator((sizes,), (tuple(cfg.aspect_ratios),))
    parts = dict(
        backbone=split.trunk,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(split.trunk.out_channels, anchors.num_anchors_per_location()[0]),
        box_roi_pool=MultiScaleRoIAlign([level], output_size=split.pooler_resolution, sampling_ratio=0),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(box_channels, cfg.num_classes + 1),
    )
    if cfg.mask:
        parts.update(
            mask_roi_pool=MultiScaleRoIAlign([level], output_size=MASK_POOLER_RESOLUTION, sampling_ratio=0),
            mask_head=mask_head,
            mask_predictor=MaskRCNNPredictor(mask_channels, cfg.mask_upsample_channels, cfg.num_classes + 1),
        )
    return parts
