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
from PIL import Image
from pycocotools import mask as mask_utils

from backbones.errors import UserError

from .mask_raster import instance_masks
from .records import DetectionData
from .transforms import flipped, masks_follow, resizes, seed_augmentation


EXIF_ORIENTATION = 0x0112  # the EXIF tag: how the stored pixels are turned or mirrored to be shown (1: as stored)
TURNED = (5, 6, 7, 8)      # the orientations that show the stored pixels turned by 90 degrees: width <-> height


def read_image_file(path) -> np.ndarray:
    """Decode an image file to RGB uint8 (H, W, 3) as it is displayed; missing, corrupt and truncated files get
    an error naming them.

    Pixels are those a viewer shows, which annotation tools (and COCO) annotate: EXIF orientation applied, as
    detectron2's ``read_image`` and PIL's ``ImageOps.exif_transpose`` do (OpenCV's ``IMREAD_COLOR`` applies it
    to JPEG, PNG, WebP and TIFF; ``IMREAD_IGNORE_ORIENTATION`` is not set). Every colour mode becomes 8-bit RGB:
    grayscale is replicated, palette PNGs are expanded, alpha is dropped (no compositing: the stored colour of a
    transparent pixel is kept, as PIL's ``convert("RGB")`` keeps it), 16-bit images are scaled to 8 bits by
    ``>> 8`` as PIL reads a 16-bit RGB PNG (PIL's ``convert("RGB")`` would clip a 16-bit grayscale to 255, and
    OpenCV alone rounds v / 257 for a TIFF), CMYK JPEGs are converted as PIL converts them (within 1 level);
    float samples are refused. The file is read as bytes (``np.fromfile``), so any file name works.

    OpenCV decodes a truncated JPEG into a partly grey image without failing,
    so JPEGs must also end with their end-of-image marker.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        raise UserError(f"cannot read image {path} (missing or corrupt)") from None
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-16:].tobytes():
        raise UserError(f"image {path} is truncated (no JPEG end marker)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if len(data) else None
    if image is None:
        raise UserError(f"cannot read image {path} (missing or corrupt)")
    if image.dtype == np.uint16:  # OpenCV's own 8-bit conversion depends on the format (TIFF: v / 257 rounded)
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:  # a float or 32-bit TIFF: no one range to scale from
        raise UserError(f"image {path} has {image.dtype} samples; save it with 8 or 16 bits per channel")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def exif_orientation(path) -> int:
    """An image file's EXIF orientation (1..8; 1 when it has none, or EXIF PIL cannot parse), from its header."""
    try:
        with Image.open(path) as image:
            return _orientation(image)
    except OSError:
        return 1


def _orientation(image) -> int:
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF (detectron2 issue 1885): taken as none
        return 1
    return orientation if orientation in range(1, 9) else 1


def image_size(path) -> tuple:
    """(width, height) of an image file as :func:`read_image_file` decodes it (EXIF orientation 5-8 swaps the
    stored width and height), from its header only: for formats whose annotations do not state the size.
    PIL's errors (OSError) are the caller's to name."""
    with Image.open(path) as image:
        width, height = image.size
        if image.format == "TIFF":  # the stored size: Pillow 11+ reports a TIFF's size already turned
            width, height = image.tag_v2.get(256, width), image.tag_v2.get(257, height)
        turned = _orientation(image) in TURNED
    return (height, width) if turned else (width, height)


def check_image_size(image: np.ndarray, record) -> np.ndarray:
    """``image`` when it has the size ``record`` declares, which its boxes and masks are in pixels of.

    A resized image or wrong annotations would otherwise fail inside
    albumentations, or silently misplace every box. Images are read as
    displayed (EXIF orientation applied), so a photo whose EXIF turns it by
    90 degrees and whose annotations were made on its stored pixels is named
    as such. (A photo turned by 180 degrees or mirrored keeps its size: that
    mistake cannot be seen here.)
    """
    height, width = image.shape[:2]
    if (width, height) == (record.width, record.height):
        return image
    sizes = (f"image {record.file_name} is {width}x{height} pixels (width x height) but its annotations "
             f"declare {record.width}x{record.height}")
    if (height, width) == (record.width, record.height):
        orientation = exif_orientation(record.file_name)
        if orientation in TURNED:
            raise UserError(f"{sizes}: its EXIF orientation ({orientation}) shows the stored {height}x{width} "
                            f"pixels turned by 90 degrees, and images are read as displayed (as viewers, annotation "
                            f"tools and detectron2 show them), so the annotations were made on the unrotated "
                            f"pixels; annotate the photo as displayed, or set its orientation tag to 1 so that it "
                            f"reads as annotated (exiftool -n -Orientation=1 FILE)")
        raise UserError(f"{sizes}, the same turned by 90 degrees, and the file has no EXIF orientation tag: the "
                        f"photo was turned after annotating, or the annotations swap width and height")
    raise UserError(f"{sizes}; correct the width and height (and boxes) in the annotations, or the image file if it "
                    f"was resized after annotating")


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
            boxes = data.problems.objects_without_masks  # boxes among masks: the data was read as boxes only
            raise UserError(f"dataset {data.name} has no instance masks; train without --mask" + (
                f" (its {boxes} box{'es' if boxes > 1 else ''} among objects with masks; set box_masks: true in "
                f"the dataset YAML to give them box-shaped masks; python tools/check_dataset.py lists them)"
                if boxes else " (a VOC folder: masks: true in the dataset YAML reads the instance masks of the "
                              "images of ImageSets/Segmentation/<split>.txt)" if data.split is not None else ""))
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

    def annotations(self, image_id, masks=True) -> dict:
        """Training targets in original pixels as numpy arrays (ignored objects left out); ``masks=False``
        leaves the masks out even when the dataset has them."""
        rec = self.record(image_id)
        keep = ~rec.ignore
        target = {"boxes": rec.boxes[keep].reshape(-1, 4), "labels": rec.labels[keep]}
        if self.with_masks and masks:
            target["masks"] = instance_masks(self._segmentations(rec), rec.height, rec.width)
        return target

    def _segmentations(self, rec) -> list:
        """The segmentations of ``rec``'s objects that are trained on (not ignored)."""
        return [s for s, k in zip(rec.segmentations or [], ~rec.ignore) if k]

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
        # Masks are made at the augmented image's size once it is known (mask_raster: polygons rasterised at
        # that size, not decoded full-size and resized), unless the augmentation moves pixels in other ways
        masks_after = self.with_masks and self.augment is not None and masks_follow(self.augment)
        target = self.annotations(image_id, masks=not masks_after)
        if self.augment is not None:
            if seed is not None:
                seed_augmentation(self.augment, seed)
            # the boxes' labels field carries object indices, to know which objects albumentations kept
            out = self.augment(image=image, bboxes=target["boxes"], labels=np.arange(len(target["labels"])),
                               **({"masks": list(target["masks"])} if "masks" in target else {}))
            image = out["image"]
            kept = np.asarray(out["labels"], dtype=np.int64)
            target["boxes"] = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            target["labels"] = target["labels"][kept]
            if masks_after:
                rec = self.record(image_id)
                segmentations = self._segmentations(rec)
                target["masks"] = instance_masks([segmentations[k] for k in kept], rec.height, rec.width,
                                                 size=image.shape[:2], flip=flipped(self.augment))
            elif self.with_masks:
                target["masks"] = np.stack(out["masks"])[kept] if len(out["masks"]) else target["masks"][:0]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in target.items()}
        tensors["image_id"] = image_id
        if self.resizes_images:
            tensors["resized"] = True  # the detector's transform must not resize it again (DetectorTransform)
        return image_tensor(image), tensors


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """An HWC image as a CHW tensor: 8-bit pixels stay 8-bit, as detectron2's DatasetMapper hands them
    over, so a DataLoader worker pickles a quarter of the bytes of float32 (4 vs 12 ms for an 800 px image);
    the detector's transform scales them to [0, 1] (DetectorTransform.forward). Other dtypes: float [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    return tensor if tensor.dtype == torch.uint8 else tensor.float().div_(255)


def collate(batch):
    """Detection batches are lists: images differ in size."""
    return tuple(zip(*batch))
