"""Training augmentation with albumentations, keeping boxes and masks consistent.

Resizing is left to the detector (torchvision's GeneralizedRCNNTransform
resizes images, boxes and masks together), so this only holds what the model
does not do itself.
"""
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import

import albumentations as A  # noqa: E402


def train_augmentation(hflip_prob: float = 0.5) -> A.Compose:
    return A.Compose([A.HorizontalFlip(p=hflip_prob)],
                     bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]))
