"""Bad-input cases of the yolo and labelme dataset formats (see bad_input_table.py): a user's Ultralytics dataset
folder or folder of labelme JSON files."""
import json
import shutil
from pathlib import Path

from bad_input_table import Case

# A real photo (tests/data/README.md): COCO val2017 image 343934, stored at 160x120.
PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"
TRAIN = ["--device", "cpu", "--max-iter", "1", "--output", "run"]


def _yolo(folder, label, data="names: [cat, dog]\ntrain: images/train\n", yaml="split: train\n"):
    """ds/ with images/train/a.jpg (the photo) and labels/train/a.txt holding ``label``, and y.yaml naming it."""
    (folder / "ds" / "images" / "train").mkdir(parents=True)
    (folder / "ds" / "labels" / "train").mkdir(parents=True)
    shutil.copy(PHOTO, folder / "ds" / "images" / "train" / "a.jpg")
    (folder / "ds" / "labels" / "train" / "a.txt").write_text(label)
    (folder / "ds" / "data.yaml").write_text(data)
    (folder / "y.yaml").write_text("format: yolo\nroot: ds\n" + yaml)
    return "y.yaml"


def _labelme(folder, shapes, image_path="a.jpg", yaml=""):
    """lm/a.json (labelme 5) over lm/a.jpg (the photo) with ``shapes`` (label, points, shape_type), l.yaml naming it."""
    (folder / "lm").mkdir()
    shutil.copy(PHOTO, folder / "lm" / "a.jpg")
    (folder / "lm" / "a.json").write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "imagePath": image_path, "imageData": None, "imageHeight": 120,
        "imageWidth": 160, "shapes": [{"label": label, "points": points, "group_id": None, "description": "",
                                       "shape_type": kind, "flags": {}, "mask": None}
                                      for label, points, kind in shapes]}))
    (folder / "l.yaml").write_text("format: labelme\nroot: lm\n" + yaml)
    return "l.yaml"


def _train(make, *flags):
    return lambda folder: ["--dataset", make(folder), *TRAIN, *flags]


def _check(make):
    return lambda folder: [make(folder)]


TRIANGLE = [[10, 20], [60, 20], [40, 70]]

CASES = [
    Case("datasets", "a YOLO label line with a class id past names", "train_det",
         _train(lambda f: _yolo(f, "0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n")),
         "labels/train/a.txt:2: class 2 is out of range; the dataset has 2 classes (ids 0..1)"),
    Case("datasets", "a YOLO label line of 6 fields (a results line with a score)", "check_dataset",
         _check(lambda f: _yolo(f, "0 0.5 0.5 0.2 0.2 0.93\n")),
         "labels/train/a.txt:1: 6 fields; a YOLO label line is 'class cx cy w h' (5) or a segment"),
    Case("datasets", "a YOLO label line with a word among its numbers", "check_dataset",
         _check(lambda f: _yolo(f, "cat 0.5 0.5 0.2 0.2\n")),
         "labels/train/a.txt:1: 'cat 0.5 0.5 0.2 0.2' holds a field that is not a number"),
    Case("datasets", "a YOLO split that data.yaml does not have", "train_det",
         _train(lambda f: _yolo(f, "", yaml="split: valid\n")),
         "data.yaml has no 'valid' entry (it has train); set split: in the dataset YAML to one of them"),
    Case("datasets", "a YOLO data.yaml without names and no classes:", "check_dataset",
         _check(lambda f: _yolo(f, "", data="train: images/train\n")),
         "data.yaml has no names:; give the class names (in class-id order) as classes: in the dataset YAML"),
    Case("datasets", "a labelme shape whose label is not in classes", "train_det",
         _train(lambda f: _labelme(f, [("cat", TRIANGLE, "polygon"), ("cow", TRIANGLE, "polygon")],
                                   yaml="classes: [cat, dog]\n")),
         "a.json: shape 1 has label 'cow', which is not one of the classes (cat, dog); add it to classes:"),
    Case("datasets", "a labelme imagePath that does not exist, no imageData", "check_dataset",
         _check(lambda f: _labelme(f, [("cat", TRIANGLE, "polygon")], image_path="../photos/a.jpg")),
         "a.json: image '../photos/a.jpg' (imagePath, relative to the JSON's folder) does not exist and the file "
         "embeds no imageData"),
    Case("datasets", "a labelme rectangle of three points", "check_dataset",
         _check(lambda f: _labelme(f, [("cat", TRIANGLE, "rectangle")])),
         "a.json: shape 0 (cat): a rectangle has 2 points (two opposite corners), got 3"),
    Case("datasets", "labelme rectangles and polygons mixed, trained with --mask", "train_det",
         _train(lambda f: _labelme(f, [("cat", TRIANGLE, "polygon"), ("dog", [[5, 5], [30, 40]], "rectangle")]),
                "--mask"), "box_masks: true"),
]
