"""A torch Dataset over COCO-format annotations (the format ``shapes`` is written in).

Items follow torchvision's detection convention: a float RGB image tensor in
[0, 1] (C, H, W) and a target dict with ``boxes`` (x1, y1, x2, y2, 0-based
continuous pixels), ``labels`` (1..C, 0 is background), ``masks`` (N, H, W
uint8) and ``image_id`` (the dataset's own id).
"""
import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO

from backbones.errors import UserError


def load_coco(path) -> COCO:
    """Read a COCO JSON quietly; a malformed file gets an error naming it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except ValueError as err:  # json.JSONDecodeError is a ValueError and carries line/column
        raise UserError(f"{path} is not valid COCO JSON: {err}") from None


class CocoFormatDataset(torch.utils.data.Dataset):
    def __init__(self, annotations, images, augment=None, with_masks=True):
        self.coco = load_coco(annotations)
        self.image_root = Path(images)
        self.augment = augment
        self.with_masks = with_masks
        self.image_ids = sorted(self.coco.imgs)
        # contiguous labels 1..C in category-id order; category_ids maps them back
        self.category_ids = sorted(self.coco.cats)
        self.class_names = [self.coco.cats[c]["name"] for c in self.category_ids]
        self._label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}

    def __len__(self):
        return len(self.image_ids)

    def read_image(self, image_id) -> np.ndarray:
        """RGB uint8 (H, W, 3); a missing or unreadable file gets an error naming it."""
        path = self.image_root / self.coco.imgs[image_id]["file_name"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"cannot read image {path} (missing or corrupt)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def annotations(self, image_id) -> dict:
        """Targets in original pixels as numpy arrays; crowd regions and empty boxes left out."""
        anns = [a for a in self.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        target = {"boxes": boxes[keep],
                  "labels": np.array([self._label_of[a["category_id"]] for a in anns], dtype=np.int64)[keep]}
        if self.with_masks:
            info = self.coco.imgs[image_id]
            masks = [self.coco.annToMask(a) for a, k in zip(anns, keep) if k]
            target["masks"] = np.stack(masks) if masks else np.zeros((0, info["height"], info["width"]), np.uint8)
        return target

    def __getitem__(self, index):
        image_id = self.image_ids[index]
        image, target = self.read_image(image_id), self.annotations(image_id)
        if self.augment is not None:
            out = self.augment(image=image, bboxes=target["boxes"], labels=target["labels"],
                               **({"masks": list(target["masks"])} if self.with_masks else {}))
            image = out["image"]
            target["boxes"] = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            target["labels"] = np.asarray(out["labels"], dtype=np.int64)
            if self.with_masks:
                target["masks"] = np.stack(out["masks"]) if len(out["masks"]) else target["masks"][:0]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in target.items()}
        tensors["image_id"] = image_id
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255), tensors


def collate(batch):
    """Detection batches are lists: images differ in size."""
    return tuple(zip(*batch))
