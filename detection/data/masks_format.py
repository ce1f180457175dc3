"""Instance-id mask PNGs (the Penn-Fudan layout and many segmentation sets) -> :class:`DetectionData`.

A folder of images and a folder of one PNG per image, whose pixel values are
instance ids: 0 is background, every other value one object::

    PNGImages/FudanPed00001.png     images (.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp)
    PedMasks/FudanPed00001_mask.png the mask of <stem>.<ext> is <stem><mask_suffix>.png

Values are read as stored (palette indices of a mode "P" PNG, not their
colours; 16-bit values of an "I;16" PNG). An object's class is the one class
of ``classes`` or, with a second folder of class-id PNGs (``class_masks``,
pixel value = class id 1..C), the majority class under the object's pixels
(not unanimous: counted in ``problems.mask_problems``). ``void`` (e.g. 255)
names a value that is neither background nor an object (boundaries, "ignore"
regions). Masks become compressed COCO RLE (exact), boxes their tight extent
in 0-based continuous pixels (x2 = last column + 1, pycocotools' toBbox x + w).
"""
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from backbones.errors import UserError

from .records import DataProblems, DetectionData, ImageRecord, note_duplicates

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def load_masks(images, masks, classes=None, class_masks=None, mask_suffix="", void=None, name=None,
               strict=True) -> DetectionData:
    """Load every image of the folder ``images`` with its instance-id PNG from the folder ``masks``.

    ``classes``: the class names; with one name every object is of it, with
    more the folder ``class_masks`` gives each pixel's class id (1..C).
    ``mask_suffix``: the mask of ``<stem>.<ext>`` is ``<stem><mask_suffix>.png``.
    ``void``: a pixel value that is not an object (in both kinds of PNG).
    A missing, unreadable or mis-sized mask raises :class:`UserError` naming
    the file; images without objects and disagreeing classes are counted in
    ``problems``. Two images of one stem (``a.jpg``, ``a.png``) would share a
    mask: refused, or with ``strict=False`` (``check_dataset``) noted.
    """
    images, masks = Path(images), Path(masks)
    class_masks = Path(class_masks) if class_masks is not None else None
    classes = _check_classes(classes, class_masks)
    if void is not None and (isinstance(void, bool) or not isinstance(void, int) or void <= 0):
        raise UserError(f"void must be a positive whole pixel value such as 255, got {void!r}")
    if not isinstance(mask_suffix, str):
        raise UserError(f"mask_suffix must be text such as _mask, got {mask_suffix!r}")
    files = _image_files(images, masks, mask_suffix)
    problems = DataProblems()
    note_duplicates([f.stem for f in files], problems, lambda stem, where: (
        f"{images}: {len(where)} images have the stem {stem!r} ({', '.join(files[k].name for k in where)}) "
        f"and would share the mask {masks / (stem + mask_suffix + '.png')}; keep one"))
    if strict:
        problems.refuse_errors()
    records = [_record(f, masks / f"{f.stem}{mask_suffix}.png",
                       class_masks / f"{f.stem}{mask_suffix}.png" if class_masks else None,
                       len(classes), void, problems) for f in files]
    return DetectionData(name=name or masks.name, records=records, class_names=list(classes),
                         category_ids=list(range(1, len(classes) + 1)), problems=problems)


def _check_classes(classes, class_masks) -> list:
    if not classes:
        raise UserError("the masks format needs classes: the class names (one name: every object is of it; "
                        "more: give class_masks, a folder of PNGs whose pixel values are class ids 1..C)")
    if len(classes) > 1 and class_masks is None:
        raise UserError(f"classes lists {len(classes)} names ({', '.join(classes)}) but there is no class_masks "
                        f"folder to tell the objects' classes; give class_masks (PNGs of class ids 1..C) or a "
                        f"single class")
    if len(set(classes)) != len(classes):
        raise UserError(f"classes lists {sorted({c for c in classes if classes.count(c) > 1})} more than once")
    return list(classes)


def _image_files(images: Path, masks: Path, mask_suffix) -> list:
    """The image files of ``images`` in name order (the masks themselves left out where the folders are one)."""
    for folder, what in ((images, "images"), (masks, "masks")):
        if not folder.is_dir():
            raise UserError(f"{what} folder {folder} does not exist")
    same = images.resolve() == masks.resolve()
    if same and not mask_suffix:
        raise UserError(f"images and masks are the same folder ({images}): name the masks <stem><suffix>.png "
                        f"and give mask_suffix (e.g. _mask)")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not (same and p.stem.endswith(mask_suffix)))
    if not files:
        raise UserError(f"images folder {images} has no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def read_index_png(path: Path, what: str) -> np.ndarray:
    """The stored values of a single-channel PNG (H, W): palette indices of a mode "P" image, not their
    colours; 8- or 16-bit grey levels. An RGB file is accepted only when its three channels are equal."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            values = np.array(image)
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {what} {path}: {err}") from None
    if mode in ("RGB", "RGBA"):
        if not ((values[..., 0] == values[..., 1]).all() and (values[..., 0] == values[..., 2]).all()):
            raise UserError(f"{what} {path} is a colour ({mode}) image; it must hold one value per pixel "
                            f"(a grey, 16-bit or palette PNG whose values are ids)")
        values = values[..., 0]
    elif values.ndim != 2:
        raise UserError(f"{what} {path} has {values.shape[2]} channels (mode {mode}); it must hold one value "
                        f"per pixel (a grey, 16-bit or palette PNG whose values are ids)")
    return values.astype(np.int64)


def shown_size(path: Path) -> tuple:
    """(width, height) of an image as shown (its EXIF orientation applied, as OpenCV decodes it), and its
    stored size; from the header only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None
    return ((height, width) if orientation in (5, 6, 7, 8) else (width, height)), (width, height)


def check_mask_size(mask, mask_path, image_path, what="mask"):
    """``(width, height)`` of the image when ``mask`` has it; otherwise an error naming both sizes."""
    (width, height), stored = shown_size(image_path)
    if mask.shape == (height, width):
        return width, height
    message = (f"{what} {mask_path} is {mask.shape[1]}x{mask.shape[0]} pixels (width x height) but its image "
               f"{image_path} is {width}x{height}")
    if mask.shape == (stored[1], stored[0]):
        raise UserError(f"{message} as shown: the mask was made on the photo's stored pixels, which its EXIF "
                        f"orientation tag turns; save the photo upright (PIL's ImageOps.exif_transpose) and turn "
                        f"the mask the same way")
    raise UserError(f"{message}; a mask must have its image's size")


def encode(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a binary (H, W) mask, ``counts`` as text (as in COCO JSON)."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_box(rle) -> list:
    """The tight x1 y1 x2 y2 box of an RLE mask in 0-based continuous pixels (x2 = x + w of toBbox)."""
    x, y, w, h = mask_util.toBbox(rle).tolist()
    return [x, y, x + w, y + h]


def majority_class(class_values: np.ndarray, void) -> tuple:
    """(class id, unanimous) of the class-id pixels under one object: the most frequent id other than 0 and
    ``void`` (0 when there is none)."""
    values = class_values[(class_values != 0) & (class_values != (void if void is not None else -1))]
    if not len(values):
        return 0, False
    ids, counts = np.unique(values, return_counts=True)
    return int(ids[np.argmax(counts)]), len(ids) == 1


def _record(image_path, mask_path, class_path, num_classes, void, problems) -> ImageRecord:
    if not mask_path.is_file():
        raise UserError(f"image {image_path} has no mask: {mask_path} does not exist (the mask of <stem>.<ext> "
                        f"is <stem><mask_suffix>.png in the masks folder)")
    instances = read_index_png(mask_path, "mask")
    width, height = check_mask_size(instances, mask_path, image_path)
    class_ids = None
    if class_path is not None:
        if not class_path.is_file():
            raise UserError(f"image {image_path} has no class mask: {class_path} does not exist")
        class_ids = read_index_png(class_path, "class mask")
        check_mask_size(class_ids, class_path, image_path, "class mask")
        top = int(class_ids[class_ids != (void if void is not None else -1)].max(initial=0))
        if top > num_classes:
            raise UserError(f"class mask {class_path} has class id {top} but classes lists {num_classes} names "
                            f"(ids 1..{num_classes}, 0 background{'' if void is None else f', {void} void'})")
    ids = [int(v) for v in np.unique(instances) if v != 0 and v != void]
    boxes, labels, segmentations = [], [], []
    for value in ids:
        pixels = instances == value
        label = 1
        if class_ids is not None:
            label, unanimous = majority_class(class_ids[pixels], void)
            if label == 0:
                problems.note("dropped_boxes", f"{mask_path}: object {value} has no class in {class_path} "
                                               f"(only background{'' if void is None else ' or void'} under it)")
                continue
            if not unanimous:
                found = np.unique(class_ids[pixels])
                problems.note("mask_problems", f"{mask_path}: object {value} covers class ids "
                                               f"{found.tolist()} in {class_path}; it is given the majority, "
                                               f"{label}")
        rle = encode(pixels)
        boxes.append(rle_box(rle))
        labels.append(label)
        segmentations.append(rle)
    if not boxes:
        problems.note("images_without_objects", f"{mask_path}: no objects (only 0"
                                                 f"{'' if void is None else f' and {void}'} in it)")
    return ImageRecord(image_id=image_path.stem, file_name=image_path, width=width, height=height,
                       boxes=np.array(boxes, np.float32).reshape(-1, 4), labels=np.array(labels, np.int64),
                       ignore=np.zeros(len(boxes), bool), segmentations=segmentations)
