"""``compat="detectron2"``: torchvision's detector made to infer as detectron2 0.6's GeneralizedRCNN.

``build_detector`` composes torchvision's ``FasterRCNN`` / ``MaskRCNN``; with
``DetectorConfig(compat="detectron2")`` it then swaps in the replacements
below, each a subclass of the torchvision component it replaces, so that a
detectron2 model-zoo checkpoint (``detection.convert_detectron2``,
``detection.init.detectron2_zoo``) gives detectron2's detections:

- :class:`Detectron2AnchorGenerator`: cell anchors computed as detectron2's
  ``DefaultAnchorGenerator`` does (Python floats, not rounded to integers),
  and each level's stride the nominal one (4..64, 16 for C4) instead of
  padded image size // feature size (which makes p6's 61 instead of 64 at
  800 px). torchvision's anchor order is kept (ratio-major; the converter
  permutes detectron2's size-major RPN outputs of C4's 15 anchors to it).
- :class:`Detectron2RoIAlign`: ROIAlignV2 (``aligned=True``, adaptive
  sampling ``sampling_ratio=0``) at the nominal strides, boxes assigned to
  levels by detectron2's ``assign_boxes_to_levels`` (canonical box 224 at
  level 4, ``floor(4 + log2(sqrt(area) / 224 + 1e-8))``).
- the RPN keeps every proposal with a positive width and height (detectron2's
  ``MIN_SIZE 0`` / ``nonempty``; torchvision drops those under 1e-3 px).
- :class:`Detectron2RoIHeads`: detectron2's ``fast_rcnn_inference`` rules
  (non-finite predictions dropped, no tiny-box filter; score threshold,
  class-wise NMS and the detection limit as configured).
- :class:`Detectron2Transform`: detectron2's test-time ``ResizeShortestEdge``
  (new size rounded, not floored) applied to the 8-bit image before
  normalising, as its ``DefaultPredictor`` does with PIL: the float [0, 1]
  input is read as 8-bit, resized by PIL's rule (antialiased bilinear,
  horizontal pass first, each pass rounded to 8 bits); padding to 32 for FPN
  and none for C4 (detectron2's ``size_divisibility``); boxes scaled back and
  clipped to the original image and empty ones dropped
  (``detector_postprocess``); masks pasted by detectron2's
  ``paste_masks_in_image`` (grid sampling at the exact box). ``masks`` stay
  probabilities: detectron2's boolean masks are ``masks >= 0.5``.

Training in this mode uses the same anchors, pooling and filters, with
torchvision's losses, samplers and training-time resizing.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops, roi_align
from torchvision.ops.poolers import _convert_to_roi_format

from backbones.errors import UserError

from .detector import DetectorTransform

# detectron2's PROPOSAL_GENERATOR.MIN_SIZE 0 keeps boxes with width and height > 0; torchvision's filter is
# ``>= min_size``: the smallest positive float32 makes it the same
NONEMPTY = torch.finfo(torch.float32).tiny


class Detectron2AnchorGenerator(AnchorGenerator):
    """torchvision's anchor generator with detectron2's unrounded cell anchors and nominal strides."""

    def __init__(self, sizes, aspect_ratios, strides):
        super().__init__(sizes, aspect_ratios)
        if len(strides) != len(self.cell_anchors):
            raise UserError(f"{len(strides)} strides for {len(self.cell_anchors)} anchor levels")
        self.strides = tuple(int(s) for s in strides)

    def generate_anchors(self, scales, aspect_ratios, dtype=torch.float32, device=torch.device("cpu")):
        # detectron2's DefaultAnchorGenerator.generate_cell_anchors, in torchvision's (ratio-major) order
        anchors = []
        for ratio in aspect_ratios:
            for size in scales:
                w = math.sqrt(size ** 2.0 / ratio)
                h = ratio * w
                anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
        return torch.tensor(anchors, dtype=dtype, device=device)

    def forward(self, image_list, feature_maps):
        grid_sizes = [f.shape[-2:] for f in feature_maps]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        strides = [[torch.tensor(s, dtype=torch.int64, device=device)] * 2 for s in self.strides]
        self.set_cell_anchors(dtype, device)
        per_level = self.grid_anchors(grid_sizes, strides)
        return [torch.cat(per_level) for _ in image_list.image_sizes]


def assign_boxes_to_levels(boxes, min_level, max_level, canonical_box_size=224, canonical_level=4):
    """detectron2's ``poolers.assign_boxes_to_levels`` (0-based index from ``min_level``)."""
    sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_box_size + 1e-8))
    return torch.clamp(levels, min=min_level, max=max_level).to(torch.int64) - min_level


class Detectron2RoIAlign(MultiScaleRoIAlign):
    """detectron2's ``ROIPooler`` with ``ROIAlignV2``: aligned=True, adaptive sampling, nominal strides."""

    def __init__(self, featmap_names, output_size, strides, sampling_ratio=0, canonical_scale=224,
                 canonical_level=4):
        super().__init__(list(featmap_names), output_size, sampling_ratio, canonical_scale=canonical_scale,
                         canonical_level=canonical_level)
        self.strides = tuple(int(s) for s in strides)
        self.aligned = True

    def forward(self, x, boxes, image_shapes):
        features = [x[name] for name in self.featmap_names]
        rois = _convert_to_roi_format(boxes)
        scales = [1.0 / s for s in self.strides]
        if len(features) == 1:
            return roi_align(features[0], rois, self.output_size, scales[0], self.sampling_ratio, self.aligned)
        levels = assign_boxes_to_levels(rois[:, 1:], round(math.log2(self.strides[0])),
                                        round(math.log2(self.strides[-1])), self.canonical_scale,
                                        self.canonical_level)
        first = features[0]
        result = first.new_zeros((len(rois), first.shape[1]) + tuple(self.output_size))
        for level, (feature, scale) in enumerate(zip(features, scales)):
            index = torch.where(levels == level)[0]
            result[index] = roi_align(feature, rois[index], self.output_size, scale, self.sampling_ratio,
                                      self.aligned).to(result.dtype)
        return result


class Detectron2RoIHeads(RoIHeads):
    """torchvision's RoI heads with detectron2's ``fast_rcnn_inference_single_image`` post-processing."""

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        num_classes = class_logits.shape[-1]
        counts = [len(p) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals).split(counts)
        pred_scores = F.softmax(class_logits, -1).split(counts)
        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores, image_shape in zip(pred_boxes, pred_scores, image_shapes):
            valid = torch.isfinite(boxes).flatten(1).all(1) & torch.isfinite(scores).all(1)
            boxes = box_ops.clip_boxes_to_image(boxes[valid], image_shape)[:, 1:]  # our background is 0
            scores = scores[valid][:, 1:]
            labels = torch.arange(1, num_classes, device=scores.device).expand_as(scores)
            keep = scores > self.score_thresh  # (RoI, class) pairs in row-major order, as detectron2's
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep])
        return all_boxes, all_scores, all_labels


def detectron2_output_size(height, width, short, max_size):
    """detectron2's ``ResizeShortestEdge.get_output_shape``: (new height, new width), rounded."""
    scale = short * 1.0 / min(height, width)
    new_h, new_w = (short, scale * width) if height < width else (scale * height, short)
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def _pil_bilinear_weights(in_size: int, out_size: int) -> torch.Tensor:
    """PIL's BILINEAR resampling of one axis as an (out, in) matrix of its 8-bit fixed-point weights.

    Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` (Resample.c): a triangle filter
    widened by the scale when shrinking, taps from ``int(centre -+ support + 0.5)``, weights
    normalised, then scaled by 2**22 and rounded half away from zero.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        x = np.arange(xmin, min(xmax, xmin + ksize))
        k = np.clip(1.0 - np.abs((x - center + 0.5) / filterscale), 0, None)
        total = k.sum()
        if total != 0.0:
            k = k / total
        weights[xx, x] = np.where(k < 0, np.trunc(-0.5 + k * _ONE), np.trunc(0.5 + k * _ONE))
    return torch.from_numpy(weights)


_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images
_ONE = float(1 << _PRECISION_BITS)


def _pil_pass(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One PIL pass along the last axis of integer-valued float64 ``x``: exact integer arithmetic
    (products < 2**30, sums < 2**53 in float64), rounded and clipped to 8 bits as Pillow's ``clip8``."""
    total = x @ weights.to(x.device).T + float(1 << (_PRECISION_BITS - 1))
    return torch.div(total, _ONE, rounding_mode="floor").clamp(0, 255)


def resize_8bit(image, size):
    """A float [0, 1] CHW image, read as 8-bit, resized exactly as PIL resizes an 8-bit RGB image with
    ``BILINEAR`` (what detectron2's ``ResizeShortestEdge`` does): horizontal pass first, each pass
    stored as 8 bits. Returns 0..255 values (integers, in ``image``'s dtype)."""
    x = (image.double() * 255).round().clamp(0, 255)
    h, w = size
    if x.shape[-1] != w:
        x = _pil_pass(x, _pil_bilinear_weights(x.shape[-1], w))
    if x.shape[-2] != h:
        x = _pil_pass(x.transpose(-1, -2), _pil_bilinear_weights(x.shape[-2], h)).transpose(-1, -2)
    return x.to(image.dtype)


def paste_masks_detectron2(masks, boxes, image_shape):
    """detectron2's ``paste_masks_in_image`` (its CPU path, one mask at a time), as probabilities.

    Each Mx M mask is grid-sampled (``align_corners=False``) at the pixel centres
    of the box's exact (float) extent; pixels more than one pixel outside it stay 0.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    out = masks.new_zeros((len(masks), 1, height, width), dtype=torch.float32)
    for i, (mask, box) in enumerate(zip(masks, boxes)):
        x0, y0, x1, y1 = box.tolist()
        x0i, y0i = max(math.floor(x0) - 1, 0), max(math.floor(y0) - 1, 0)
        x1i, y1i = min(math.ceil(x1) + 1, width), min(math.ceil(y1) + 1, height)
        if x1i <= x0i or y1i <= y0i:
            continue
        ys = torch.arange(y0i, y1i, device=masks.device, dtype=torch.float32) + 0.5
        xs = torch.arange(x0i, x1i, device=masks.device, dtype=torch.float32) + 0.5
        ys = (ys - box[1]) / (box[3] - box[1]) * 2 - 1
        xs = (xs - box[0]) / (box[2] - box[0]) * 2 - 1
        grid = torch.stack([xs[None, :].expand(len(ys), len(xs)), ys[:, None].expand(len(ys), len(xs))], dim=2)
        out[i, 0, y0i:y1i, x0i:x1i] = F.grid_sample(mask[None].float(), grid[None], align_corners=False)[0, 0]
    return out


class Detectron2Transform(DetectorTransform):
    """Resize (detectron2's rule and 8-bit interpolation) before normalising; detectron2's post-processing.

    Training images are resized as torchvision does (or left alone when the data
    pipeline already did, see :class:`DetectorTransform`).
    """

    def normalize(self, image):
        return image  # after resizing (in resize), as detectron2 resizes the 8-bit image first

    def resize(self, image, target=None):
        if self.training:
            image, target = super().resize(image, target)
        else:
            h, w = image.shape[-2:]
            size = detectron2_output_size(h, w, self.min_size[-1], self.max_size)
            image = resize_8bit(image, size) / 255
            if target is not None and "boxes" in target:
                target["boxes"] = target["boxes"] * torch.tensor([size[1] / w, size[0] / h] * 2,
                                                                 dtype=target["boxes"].dtype)
        return GeneralizedRCNNTransform.normalize(self, image), target

    def postprocess(self, result, image_shapes, original_image_sizes):
        if self.training:
            return result
        for i, (pred, resized, original) in enumerate(zip(result, image_shapes, original_image_sizes)):
            scale_x, scale_y = original[1] / resized[1], original[0] / resized[0]  # detector_postprocess
            boxes = pred["boxes"].clone()
            boxes[:, 0::2] *= scale_x
            boxes[:, 1::2] *= scale_y
            boxes = box_ops.clip_boxes_to_image(boxes, original)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            pred = {k: v[keep] for k, v in pred.items()}
            pred["boxes"] = boxes[keep]
            if "masks" in pred:
                pred["masks"] = paste_masks_detectron2(pred["masks"], pred["boxes"], original)
            result[i] = pred
        return result


def _level_strides(backbone) -> dict:
    """Feature map name -> nominal stride: the FPN's levels (with ``pool``) or the C4 trunk's output."""
    if hasattr(backbone, "level_names") and hasattr(backbone, "strides"):
        return dict(zip(backbone.level_names, backbone.strides))
    return {name: shape.stride for name, shape in backbone.output_shape().items()}


def make_detectron2_compatible(detector, neck: str):
    """Swap the components of a built torchvision detector for their detectron2-compatible versions."""
    strides = _level_strides(detector.backbone)
    rpn = detector.rpn
    old = rpn.anchor_generator
    if len(old.sizes) != len(strides):
        raise UserError(f"compat=detectron2: {len(old.sizes)} anchor levels for {len(strides)} feature maps")
    rpn.anchor_generator = Detectron2AnchorGenerator(old.sizes, old.aspect_ratios, list(strides.values()))
    rpn.min_size = NONEMPTY

    heads = detector.roi_heads
    if type(heads) is not RoIHeads:
        raise UserError(f"compat=detectron2 needs torchvision's RoIHeads, not {type(heads).__name__}")
    heads.__class__ = Detectron2RoIHeads
    for attr in ("box_roi_pool", "mask_roi_pool"):
        pool = getattr(heads, attr, None)
        if isinstance(pool, MultiScaleRoIAlign):
            setattr(heads, attr, Detectron2RoIAlign(pool.featmap_names, pool.output_size,
                                                    [strides[n] for n in pool.featmap_names]))

    t = detector.transform
    detector.transform = Detectron2Transform(t.min_size, t.max_size, t.image_mean, t.image_std,
                                             size_divisible=32 if neck == "fpn" else 1)
    return detector
