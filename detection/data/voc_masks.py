"""PASCAL VOC instance masks: ``SegmentationObject/`` and ``SegmentationClass/`` PNGs paired with the XML objects.

The VOC segmentation PNGs hold palette indices (read as stored, not as their
colours): in ``SegmentationObject/<stem>.png`` index k (1-based) is the k-th
``<object>`` of ``Annotations/<stem>.xml`` in file order, in
``SegmentationClass/<stem>.png`` the class index (1..C, in the order of the
class list: VOC's 20 classes are its palette's order); 0 is background and
255 the boundary band of uncertain pixels, part of no mask (the devkit's
evaluation ignores it). Only the images of ``ImageSets/Segmentation/`` have
them (2,913 of VOC 2012's 17,125).

The XML boxes stay the objects' boxes; each object's mask is checked against
its class: a class index under it other than its XML class, an instance
without an XML object, or an object without pixels is counted in
``problems.mask_problems`` and named. An object without pixels is kept for
evaluation only (``ignore``), with an empty mask.
"""
import numpy as np

from backbones.errors import UserError

from .masks_format import encode, majority_class, read_index_png

VOID = 255  # VOC's boundary and "difficult region" index


def object_masks(root, stem, labels, width, height, xml_path, class_names, problems) -> tuple:
    """(RLE per XML object, in file order; bool per object: no pixels) of image ``stem`` of the VOC tree ``root``.

    ``labels`` are the XML objects' labels (1..C), ``width`` x ``height`` the XML size.
    """
    instances = _read(root / "SegmentationObject" / f"{stem}.png", width, height, xml_path)
    classes = _read(root / "SegmentationClass" / f"{stem}.png", width, height, xml_path)
    object_png, class_png = (root / folder / f"{stem}.png" for folder in ("SegmentationObject", "SegmentationClass"))
    for value in np.unique(instances):
        if value != 0 and value != VOID and value > len(labels):
            problems.note("mask_problems", f"{object_png}: instance {value} has no <object> in {xml_path} (it "
                                           f"has {len(labels)}; instance k is the k-th object); its pixels are "
                                           f"left out")
    segmentations, empty = [], []
    for index, label in enumerate(labels):
        pixels = instances == index + 1
        segmentations.append(encode(pixels))
        empty.append(not pixels.any())
        where = f"object index {index} (0-based) of {xml_path} ({class_names[label - 1]!r})"
        if empty[-1]:
            problems.note("mask_problems", f"{where} has no pixels in {object_png} (instance {index + 1}); it is "
                                           f"kept for evaluation only")
            continue
        found, _ = majority_class(classes[pixels], VOID)
        if found != label:
            shown = (repr(class_names[found - 1]) if 1 <= found <= len(class_names)
                     else f"class index {found}" if found else "background")
            problems.note("mask_problems", f"{where} is {shown} in {class_png} (the majority under its instance "
                                           f"{index + 1} in {object_png}); the XML class is kept")
    return segmentations, np.array(empty, bool)


def _read(path, width, height, xml_path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path} does not exist: the images of ImageSets/Segmentation/ need their "
                        f"SegmentationObject/ and SegmentationClass/ PNGs (drop masks: true to read boxes only)")
    values = read_index_png(path, "VOC segmentation PNG")
    if values.shape != (height, width):
        raise UserError(f"{path} is {values.shape[1]}x{values.shape[0]} pixels (width x height) but {xml_path} "
                        f"gives the image size {width}x{height}")
    return values
