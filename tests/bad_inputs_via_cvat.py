"""Bad-input cases of the via and cvat dataset formats (see bad_input_table.py): a user's VIA JSON or CVAT XML."""
import json
import shutil
from pathlib import Path

from bad_input_table import Case

# A real photo (tests/data/README.md): COCO val2017 image 343934, stored at 160x120.
PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"
TRAIN = ["--device", "cpu", "--max-iter", "1", "--output", "run"]


def _via(folder, regions, yaml="classes: [balloon]\n", files=("a.jpg",), extra=None):
    """via.json over a.jpg (the photo) with ``regions``, and v.yaml naming it; ``extra``: more entries."""
    for name in files:
        shutil.copy(PHOTO, folder / name)
    entries = {"a.jpg9408": {"filename": "a.jpg", "size": 9408, "regions": regions, "file_attributes": {}},
               **(extra or {})}
    (folder / "via.json").write_text(json.dumps(entries))
    (folder / "v.yaml").write_text("format: via\nannotations: via.json\nimages: .\n" + yaml)
    return "v.yaml"


def _rect(**attributes):
    return {"shape_attributes": {"name": "rect", "x": 10, "y": 20, "width": 30, "height": 40},
            "region_attributes": attributes}


def _cvat(folder, objects, labels=("cat", "dog"), track=False):
    """annotations.xml with one 160x120 image holding ``objects`` (XML text), and c.yaml naming it; ``track``:
    a <track> too, as CVAT for video writes."""
    shutil.copy(PHOTO, folder / "a.jpg")
    names = "".join(f"<label><name>{n}</name></label>" for n in labels)
    (folder / "annotations.xml").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><labels>{names}'
        f'</labels></task></meta>\n<image id="0" name="a.jpg" width="160" height="120">{objects}</image>\n'
        + ('<track id="0" label="cat"><box frame="0" outside="0" keyframe="1" xtl="1" ytl="1" xbr="5" ybr="5"/>'
           "</track>\n" if track else "") + "</annotations>\n")
    (folder / "c.yaml").write_text("format: cvat\nannotations: annotations.xml\nimages: .\n")
    return "c.yaml"


def _via3(folder):
    name = _via(folder, [])
    (folder / "via.json").write_text(json.dumps({"project": {}, "config": {}, "attribute": {}, "file": {},
                                                 "view": {}, "metadata": {}}))
    return name


BOX = '<box label="cat" occluded="0" xtl="10" ytl="20" xbr="40" ybr="60" z_order="0"/>'
POLYGON = '<polygon label="dog" occluded="0" points="50,50;90,50;70,90" z_order="0"/>'


def _train(make, *flags):
    return lambda folder: ["--dataset", make(folder), *TRAIN, *flags]


def _check(make):
    return lambda folder: [make(folder)]


CASES = [
    Case("datasets", "a VIA region of a class not in classes", "train_det",
         _train(lambda f: _via(f, [_rect(type="cow")], "class_attribute: type\nclasses: [cat, dog]\n")),
         "image 'a.jpg' region 0 has class 'cow', which is not one of the classes (cat, dog); add it to classes:"),
    Case("datasets", "a VIA file without class_attribute or one class", "check_dataset",
         _check(lambda f: _via(f, [_rect()], "")),
         "give class_attribute: (the region attribute holding the class) or, when every region is one class"),
    Case("datasets", "a VIA region without the class attribute", "check_dataset",
         _check(lambda f: _via(f, [_rect(type="cat"), _rect()], "class_attribute: type\n")),
         "image 'a.jpg' region 1 has no 'type' region attribute (the class)"),
    Case("datasets", "a VIA image file that is missing", "check_dataset",
         _check(lambda f: _via(f, [_rect()], extra={"b.jpg1": {"filename": "b.jpg", "size": 1, "regions": []}})),
         "1 of 2 image files are missing: b.jpg; VIA stores no image sizes, so they are read from the files"),
    Case("datasets", "a VIA 3 project", "check_dataset", _check(_via3),
         "is a VIA 3 project, which format: via does not read; export it from VIA 3 as COCO"),
    Case("datasets", "a CVAT box of a label not in the task", "train_det",
         _train(lambda f: _cvat(f, BOX, labels=("dog",))),
         "image 0 (a.jpg) <box> 0 has label 'cat', which is not one of the classes (dog); add it to classes:"),
    Case("datasets", "a CVAT box without ybr", "check_dataset",
         _check(lambda f: _cvat(f, BOX.replace(' ybr="60"', ""))), "image 0 (a.jpg) <box> 0 (cat): attribute ybr is "
                                                                   "missing"),
    Case("datasets", "a CVAT for video export", "check_dataset",
         _check(lambda f: _cvat(f, "", track=True)),
         "is a 'CVAT for video 1.1' export (it has <track> elements); export the task as 'CVAT for images 1.1'"),
    Case("datasets", "CVAT boxes and polygons mixed, trained with --mask", "train_det",
         _train(lambda f: _cvat(f, BOX + POLYGON), "--mask"), "box_masks: true"),
]
