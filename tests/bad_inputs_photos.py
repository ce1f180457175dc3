"""Bad-input cases of real photographs and of COCO results files in their other forms (see bad_input_table.py):
a photo turned without an EXIF tag after annotating, float samples, results without a score or without any box
or mask, masks that are not a valid RLE or polygon. The photo is the real one of tests/data (COCO val2017 image
343934, stored at 160x120)."""
import json

import cv2
import numpy as np
from PIL import Image

from bad_input_table import Case
from bad_inputs_data import PHOTO, _check
from bad_inputs_evaluation import perfect, results_json


def _annotated(folder, file_name, width=160, height=120):
    """A COCO dataset of one photo declared ``width`` x ``height``, one box; returns its YAML."""
    (folder / "gt.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 30, 60, 50], "area": 3000,
                         "iscrowd": 0}],
        "categories": [{"id": 1, "name": "motorcycle"}]}))
    (folder / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    return "d.yaml"


def _turned_without_tag(folder):
    """Annotated at 160x120, then turned by an editor that rewrote the pixels (no EXIF tag left)."""
    Image.open(PHOTO).transpose(Image.ROTATE_90).save(folder / "photo.jpg")
    return _annotated(folder, "photo.jpg")


def _float_tiff(folder):
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    cv2.imwrite(str(folder / "photo.tiff"), rgb[..., ::-1].astype(np.float32) / 255)
    return _annotated(folder, "photo.tiff")


def _without(entry, *keys):
    return {k: v for k, v in entry.items() if k not in keys}


CASES = [
    Case("datasets", "a photo turned by an editor after annotating (no EXIF tag)", "check_dataset",
         _check("--check-images")(_turned_without_tag),
         "declare 160x120, the same turned by 90 degrees, and the file has no EXIF orientation tag", 1),
    Case("datasets", "a TIFF of float samples", "check_dataset", _check("--check-images")(_float_tiff),
         "photo.tiff has float32 samples; save it with 8 or 16 bits per channel", 1),
    Case("evaluation", "result without `score`", "eval_coco",
         results_json([perfect()[0], _without(perfect()[1], "score")]),
         "entry 1 lacks score; a result is {image_id, category_id, score, and bbox or segmentation or both}"),
    Case("evaluation", "result with neither `bbox` nor `segmentation`", "eval_coco",
         results_json([perfect()[0], _without(perfect()[1], "bbox")]),
         "entry 1 has neither bbox nor segmentation"),
    Case("evaluation", "result mask as uncompressed RLE whose counts do not cover the image", "eval_coco",
         results_json([{**r, "segmentation": {"size": [100, 100], "counts": [10, 20, 30]}} for r in perfect()],
                      gt_masks=True),
         "entry 0: uncompressed RLE counts must be whole numbers >= 0 that add up to height x width = 10000"),
]
