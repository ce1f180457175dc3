"""Bad-input cases of the dataset converter (tools/convert_dataset.py) and of class-balance sampling
(data.sampler, data.repeat_threshold, check_dataset --repeat-threshold); see bad_input_table.py."""
import json

import cv2
import numpy as np

from bad_input_table import Case

TRAIN = ["--device", "cpu", "--max-iter", "1", "--output", "run"]


def _coco(folder, files=("a.jpg", "b.png"), write=("a.jpg", "b.png")):
    """gt.json over 80x50 images ``files`` (those of ``write`` exist), one box each, and d.yaml naming it."""
    for name in write:
        cv2.imwrite(str(folder / name), np.full((50, 80, 3), 90, np.uint8))
    gt = {"images": [{"id": i, "file_name": f, "width": 80, "height": 50} for i, f in enumerate(files, 1)],
          "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 30, 20], "iscrowd": 0}
                          for i in range(1, len(files) + 1)],
          "categories": [{"id": 1, "name": "cat"}]}
    (folder / "gt.json").write_text(json.dumps(gt))
    (folder / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    return "d.yaml"


def _into(folder, *argv):
    _coco(folder)
    return ["--from", "d.yaml", *argv]


def _not_empty(folder):
    (folder / "out").mkdir()
    (folder / "out" / "notes.txt").write_text("mine\n")
    return _into(folder, "--to", "coco", "out")


def _unknown_key(folder):
    _coco(folder)
    return ["--from", "coco", "gt.json", "--images", ".", "--set", "root=x", "--to", "coco", "out"]


def _split_of_two(folder):
    _coco(folder)
    (folder / "two.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\ntrain: {}\nval: {}\n")
    return ["--from", "two.yaml", "--split", "val", "--to", "coco", "out"]


def _missing_image(folder):
    _coco(folder, files=("a.jpg", "gone.jpg"), write=("a.jpg",))
    return ["--from", "d.yaml", "--to", "yolo", "out"]


CASES = [
    Case("dataset conversion", "an output folder that is not empty", "convert_dataset", _not_empty,
         "the output folder out is not empty; convert into a new folder, or pass --overwrite"),
    Case("dataset conversion", "an output format it cannot write", "convert_dataset",
         lambda f: _into(f, "--to", "labelme", "out"), "--to format 'labelme'"),
    Case("dataset conversion", "a missing image", "convert_dataset", _missing_image,
         "image file gone.jpg does not exist (1 of 2 are missing); the converted dataset needs every image"),
    Case("dataset conversion", "images of two extensions to VOC", "convert_dataset",
         lambda f: _into(f, "--to", "voc", "out"),
         "the images have several extensions (.jpg, .png) and a VOC tree has one (image_ext)"),
    Case("dataset conversion", "--from FORMAT PATH with a key the format lacks", "convert_dataset",
         _unknown_key, "unknown key in --from coco gt.json 'root'"),
    Case("dataset conversion", "--split with a dataset of two splits", "convert_dataset", _split_of_two,
         "--split names one split; two.yaml has a training and an evaluation split"),
    Case("class balance", "`data.sampler=repeat`", "train_det",
         lambda f: ["--dataset", _coco(f), *TRAIN, "data.sampler=repeat"], "data.sampler 'repeat'"),
    Case("class balance", "`data.repeat_threshold=0`", "train_det",
         lambda f: ["--dataset", _coco(f), *TRAIN, "data.repeat_threshold=0"],
         "data.repeat_threshold=0: must be in (0, 1]"),
    Case("class balance", "check_dataset --repeat-threshold above 1", "check_dataset",
         lambda f: [_coco(f), "--repeat-threshold", "2"], "--repeat-threshold 2: must be in (0, 1]"),
]
