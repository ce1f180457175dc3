"""Training augmentation with albumentations, keeping boxes and masks consistent.

The pipeline resizes in the data-loading workers, on uint8 images with
OpenCV, using the detector's own rule (shorter side to a size drawn from
``min_size``, longer side at most ``max_size``), so the model's transform
does not resize them again during training: their targets say ``"resized": True``
(``DetectionDataset``), which ``detection.detector.DetectorTransform`` reads.
At evaluation the model resizes and maps predictions back to original pixels.
Boxes go through albumentations' normalised coordinates: exact up to float32
rounding (~1e-5 px).
"""
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import

import random  # noqa: E402

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
import cv2  # noqa: E402
from albumentations.augmentations.geometric.resize import MaxSizeTransform  # noqa: E402


class ShortestEdgeResize(MaxSizeTransform):
    """Scale so the shorter side is one of ``sizes`` (drawn per image), the longer at most ``max_size``.

    torchvision's GeneralizedRCNNTransform and detectron2's ResizeShortestEdge use this rule.
    """

    def __init__(self, sizes, max_size, p=1.0):
        super().__init__(max_size=max_size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                         p=p)
        self.sizes, self.longest = tuple(sizes), max_size

    def get_params_dependent_on_data(self, params, data):
        h, w = params["shape"][:2]
        size = self.sizes[int(self.random_generator.integers(len(self.sizes)))]
        return {"scale": min(size / min(h, w), self.longest / max(h, w))}


def train_augmentation(min_size=None, max_size=None, hflip_prob=0.5, color_jitter=0.0, seed=0) -> A.Compose:
    """Resize (if ``min_size`` is given; an int or a list for multi-scale), flip, optional colour jitter."""
    steps = []
    if min_size is not None:
        sizes = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        steps.append(ShortestEdgeResize(sizes, max_size or 10 ** 6))
    steps.append(A.HorizontalFlip(p=hflip_prob))
    if color_jitter:
        steps.append(A.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter,
                                   hue=min(0.5, color_jitter / 4), p=0.8))
    return A.Compose(steps, bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]), seed=seed)


def resizes(augment) -> bool:
    """Whether ``augment`` (a pipeline from :func:`train_augmentation`, or None) resizes the images."""
    return augment is not None and any(isinstance(t, ShortestEdgeResize) for t in augment.transforms)


def seed_augmentation(augment: A.Compose, seed: int):
    """Restart ``augment``'s random stream at ``seed``.

    One shared stream for all steps: ``Compose.set_random_seed`` would give
    every step its own identically seeded generator, so e.g. the flip decision
    and the drawn size would be the same random number.
    """
    augment.set_random_state(np.random.default_rng(seed), random.Random(seed))


def masks_follow(augment: A.Compose) -> bool:
    """Whether a sample's masks can be made after ``augment`` ran, from its output image's size and
    :func:`flipped` alone (``detection.data.mask_raster``), rather than passed through it: its only geometric
    steps are at most one :class:`ShortestEdgeResize` followed by horizontal flips (the pipelines of
    :func:`train_augmentation`), every other step changes pixel values only, and it always runs (a skipped
    Compose would leave its steps' last parameters behind)."""
    geometric = [t for t in augment.transforms if not isinstance(t, A.ImageOnlyTransform)]
    resizes = [isinstance(t, ShortestEdgeResize) for t in geometric]
    return (augment.p >= 1 and sum(resizes) <= 1 and not any(resizes[1:])
            and all(isinstance(t, (ShortestEdgeResize, A.HorizontalFlip)) for t in geometric))


def flipped(augment: A.Compose) -> bool:
    """Whether ``augment``'s last call mirrored its image left-right: an odd number of its horizontal flips
    were applied (a step's applied parameters are empty when it was not)."""
    return sum(bool(t.get_applied_params()) for t in augment.transforms if isinstance(t, A.HorizontalFlip)) % 2 == 1
