"""Bad-input cases of datasets (see bad_input_table.py): a user's COCO JSON, VOC split list and image files."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bad_input_table import Case

# A real photo (tests/data/README.md): COCO val2017 image 343934, stored at 160x120.
PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"
TRAIN = ["--device", "cpu", "--max-iter", "1", "--output", "run"]


def _coco(folder, images=None, annotations=None, text=None, files=("a.jpg", "b.jpg")):
    """A user's COCO dataset in ``folder``: 80x50 images ``files``, gt.json (``text`` verbatim, or two images
    with one box each, with ``images``/``annotations`` replaced) and d.yaml naming them."""
    for name in files:
        cv2.imwrite(str(folder / name), np.full((50, 80, 3), 90, np.uint8))
    gt = {"images": images or [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 50},
                               {"id": 2, "file_name": "b.jpg", "width": 80, "height": 50}],
          "annotations": annotations or [_box(1, 1), _box(2, 2)],
          "categories": [{"id": 1, "name": "cat"}]}
    (folder / "gt.json").write_text(text if text is not None else json.dumps(gt))
    (folder / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    return "d.yaml"


def _box(ann_id, image_id, bbox=(10, 10, 30, 20)):
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox, "iscrowd": 0, "area": 600}


def _check(*flags):
    """A setup for check_dataset: ``flags`` after the dataset YAML that ``make`` writes."""
    return lambda make: lambda folder: [make(folder), *flags]


def _train(make):
    return lambda folder: ["--dataset", make(folder), *TRAIN]


def _without_width(folder):
    return _coco(folder, images=[{"id": 1, "file_name": "a.jpg", "height": 50}], annotations=[_box(1, 1)],
                 files=("a.jpg",))


def _one_box(folder, bbox):
    return _coco(folder, annotations=[_box(1, 1), _box(2, 2, bbox)])


def _duplicate_image_id(folder):
    return _coco(folder, images=[{"id": 1, "file_name": "a.jpg", "width": 80, "height": 50},
                                 {"id": 1, "file_name": "b.jpg", "width": 80, "height": 50}],
                 annotations=[_box(1, 1)])


def _nan_coordinate(folder):
    _coco(folder)
    text = (folder / "gt.json").read_text().replace("[10, 10, 30, 20]", "[10, NaN, 30, 20]", 1)
    (folder / "gt.json").write_text(text)
    return "d.yaml"


def _photo(folder, width, height, exif_rotated=False):
    """The real photo as photo.jpg, declared ``width`` x ``height``; ``exif_rotated``: tagged to be shown
    rotated by 90 degrees (as a phone writes a portrait photo), which OpenCV applies when decoding."""
    if exif_rotated:
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation
        Image.open(PHOTO).save(folder / "photo.jpg", exif=exif)
    else:
        shutil.copy(PHOTO, folder / "photo.jpg")
    return _coco(folder, images=[{"id": 1, "file_name": "photo.jpg", "width": width, "height": height}],
                 annotations=[_box(1, 1, [40, 30, 60, 50])], files=())


def _missing_image(folder):
    name = _coco(folder)
    (folder / "b.jpg").unlink()
    return name


def _voc_split_twice(folder):
    root = folder / "VOC"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("img1\nimg2\nimg1\n")
    for stem in ("img1", "img2"):
        (root / "Annotations" / f"{stem}.xml").write_text(
            "<annotation><size><width>80</width><height>50</height></size><object><name>cat</name><bndbox>"
            "<xmin>5</xmin><ymin>5</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object></annotation>")
        cv2.imwrite(str(root / "JPEGImages" / f"{stem}.jpg"), np.zeros((50, 80, 3), np.uint8))
    (folder / "d.yaml").write_text("format: voc\nroot: VOC\nsplit: train\nclasses: [cat]\n")
    return "d.yaml"


CASES = [
    Case("datasets", "two COCO images with the same id", "train_det", _train(_duplicate_image_id),
         "image id 1 is used by 2 entries (images[0], images[1]); give each image its own id"),
    Case("datasets", "two COCO annotations with the same id", "check_dataset",
         _check()(lambda f: _coco(f, annotations=[_box(1, 1), _box(1, 2)])),
         "annotation id 1 is used by 2 entries (annotations[0], annotations[1])", 1),
    Case("datasets", "a VOC split list naming an image twice", "train_det", _train(_voc_split_twice),
         "image 'img1' is listed 2 times (lines 1, 3); list each image once"),
    Case("datasets", "a COCO JSON that is a list at the top", "train_det", _train(lambda f: _coco(f, text="[]")),
         "the top level must be a JSON object with images, annotations and categories lists, not a list"),
    Case("datasets", "a bbox that is a string", "check_dataset", _check()(lambda f: _one_box(f, "10,10,30,20")),
         'annotations[1] (id 2): bbox must be a list of 4 numbers [x, y, width, height], got "10,10,30,20"'),
    Case("datasets", "a bbox that is null", "check_dataset", _check()(lambda f: _one_box(f, None)),
         "annotations[1] (id 2): bbox must be a list of 4 numbers [x, y, width, height], got null"),
    Case("datasets", "a bbox of 3 numbers", "train_det", _train(lambda f: _one_box(f, [10, 10, 30])),
         "annotations[1] (id 2): bbox must be a list of 4 numbers [x, y, width, height], got [10, 10, 30]"),
    Case("datasets", "a bbox of strings of numbers", "check_dataset",
         _check()(lambda f: _one_box(f, ["10", "10", "30", "20"])), 'got ["10", "10", "30", "20"]'),
    Case("datasets", "a NaN box coordinate", "check_dataset", _check()(_nan_coordinate),
         "annotations[0] (id 1): bbox has a number that is not finite ([10, NaN, 30, 20])"),
    Case("datasets", "an image entry without width", "train_det", _train(_without_width),
         "images[0] (id 1): width is missing; each image needs id, file_name, width and height (in pixels)"),
    Case("datasets", "a photo smaller than its declared size", "check_dataset",
         _check("--check-images")(lambda f: _photo(f, 640, 480)),
         "photo.jpg is 160x120 pixels (width x height) but its annotations declare 640x480", 1),
    Case("datasets", "an EXIF-rotated photo annotated on its stored pixels", "check_dataset",
         _check("--check-images")(lambda f: _photo(f, 160, 120, exif_rotated=True)), "EXIF orientation", 1),
    Case("datasets", "a missing image file, checked", "check_dataset", _check()(_missing_image),
         "1 missing image file (see above); the first: ", 1),
    Case("datasets", "a missing image file, at training", "train_det", _train(_missing_image),
         "d_train: 1 of 2 image files are missing, e.g. "),
    Case("datasets", "a polygon of 2 points", "check_dataset",
         _check()(lambda f: _coco(f, annotations=[_box(1, 1), {**_box(2, 2), "segmentation": [[1, 2, 30, 2]]}])),
         "annotations[1] (id 2): segmentation polygon 0 needs x, y pairs for at least 3 points, got 4 numbers"),
]
