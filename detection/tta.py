"""Test-time augmentation: the paper's multi-scale testing with horizontal flips, merged by NMS or box voting.

    >>> from detection.tta import TTAConfig, TestTimeAugmentation
    >>> tta = TestTimeAugmentation(model, TTAConfig(scales=(640, 800, 960), flip=True, merge="vote"))
    >>> outputs = tta(images)          # what ``model(images)`` returns in eval mode

He et al. (2015), Appendix B, tests a detector at several scales and merges the
detections: each augmentation (a shorter side in ``scales``, each also
horizontally flipped when ``flip``) runs the whole detector; its boxes are
mapped back to the original image (scaling is done inside the model, flipped
boxes are un-flipped: ``x -> width - x``, the convention of the training-time
flip), and the union of all augmentations' detections is merged per class:

- ``merge="nms"``: torchvision's ``batched_nms`` at IoU ``iou`` over the union;
- ``merge="vote"``: box voting (Appendix B, after Gidaris & Komodakis): the
  same NMS picks the boxes to keep, then each kept box is replaced by the
  score-weighted average of every box of its class in the union whose IoU with
  it is >= ``iou``; its score stays the kept box's.

The model's own ``box_score_thresh`` and ``box_detections_per_img`` (its
RoI heads' settings) apply to the merged result.

Each scale sets the model transform's ``min_size`` to the scale and its
``max_size`` to ``max_size`` when given, else to the model's ``max_size``
scaled by the same factor (``scale / min_size``), so that images capped by the
long side are scaled too; both are restored afterwards, also on an exception.

Masks (Mask R-CNN): the mask head runs after the boxes are merged, on every
augmentation, for the merged boxes mapped into that augmentation (scaled, and
flipped for the flipped ones); the MxM mask probabilities of the box's class
are flipped back where needed, averaged over the augmentations, and pasted
into the original image by the model's own pasting (torchvision's, or
detectron2's for ``compat: detectron2``). This is detectron2's
``GeneralizedRCNNWithTTA``: each merged box gets one mask that every
augmentation contributed to, computed at the box's final place (the masks the
detection passes would give belong to the boxes before merging, which voting
moves). The cost is a second backbone pass per augmentation; the detection
passes skip the mask head.
"""
import contextlib
import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torchvision.models.detection.roi_heads import maskrcnn_inference, paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import batched_nms, box_iou

from backbones.errors import UserError, check_choice

MERGES = ("nms", "vote")
# the command-line flag that sets each key, named in the messages next to the config key
FLAGS = {"scales": "--tta-scales", "merge": "--tta-merge", "iou": "--tta-iou", "flip": "--no-tta-flip"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tta_value(key, value, where="test.tta"):
    """Raise a :class:`UserError` naming ``where.key`` (and its flag) unless ``value`` fits ``key``."""
    flag = f" ({FLAGS[key]})" if key in FLAGS else ""
    setting = f"{where}.{key}={value!r}{flag}"
    if key == "scales":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
            raise UserError(f"{setting}: must be a non-empty list of shorter sides in pixels, e.g. [640, 800, 960]")
        for s in value:
            if not _is_int(s) or s < 1:
                raise UserError(f"{setting}: {s!r} is not a size; each scale is a shorter side in pixels, an "
                                f"integer >= 1, e.g. [640, 800, 960]")
    elif key == "flip":
        if not isinstance(value, bool):
            raise UserError(f"{setting}: must be true or false")
    elif key == "merge":
        if value not in MERGES:
            raise UserError(f"{setting}: must be nms (per-class NMS) or vote (box voting, the paper's)")
    elif key == "iou":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise UserError(f"{setting}: must be in (0, 1]; it is the IoU at which boxes of a class are merged, "
                            f"e.g. 0.5 (Fast R-CNN's NMS) or 0.7")
    elif key == "max_size":
        if value is not None and (not _is_int(value) or value < 1):
            raise UserError(f"{setting}: must be an integer >= 1 (the longer side's cap in pixels), or null to "
                            f"scale the model's max_size with each scale")
    else:
        check_choice(f"key in {where}", key, [f.name for f in dataclasses.fields(TTAConfig)])


def check_tta_mapping(values, where="test.tta"):
    """Check a (possibly partial) ``test.tta`` mapping from a config file or a checkpoint."""
    if not isinstance(values, dict):
        raise UserError(f"{where} must be a mapping such as {{scales: [640, 800, 960], flip: true, merge: vote}}, "
                        f"got {values!r}")
    for key, value in values.items():
        check_tta_value(key, value, where)


@dataclass(frozen=True)
class TTAConfig:
    scales: Sequence[int]            # shorter sides in pixels, each a full pass of the detector
    flip: bool = True                # also run each scale on the horizontally flipped image
    merge: str = "vote"              # "nms" | "vote" (box voting, He et al. Appendix B)
    iou: float = 0.5                 # IoU of the per-class NMS and of the voting neighbourhood
    max_size: Optional[int] = None   # the longer side's cap; None: the model's, scaled with each scale

    def __post_init__(self):
        if isinstance(self.scales, list):
            object.__setattr__(self, "scales", tuple(self.scales))
        for f in dataclasses.fields(self):
            check_tta_value(f.name, getattr(self, f.name), "tta")

    @classmethod
    def from_dict(cls, values, default: Optional["TTAConfig"] = None, where="test.tta") -> "TTAConfig":
        """A config from a mapping (YAML's ``test.tta``); keys it lacks come from ``default`` (without one,
        ``scales`` is required)."""
        check_tta_mapping(values, where)
        if "scales" not in values and default is None:
            raise UserError(f"{where} needs scales (shorter sides in pixels, e.g. [640, 800, 960])")
        return dataclasses.replace(default, **values) if default is not None else cls(**values)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @property
    def augmentations(self) -> tuple:
        """((scale, flipped), ...) in the order they run."""
        return tuple((s, f) for s in self.scales for f in ((False, True) if self.flip else (False,)))

    def describe(self) -> str:
        merge = "box voting" if self.merge == "vote" else "NMS"
        return (f"test-time augmentation: shorter side {', '.join(map(str, self.scales))}"
                f"{' x (as is, flipped)' if self.flip else ''}, merged per class by {merge} at IoU {self.iou:g}")


def _base_min_size(model_config) -> int:
    size = model_config.min_size
    return int(size[-1] if isinstance(size, (list, tuple)) else size)  # the size evaluation uses


def default_tta(model_config) -> TTAConfig:
    """0.8x, 1x and 1.2x the model's test size (its last ``min_size``), each flipped too, merged by box
    voting at IoU 0.5: what ``--tta`` runs when the checkpoint's config has no ``test.tta``."""
    base = _base_min_size(model_config)
    scales = sorted({max(1, round(0.8 * base)), base, round(1.2 * base)})
    return TTAConfig(scales=tuple(scales), flip=True, merge="vote", iou=0.5)


def checkpoint_tta(train_config, model_config, settings=True, where="the checkpoint's test.tta") -> Optional[TTAConfig]:
    """The test-time augmentation a checkpoint runs with: None when ``settings`` is None or False; a
    :class:`TTAConfig` as given; True: the ``test.tta`` of the checkpoint's training config (``train_config``,
    its keys over :func:`default_tta`), else :func:`default_tta`; a mapping: those keys over what True gives."""
    if settings is None or settings is False:
        return None
    if isinstance(settings, TTAConfig):
        return settings
    saved = ((train_config or {}).get("test") or {}).get("tta")
    tta = default_tta(model_config)
    if saved is not None:
        tta = TTAConfig.from_dict(saved, tta, where=where)
    if settings is True:
        return tta
    return TTAConfig.from_dict(settings, tta, where="tta")


def unflip_boxes(boxes: torch.Tensor, width) -> torch.Tensor:
    """xyxy boxes found on a horizontally flipped image of ``width``, in the unflipped image."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def merge_detections(boxes, scores, labels, method="vote", iou=0.5, score_thresh=0.0, max_detections=None,
                     return_index=False):
    """Per-class merge of pooled detections: ``(boxes, scores, labels)`` sorted by score, at most
    ``max_detections``. ``nms``: torchvision's ``batched_nms``; ``vote``: the boxes NMS keeps, each moved
    to the score-weighted mean of the boxes of its class with IoU >= ``iou`` with it. ``return_index``:
    also the index of each kept detection in the input (to carry what else it has, e.g. its mask)."""
    check_choice("merge", method, MERGES)
    above = torch.where(scores > score_thresh)[0]
    boxes, scores, labels = boxes[above], scores[above], labels[above]
    keep = batched_nms(boxes, scores, labels, iou)[:max_detections]
    kept = boxes[keep]
    if method == "vote" and len(keep):
        overlap = box_iou(kept, boxes)
        weights = scores[None, :] * ((overlap >= iou) & (labels[keep][:, None] == labels[None, :]))
        total = weights.sum(1, keepdim=True)
        voted = (weights @ boxes) / total.clamp_min(torch.finfo(boxes.dtype).tiny)
        kept = torch.where(total > 0, voted, kept)  # a degenerate box (no area, IoU undefined) stays
    if return_index:
        return kept, scores[keep], labels[keep], above[keep]
    return kept, scores[keep], labels[keep]


class TestTimeAugmentation(nn.Module):
    """A built detector (torchvision ``FasterRCNN``/``MaskRCNN`` as :func:`detection.detector.build_detector`
    makes them) run at several scales and flips, detections merged; see the module's description.

    ``forward(images)`` takes and returns what the model does in eval mode. ``.config`` is the model's
    :class:`~detection.detector.DetectorConfig`, ``.tta`` the :class:`TTAConfig`.
    """
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, model: nn.Module, config: TTAConfig):
        super().__init__()
        if not isinstance(config, TTAConfig):
            raise UserError(f"TestTimeAugmentation takes a TTAConfig (TTAConfig.from_dict for a mapping), "
                            f"got {type(config).__name__}")
        for part in ("transform", "backbone", "roi_heads"):
            if not hasattr(model, part):
                raise UserError(f"test-time augmentation needs a torchvision Faster/Mask R-CNN (with transform, "
                                f"backbone and roi_heads); {type(model).__name__} has no {part}")
        self.model = model
        self.tta = config
        self.config = getattr(model, "config", None)
        self.train(model.training)  # the wrapper starts in the model's mode

    @property
    def has_mask(self) -> bool:
        return self.model.roi_heads.has_mask()

    @contextlib.contextmanager
    def _at_scale(self, scale):
        t = self.model.transform
        saved = t.min_size, t.max_size
        base = int(saved[0][-1])
        t.min_size = (int(scale),)
        t.max_size = self.tta.max_size if self.tta.max_size is not None else max(1, round(saved[1] * scale / base))
        try:
            yield
        finally:
            t.min_size, t.max_size = saved

    @contextlib.contextmanager
    def _without_masks(self):
        """The detection passes: torchvision's RoIHeads skip the mask branch without a mask_roi_pool."""
        heads = self.model.roi_heads
        saved = heads.mask_roi_pool
        heads.mask_roi_pool = None
        try:
            yield
        finally:
            heads.mask_roi_pool = saved

    def forward(self, images, targets=None):
        if self.model.training or targets is not None:
            raise UserError("test-time augmentation is for inference: call .eval() and pass images only")
        sizes = [tuple(im.shape[-2:]) for im in images]
        pooled = [[] for _ in images]
        for scale, flipped in self.tta.augmentations:
            with self._at_scale(scale), self._without_masks():
                outputs = self.model([im.flip(-1) if flipped else im for im in images])
            for found, out, (_, width) in zip(pooled, outputs, sizes):
                found.append((unflip_boxes(out["boxes"], width) if flipped else out["boxes"], out["scores"],
                              out["labels"]))
        heads = self.model.roi_heads
        results = []
        for found in pooled:
            boxes, scores, labels = (torch.cat(parts) for parts in zip(*found))
            boxes, scores, labels = merge_detections(boxes, scores, labels, self.tta.merge, self.tta.iou,
                                                     heads.score_thresh, heads.detections_per_img)
            results.append({"boxes": boxes, "scores": scores, "labels": labels})
        if self.has_mask:
            self._add_masks(images, sizes, results)
        return results

    def _add_masks(self, images, sizes, results):
        heads = self.model.roi_heads
        sums = [None] * len(results)
        if sum(len(r["boxes"]) for r in results):
            for scale, flipped in self.tta.augmentations:
                with self._at_scale(scale):
                    batch, _ = self.model.transform([im.flip(-1) if flipped else im for im in images])
                    features = self.model.backbone(batch.tensors)
                    if isinstance(features, torch.Tensor):
                        features = OrderedDict([("0", features)])
                    boxes = [resize_boxes(unflip_boxes(r["boxes"], size[1]) if flipped else r["boxes"], size,
                                          resized)
                             for r, size, resized in zip(results, sizes, batch.image_sizes)]
                    logits = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, boxes,
                                                                                      batch.image_sizes)))
                    probabilities = maskrcnn_inference(logits, [r["labels"] for r in results])
                for i, p in enumerate(probabilities):
                    p = p.flip(-1) if flipped else p
                    sums[i] = p if sums[i] is None else sums[i] + p
        paste = self._paste_function()
        for r, total, size in zip(results, sums, sizes):
            if total is None or not len(r["boxes"]):
                r["masks"] = r["boxes"].new_zeros((0, 1) + size)
            else:
                r["masks"] = paste(total / len(self.tta.augmentations), r["boxes"], size)

    def _paste_function(self):
        from .detectron2_compat import Detectron2Transform, paste_masks_detectron2
        if isinstance(self.model.transform, Detectron2Transform):
            return paste_masks_detectron2
        return paste_masks_in_image


__all__ = ["MERGES", "TTAConfig", "TestTimeAugmentation", "check_tta_mapping", "checkpoint_tta", "default_tta", "merge_detections",
           "unflip_boxes"]
