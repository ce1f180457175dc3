"""Global context in the box head, the paper's Appendix B:

    "Given the full-image conv feature map, we pool a feature by global Spatial Pyramid Pooling (with a
    "single-level" pyramid) which can be implemented as "RoI" pooling using the entire image's bounding box
    as the RoI. This pooled feature is fed into the post-RoI layers to obtain a global context feature. This
    global feature is concatenated with the original per-region feature, followed by the sibling
    classification and box regression layers. This new structure is trained end-to-end."

Composed from torchvision's parts, without touching ``RoIHeads``: the RoI pooler also pools each image's
whole box (one extra RoI per image, last of its image), the box head runs on all of them (the same weights:
"the post-RoI layers"), and the predictor appends each image's context feature to every RoI feature of that
image before its two sibling layers, which take twice the width. ``model.global_context: true`` builds it.
"""
import torch
from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor


class _Split:
    """How many RoIs each image had at the last pooling: the pooler writes it, the predictor reads it."""
    counts = None


class ContextRoIPool(nn.Module):
    """The RoI pooler, with each image's whole box pooled after that image's RoIs."""

    def __init__(self, pool: nn.Module, split: _Split):
        super().__init__()
        self.pool, self.split = pool, split

    def forward(self, features, proposals, image_shapes):
        self.split.counts = [len(p) for p in proposals]
        whole = [p.new_tensor([[0.0, 0.0, w, h]]) for p, (h, w) in zip(proposals, image_shapes)]
        return self.pool(features, [torch.cat([p, box]) for p, box in zip(proposals, whole)], image_shapes)


class ContextPredictor(nn.Module):
    """Class scores and box deltas from [RoI feature, its image's context feature]."""

    def __init__(self, in_features: int, num_classes: int, split: _Split):
        super().__init__()
        self.predictor = FastRCNNPredictor(2 * in_features, num_classes)
        self.split = split

    def forward(self, x):
        x = x.flatten(start_dim=1)
        rows = []
        for part in x.split([n + 1 for n in self.split.counts]):
            rois, context = part[:-1], part[-1:]
            rows.append(torch.cat([rois, context.expand(len(rois), -1)], dim=1))
        return self.predictor(torch.cat(rows))


def add_global_context(detector):
    """Give ``detector``'s box head the paper's global context (in place): its predictor is replaced by one
    twice as wide, so this is a training-time change (weights of a model without it do not fit)."""
    heads = detector.roi_heads
    old, split = heads.box_predictor, _Split()
    heads.box_roi_pool = ContextRoIPool(heads.box_roi_pool, split)
    heads.box_predictor = ContextPredictor(old.cls_score.in_features, old.cls_score.out_features, split)
    return detector
