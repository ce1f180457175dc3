"""The torch Dataset behind training, evaluation and drawing, for any loaded format.

Items follow torchvision's detection convention: a float RGB image tensor in
[0, 1] (C, H, W) and a target dict with ``boxes`` (x1, y1, x2, y2, 0-based
continuous pixels), ``labels`` (1..C, 0 is background), ``masks`` (N, H, W
uint8, when asked for) and ``image_id`` (the dataset's own id). Objects
flagged ``ignore`` (difficult, crowd) are left out of training targets.
"""
import sys

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from backbones.errors import UserError

from .records import DetectionData
from .transforms import resizes, seed_augmentation


def read_image_file(path) -> np.ndarray:
    """Decode an image file to RGB uint8; missing, corrupt and truncated files get an error naming them.

    OpenCV decodes a truncated JPEG into a partly grey image without failing,
    so JPEGs must also end with their end-of-image marker.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        raise UserError(f"cannot read image {path} (missing or corrupt)") from None
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-16:].tobytes():
        raise UserError(f"image {path} is truncated (no JPEG end marker)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if len(data) else None
    if image is None:
        raise UserError(f"cannot read image {path} (missing or corrupt)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_segmentation(segmentation, height, width) -> np.ndarray:
    """COCO polygons, uncompressed or compressed RLE -> (H, W) uint8 mask."""
    if isinstance(segmentation, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle)


class DetectionDataset(torch.utils.data.Dataset):
    def __init__(self, data: DetectionData, augment=None, with_masks=False, skip_unreadable=False):
        if with_masks and any(r.segmentations is None for r in data.records if len(r.boxes)):
            raise UserError(f"dataset {data.name} has no instance masks; train without --mask")
        self.data, self.name = data, data.name
        self.records = data.records
        self.class_names, self.category_ids = list(data.class_names), list(data.category_ids)
        self.augment, self.with_masks, self.skip_unreadable = augment, with_masks, skip_unreadable
        self.skipped = set()  # unreadable images met by this process (skip_unreadable=True)
        self.image_ids = [r.image_id for r in self.records]
        self._index = {image_id: i for i, image_id in enumerate(self.image_ids)}

    @property
    def resizes_images(self) -> bool:
        """Whether the augmentation resizes images (its samples' targets then say ``"resized": True``)."""
        return resizes(self.augment)

    def __len__(self):
        return len(self.records)

    def record(self, image_id):
        return self.records[self._index[image_id]]

    def read_image(self, image_id) -> np.ndarray:
        """RGB uint8 (H, W, 3); a missing, corrupt or truncated file gets an error naming it."""
        return read_image_file(self.record(image_id).file_name)

    def annotations(self, image_id) -> dict:
        """Training targets in original pixels as numpy arrays (ignored objects left out)."""
        rec = self.record(image_id)
        keep = ~rec.ignore
        target = {"boxes": rec.boxes[keep].reshape(-1, 4), "labels": rec.labels[keep]}
        if self.with_masks:
            masks = [decode_segmentation(s, rec.height, rec.width)
                     for s, k in zip(rec.segmentations or [], keep) if k]
            target["masks"] = np.stack(masks) if masks else np.zeros((0, rec.height, rec.width), np.uint8)
        return target

    def __getitem__(self, item):
        """``index``, or ``(index, seed)``: augment with a stream of its own (see data/sampler.py)."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        for step in range(len(self)):
            image_id = self.image_ids[(index + step) % len(self)]
            try:
                image = self.read_image(image_id)
                break
            except UserError as err:
                if not self.skip_unreadable:
                    raise
                if image_id not in self.skipped:
                    self.skipped.add(image_id)
                    print(f"warning: skipping {err}", file=sys.stderr)
        else:
            raise UserError(f"no image of {self.name} can be read")
        target = self.annotations(image_id)
        if self.augment is not None:
            if seed is not None:
                seed_augmentation(self.augment, seed)
            out = self.augment(image=image, bboxes=target["boxes"], labels=target["labels"],
                               **({"masks": list(target["masks"])} if self.with_masks else {}))
            image = out["image"]
            target["boxes"] = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            target["labels"] = np.asarray(out["labels"], dtype=np.int64)
            if self.with_masks:
                target["masks"] = np.stack(out["masks"]) if len(out["masks"]) else target["masks"][:0]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in target.items()}
        tensors["image_id"] = image_id
        if self.resizes_images:
            tensors["resized"] = True  # the detector's transform must not resize it again (DetectorTransform)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255), tensors


def collate(batch):
    """Detection batches are lists: images differ in size."""
    return tuple(zip(*batch))
