"""The paper's C4 detector (He et al. 2015, Appendix A; Mask R-CNN's C4 variant).

The backbone up to its stride-16 stage is shared by the RPN and RoI heads;
RoIs are pooled from that single map and the backbone's remaining stage
(res5 for ResNets, fc6/fc7 for VGG-16) runs per RoI as the box head. The
backbone decides how it splits (``Backbone.c4_split``).
"""
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

# detectron2's C4 defaults: five sizes on the single stride-16 map
C4_ANCHOR_SIZES = (32, 64, 128, 256, 512)


def c4_parts(backbone, cfg):
    """FasterRCNN/MaskRCNN keyword arguments for a C4 detector."""
    split = backbone.c4_split()
    level = split.trunk.out_features[-1]
    sizes = tuple(cfg.anchor_sizes or C4_ANCHOR_SIZES)
    anchors = AnchorGenerator((sizes,), (tuple(cfg.aspect_ratios),))
    parts = dict(
        backbone=split.trunk,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(split.trunk.out_channels, anchors.num_anchors_per_location()[0]),
        box_roi_pool=MultiScaleRoIAlign([level], output_size=split.pooler_resolution, sampling_ratio=0),
        box_head=split.box_head,
        box_predictor=FastRCNNPredictor(split.box_channels, cfg.num_classes + 1),
    )
    if cfg.mask:
        parts.update(
            mask_roi_pool=MultiScaleRoIAlign([level], output_size=split.mask_pooler_resolution, sampling_ratio=0),
            mask_head=split.mask_head,
            mask_predictor=MaskRCNNPredictor(split.mask_channels, 256, cfg.num_classes + 1),
        )
    return parts
