"""Bad datasets are refused when loaded or before training, with a message naming the file, the entry and the fix.

COCO JSON is checked once, entry by entry, when it is read (types, finite numbers, required keys, unique
ids); image files are checked to exist before training and evaluation start; a decoded image must have the
size its annotations declare.
"""
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from backbones.errors import UserError
from detection.data.catalog import load_dataset
from detection.data.coco_format import load_coco, read_coco_json
from detection.data.dataset import DetectionDataset
from detection.run import resolve_config
from detection.run.data import evaluation_dataset, training_dataset

# COCO val2017 image 343934 stored at 160x120 (tests/data/README.md); COCO declares it 640x480.
PHOTO = Path(__file__).parent / "data" / "coco_000000343934_160x120.jpg"
PHOTO_BOX = [175.14, 175.68, 321.08, 240]  # its motorcycle, at 640x480


def _images(folder, *names, size=(80, 50)):
    for name in names:
        cv2.imwrite(str(folder / name), np.zeros((size[1], size[0], 3), np.uint8))


def _gt(**changes):
    """A valid two-image COCO ground truth, with top-level ``changes``."""
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 50},
                     {"id": 2, "file_name": "b.jpg", "width": 80, "height": 50}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 3, "bbox": [30, 5, 40, 30], "area": 1200,
                           "iscrowd": 0}],
          "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]}
    gt.update(changes)
    return gt


def _write(folder, gt, name="gt.json"):
    path = folder / name
    path.write_text(gt if isinstance(gt, str) else json.dumps(gt))
    return path


def _annotation(**fields):
    ann = {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "iscrowd": 0}
    ann.update(fields)
    return {k: v for k, v in ann.items() if v is not ...}


def _image(**fields):
    image = {"id": 1, "file_name": "a.jpg", "width": 80, "height": 50}
    image.update(fields)
    return {k: v for k, v in image.items() if v is not ...}


# --- item 7: duplicate ids --------------------------------------------------------------------------


def test_duplicate_image_ids_are_refused_naming_them(tmp_path):
    images = [_image(), _image(file_name="b.jpg"), _image(id=2, file_name="c.jpg")]
    path = _write(tmp_path, _gt(images=images))
    message = r"gt.json: image id 1 is used by 2 entries \(images\[0\], images\[1\]\); give each image its own id"
    with pytest.raises(UserError, match=message):
        load_coco(path, tmp_path)
    with pytest.raises(UserError, match=message):  # also when read as evaluation ground truth
        read_coco_json(path)


def test_duplicate_annotation_ids_are_refused_naming_them(tmp_path):
    annotations = [_annotation(), _annotation(image_id=2, category_id=3, bbox=[30, 5, 40, 30])]
    path = _write(tmp_path, _gt(annotations=annotations))
    with pytest.raises(UserError, match=r"gt.json: annotation id 1 is used by 2 entries "
                                        r"\(annotations\[0\], annotations\[1\]\); give each annotation its own id"):
        load_coco(path, tmp_path)


def test_every_duplicate_is_noted_when_not_strict(tmp_path):
    images = [_image(), _image(file_name="b.jpg"), _image(id=2, file_name="c.jpg"), _image(id=2, file_name="d.jpg")]
    annotations = [_annotation(), _annotation()]
    data = load_coco(_write(tmp_path, _gt(images=images, annotations=annotations)), tmp_path, strict=False)
    assert data.problems.duplicate_ids == 3
    assert [line.split(": ", 2)[2][:22] for line in data.problems.errors()] == [
        "image id 1 is used by ", "image id 2 is used by ", "annotation id 1 is use"]


def test_a_voc_split_listing_an_image_twice_is_refused_naming_it(tmp_path):
    root = tmp_path / "VOC"
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\na\n")
    for stem in "ab":
        (root / "Annotations" / f"{stem}.xml").write_text(
            "<annotation><size><width>10</width><height>10</height></size></annotation>")
    (tmp_path / "d.yaml").write_text("format: voc\nroot: VOC\nsplit: train\nclasses: [cat]\n")
    with pytest.raises(UserError, match=r"train.txt: image 'a' is listed 2 times \(lines 1, 3\); list each image once"):
        load_dataset(str(tmp_path / "d.yaml"))
    data = load_dataset(str(tmp_path / "d.yaml"), strict=False)
    assert data.problems.duplicate_ids == 1 and len(data.records) == 3


# --- item 12: one schema check of every entry ---------------------------------------------------------


@pytest.mark.parametrize("gt, message", [
    ([], r"gt.json: the top level must be a JSON object with images, annotations and categories lists, not a list "
         r"\(a list is what a COCO results file holds\)"),
    ('{"images": [], "annotations": [], "categories": [], "x": NaN}', None),  # unknown keys are not ours to check
    (_gt(images={"id": 1}), r"gt.json: images must be a list of image entries, not an object"),
    ({"annotations": [], "categories": []}, r"gt.json: images is missing; a COCO JSON needs images, annotations "
                                            r"and categories lists"),
    (_gt(annotations=[_annotation(bbox="10,10,20,20")]),
     r"gt.json: annotations\[0\] \(id 1\): bbox must be a list of 4 numbers \[x, y, width, height\], "
     r'got "10,10,20,20"'),
    (_gt(annotations=[_annotation(bbox=None)]), r"annotations\[0\] \(id 1\): bbox must be .*, got null"),
    (_gt(annotations=[_annotation(bbox=[10, 10, 20])]),
     r"annotations\[0\] \(id 1\): bbox must be .*, got \[10, 10, 20\]"),
    (_gt(annotations=[_annotation(bbox=["10", "10", "20", "20"])]),
     r'annotations\[0\] \(id 1\): bbox must be .*, got \["10", "10", "20", "20"\]'),
    (_gt(annotations=[_annotation(bbox=[10, True, 20, 20])]), r"annotations\[0\] \(id 1\): bbox must be"),
    (_gt(annotations=[_annotation(bbox=...)]), r"annotations\[0\] \(id 1\): bbox is missing"),
    (_gt(annotations=[_annotation(id=...)]), r"annotations\[0\]: id is missing"),
    (_gt(annotations=[_annotation(image_id="1")]), r'annotations\[0\] \(id 1\): image_id must be an integer, got "1"'),
    (_gt(annotations=[_annotation(image_id=9)]),
     r"annotations\[0\] \(id 1\): image_id 9 is not the id of any entry of images"),
    (_gt(annotations=[_annotation(category_id=9)]),
     r"gt.json: annotations\[0\] \(id 1\): category_id 9 is not in the categories list; add the category "
     r"or correct the id"),
    (_gt(annotations=[_annotation(iscrowd="no")]), r'annotations\[0\] \(id 1\): iscrowd must be 0 or 1, got "no"'),
    (_gt(annotations=[_annotation(segmentation="x")]),
     r'annotations\[0\] \(id 1\): segmentation must be polygons \(a list\) or RLE \(an object\), got "x"'),
    (_gt(images=[_image(width=...), _image(id=2, file_name="b.jpg")]),
     r"gt.json: images\[0\] \(id 1\): width is missing; each image needs id, file_name, width and height "
     r"\(in pixels\)"),
    (_gt(images=[_image(height="50"), _image(id=2, file_name="b.jpg")]),
     r'images\[0\] \(id 1\): height must be a positive integer \(pixels\), got "50"'),
    (_gt(images=[_image(width=0), _image(id=2, file_name="b.jpg")]),
     r"images\[0\] \(id 1\): width must be a positive integer \(pixels\), got 0"),
    (_gt(images=[_image(file_name=None), _image(id=2, file_name="b.jpg")]),
     r"images\[0\] \(id 1\): file_name must be a file name, got null"),
    (_gt(images=[_image(), "b.jpg"]), r'images\[1\]: must be an object \(one image\), got "b.jpg"'),
    (_gt(categories=[{"id": 7}, {"id": 3, "name": "dog"}]), r"categories\[0\] \(id 7\): name is missing"),
])
def test_malformed_coco_json_names_the_file_the_entry_and_the_field(tmp_path, gt, message):
    path = _write(tmp_path, gt)
    if message is None:
        assert load_coco(path, tmp_path).records == []
        return
    with pytest.raises(UserError, match=message):
        load_coco(path, tmp_path)


@pytest.mark.parametrize("coordinate", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates_are_refused_not_called_clipped(tmp_path, coordinate):
    text = json.dumps(_gt()).replace("[10, 10, 20, 20]", f"[10, {coordinate}, 20, 20]")
    with pytest.raises(UserError, match=rf"gt.json: annotations\[0\] \(id 1\): bbox has a number that is not "
                                        rf"finite \(\[10, {coordinate}, 20, 20\]\)"):
        load_coco(_write(tmp_path, text), tmp_path)


def test_several_schema_problems_are_counted(tmp_path):
    annotations = [_annotation(id=k, bbox=None) for k in range(1, 6)]
    with pytest.raises(UserError, match=r"annotations\[0\] \(id 1\): bbox must be .*; and 4 more problems"):
        load_coco(_write(tmp_path, _gt(annotations=annotations)), tmp_path)


def test_a_valid_coco_json_keeps_loading_with_its_extras(tmp_path):
    """Extra keys (info, licenses, area, supercategory...), RLE and polygon masks and integral float sizes pass."""
    gt = _gt(info={"year": 2017}, licenses=[])
    gt["images"][0]["width"] = 80.0
    gt["annotations"][0]["segmentation"] = [[10, 10, 30, 10, 30, 30]]
    gt["annotations"][1]["segmentation"] = {"size": [50, 80], "counts": [0, 4000]}
    data = load_coco(_write(tmp_path, gt), tmp_path)
    assert [len(r.boxes) for r in data.records] == [1, 1] and data.problems.duplicate_ids == 0


# --- item 13: declared size against the decoded image -------------------------------------------------


def _photo_dataset(tmp_path, width, height, file_name=PHOTO.name):
    gt = _gt(images=[_image(file_name=file_name, width=width, height=height)],
             annotations=[_annotation(bbox=PHOTO_BOX if width == 640 else [40, 40, 80, 60])])
    return DetectionDataset(load_coco(_write(tmp_path, gt), PHOTO.parent if file_name == PHOTO.name else tmp_path))


def test_a_photo_smaller_than_its_declared_size_is_named_with_both_sizes(tmp_path):
    dataset = _photo_dataset(tmp_path, 640, 480)  # what COCO says of the original, not of the resized file
    with pytest.raises(UserError, match=r"image .*coco_000000343934_160x120.jpg is 160x120 pixels \(width x height\) "
                                        r"but its annotations declare 640x480"):
        dataset[0]
    image, target = _photo_dataset(tmp_path, 160, 120)[0]
    assert image.shape == (3, 120, 160)


def test_an_exif_rotated_photo_annotated_on_its_stored_pixels_is_named(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display; OpenCV decodes it rotated
    Image.open(PHOTO).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    dataset = _photo_dataset(tmp_path, 160, 120, "rotated.jpg")  # the stored 160x120, as a labelling tool may say
    with pytest.raises(UserError, match=r"rotated.jpg is 120x160 pixels .* declare 160x120.*EXIF orientation"):
        dataset[0]
    shutil.copy(PHOTO, tmp_path / "rotated.jpg")  # stored upright: fine
    assert dataset[0][0].shape == (3, 120, 160)


# --- item 16: missing image files before training -------------------------------------------------------


def _custom_dataset(tmp_path, present=("a.jpg",), count=2, val=False):
    names = ["a.jpg", "b.jpg"] + [f"x{k}.jpg" for k in range(3, count + 1)]
    images = [_image(id=k, file_name=name) for k, name in enumerate(names, 1)]
    annotations = [_annotation(id=k, image_id=k) for k in range(1, count + 1)]
    _write(tmp_path, _gt(images=images, annotations=annotations))
    _images(tmp_path, *present)
    spec = "format: coco\nannotations: gt.json\nimages: .\n"
    (tmp_path / "d.yaml").write_text(spec + ("val: {}\ntrain: {}\n" if val else ""))
    return str(tmp_path / "d.yaml")


def test_training_refuses_missing_images_before_the_first_iteration(tmp_path):
    cfg = resolve_config(flags={"data": {"train": _custom_dataset(tmp_path, count=9)}}, log=None)
    with pytest.raises(UserError, match=r"d_train: 8 of 9 image files are missing, e.g. .*b.jpg, .*x3.jpg, .*x4.jpg "
                                        r"\(and 5 more\); check the dataset's images folder \(python "
                                        r"tools/check_dataset.py lists every missing file\)"):
        training_dataset(cfg)


def test_evaluation_refuses_missing_images_too(tmp_path):
    name = _custom_dataset(tmp_path, val=True)
    with pytest.raises(UserError, match=r"d_val: 1 of 2 image files are missing, e.g. .*b.jpg"):
        evaluation_dataset(name, ["dog", "cat"])


def test_skipping_unreadable_images_warns_of_missing_ones_instead(tmp_path, capsys):
    cfg = resolve_config(flags={"data": {"train": _custom_dataset(tmp_path), "skip_unreadable_images": True}},
                         log=None)
    assert len(training_dataset(cfg)) == 2
    assert "warning: d_train: 1 of 2 image files are missing, e.g." in capsys.readouterr().err


def test_generated_shapes_data_is_not_missing(small_shapes):
    cfg = resolve_config(flags={"data": {"train": "shapes"}}, log=None)
    assert len(training_dataset(cfg)) == 24


# --- ground truth some tools write without what COCOeval reads ------------------------------------------
def test_ground_truth_without_area_or_with_an_empty_mask_is_completed_as_pycocotools_does_for_results(tmp_path):
    from pycocotools import mask as mask_util

    from detection.data.coco_format import read_coco_json
    polygon = [[10, 10, 50, 10, 50, 30, 10, 30]]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20]},
                        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 5, 40, 40], "segmentation": []},
                        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 20],
                         "segmentation": polygon}],
        "categories": [{"id": 1, "name": "cat"}]}))
    anns = read_coco_json(path).anns
    assert anns[1]["area"] == 600.0 and anns[2]["area"] == 1600.0 and "segmentation" not in anns[2]
    assert anns[3]["area"] == float(mask_util.area(mask_util.merge(mask_util.frPyObjects(polygon, 80, 100))))


@pytest.mark.parametrize("segmentation, message", [
    ([[1, 2, 3, 4]], "polygon 0 needs x, y pairs for at least 3 points, got 4 numbers"),
    ([[1, 2, 3, 4, 5, 6, 7]], "polygon 0 needs x, y pairs for at least 3 points, got 7 numbers"),
    ([[1, 2, "3", 4, 5, 6]], "polygon 0 must be a list of finite numbers"),
    ({"counts": "abc"}, 'as RLE needs "size": [height, width], got null'),
    ({"size": [80, 100]}, 'as RLE needs "counts" (a string or a list), got null'),
])
def test_a_malformed_mask_is_named(tmp_path, segmentation, message):
    from detection.data.coco_format import read_coco_json
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20],
                         "segmentation": segmentation}],
        "categories": [{"id": 1, "name": "cat"}]}))
    with pytest.raises(UserError, match=re.escape(message)):
        read_coco_json(path)
