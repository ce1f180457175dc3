"""The torch Dataset behind training, evaluation and drawing, for any loaded format.

Items follow torchvision's detection convention: a float RGB image tensor in
[0, 1] (C, H, W) and a target dict with ``boxes`` (x1, y1, x2, y2, 0-based
continuous pixels), ``labels`` (1..C, 0 is background), ``masks`` (N, H, W
uint8, when asked for) and ``image_id`` (the dataset's own id). Objects
flagged ``ignore`` (difficult, crowd) are left out of training targets.

Image files are checked twice: that they exist, for a whole dataset at once
before training or evaluation starts (:func:`require_image_files`, a stat
each), and that each decodes to the size its annotations declare, when it is
read (:func:`check_image_size`).
"""
import sys
from pathlib import Path

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


def check_image_size(image: np.ndarray, record) -> np.ndarray:
    """``image`` when it has the size ``record`` declares, which its boxes and masks are in pixels of.

    A resized image or wrong annotations would otherwise fail inside
    albumentations, or silently misplace every box. OpenCV applies a JPEG's
    EXIF orientation, so a photo annotated on its stored pixels decodes rotated.
    """
    height, width = image.shape[:2]
    if (width, height) == (record.width, record.height):
        return image
    sizes = (f"image {record.file_name} is {width}x{height} pixels (width x height) but its annotations declare "
             f"{record.width}x{record.height}")
    if (height, width) == (record.width, record.height):
        raise UserError(f"{sizes}, the same turned by 90 degrees: the file probably has an EXIF orientation tag, "
                        f"which OpenCV applies when decoding; save the photo upright (e.g. with PIL's "
                        f"ImageOps.exif_transpose) and annotate the upright pixels")
    raise UserError(f"{sizes}; correct the width and height (and boxes) in the annotations, or the image file if it "
                    f"was resized after annotating (a photo with an EXIF orientation tag also decodes rotated)")


def missing_image_files(records) -> list:
    """The records whose image file does not exist: a stat each, cheap next to decoding."""
    return [r for r in records if not Path(r.file_name).is_file()]


def require_image_files(records, name, warn=False):
    """Stop, before the first iteration rather than hours into a run, when image files of ``records`` are
    missing; with ``warn`` (images that cannot be read are skipped) say so and go on."""
    missing = missing_image_files(records)
    if not missing:
        return
    shown = ", ".join(str(r.file_name) for r in missing[:3])
    more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
    message = (f"{name}: {len(missing)} of {len(records)} image files are missing, e.g. {shown}{more}; check the "
               f"dataset's images folder (python tools/check_dataset.py lists every missing file)")
    if not warn:
        raise UserError(message)
    print(f"warning: {message}; they will be skipped", file=sys.stderr)


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
        """RGB uint8 (H, W, 3); a missing, corrupt, truncated or mis-sized file gets an error naming it."""
        record = self.record(image_id)
        return check_image_size(read_image_file(record.file_name), record)

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
