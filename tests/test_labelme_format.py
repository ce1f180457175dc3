"""format: labelme (detection/data/labelme_format.py): a folder of labelme JSON files, as labelme 5 saves them."""
import base64
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from backbones.errors import UserError
from detection.cli import check_dataset
from detection.data.catalog import load_dataset
from detection.data.dataset import decode_segmentation, read_image_file
from detection.data.labelme_format import load_labelme
from format_training import polygon_image, train_and_evaluate

PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"  # a real 160x120 JPEG


def _shape(label, points, shape_type="polygon", group_id=None):
    return {"label": label, "points": points, "group_id": group_id, "description": "", "shape_type": shape_type,
            "flags": {}, "mask": None}


def _save(path, shapes, image_path, image_data=None, size=(160, 120)):
    """A labelme 5 file, as File > Save writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
                                "imageData": image_data, "imageHeight": size[1], "imageWidth": size[0]}, indent=2))


def _photo(folder, name="a.jpg"):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PHOTO, folder / name)


def test_polygon_rectangle_circle_and_skipped_shapes(tmp_path):
    _photo(tmp_path)
    _save(tmp_path / "a.json", [_shape("cat", [[10, 20], [60, 20], [40, 70]]),
                                _shape("dog", [[100, 80], [30, 50]], "rectangle"),
                                _shape("dog", [[80, 60], [80, 70]], "circle"),
                                _shape("cat", [[1, 1], [5, 5]], "line"),
                                _shape("cat", [[150, 100], [170, 110], [170, 130]], None)], "a.jpg")
    data = load_labelme(tmp_path, box_masks=True)
    assert data.class_names == ["cat", "dog"] and data.category_ids == [1, 2] and data.name == tmp_path.name
    (a,) = data.records
    assert (a.image_id, a.file_name, a.width, a.height) == ("a", tmp_path / "a.jpg", 160, 120)
    # the polygon's extent; the rectangle's corners in either order; the circle (centre, point on it: r 10) exactly;
    # the old-style (shape_type null) polygon reaches past the image: clipped
    np.testing.assert_allclose(a.boxes, [[10, 20, 60, 70], [30, 50, 100, 80], [70, 50, 90, 70],
                                         [150, 100, 160, 120]], atol=1e-4)
    assert a.labels.tolist() == [1, 2, 2, 1]
    assert a.segmentations[0] == [[10, 20, 60, 20, 40, 70]]
    assert a.segmentations[1] == [[30, 50, 100, 50, 100, 80, 30, 80]]  # box_masks: the rectangle's own
    circle = decode_segmentation(a.segmentations[2], a.height, a.width)
    assert abs(int(circle.sum()) - np.pi * 100) < 12 and circle[55:65, 75:85].all()
    p = data.problems
    assert (p.skipped_shapes, p.clipped_boxes, p.dropped_boxes) == (1, 1, 0)
    assert f"skipped_shapes: {tmp_path / 'a.json'}: shape 3: a line outlines no object; left out" in p.details
    # without box_masks, the rectangle makes the data boxes-only, and is named
    plain = load_labelme(tmp_path)
    assert plain.records[0].segmentations is None and plain.problems.objects_without_masks == 1
    assert any("a.json: object 1 is a box while other objects have masks" in line for line in plain.problems.details)


def test_group_ids_merge_into_one_object(tmp_path):
    _photo(tmp_path / "imgs")
    _save(tmp_path / "ann" / "a.json", [_shape("cat", [[10, 10], [30, 10], [30, 20], [10, 20]], group_id=1),
                                        _shape("dog", [[0, 0], [5, 0], [5, 5]], group_id=1),
                                        _shape("cat", [[50, 40], [70, 40], [70, 60], [50, 60]], group_id=1),
                                        _shape("cat", [[100, 100], [110, 100], [110, 110], [100, 110]])],
          "../imgs/a.jpg")
    data = load_labelme(tmp_path / "ann", classes=["dog", "cat"])
    (a,) = data.records
    assert a.file_name == tmp_path / "ann" / "../imgs/a.jpg" and a.labels.tolist() == [2, 1, 2]
    np.testing.assert_array_equal(a.boxes, [[10, 10, 70, 60], [0, 0, 5, 5], [100, 100, 110, 110]])
    assert a.segmentations[0] == [[10, 10, 30, 10, 30, 20, 10, 20], [50, 40, 70, 40, 70, 60, 50, 60]]
    mask = decode_segmentation(a.segmentations[0], a.height, a.width)
    assert mask.sum() == 20 * 10 + 20 * 20 and not mask[30:40, 30:50].any()


def test_embedded_image_data_is_written_once_beside_the_json(tmp_path):
    encoded = base64.b64encode(PHOTO.read_bytes()).decode()
    _save(tmp_path / "sub" / "x.json", [_shape("cat", [[10, 20], [60, 20], [40, 70]])], "gone/x.jpg", encoded)
    data = load_labelme(tmp_path)
    (x,) = data.records
    target = tmp_path / "sub" / ".labelme_images" / "x.jpg"
    assert x.image_id == "sub/x" and x.file_name == target and target.read_bytes() == PHOTO.read_bytes()
    assert read_image_file(target).shape == (120, 160, 3)
    stamp = target.stat().st_mtime_ns
    assert load_labelme(tmp_path).records[0].file_name == target and target.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("shapes, image, kwargs, message", [
    ([_shape("bird", [[1, 1], [5, 1], [5, 5]])], "a.jpg", {"classes": ["cat"]},
     "a.json: shape 0 has label 'bird', which is not one of the classes (cat); add it to classes:"),
    ([_shape("cat", [[1, 1], [5, "x"], [5, 5]])], "a.jpg", {},
     "a.json: shape 0 (cat): points must be a list of [x, y] pairs of finite numbers"),
    ([_shape("cat", [[1, 1], [5, 1], [5, 5]], "rectangle")], "a.jpg", {},
     "a.json: shape 0 (cat): a rectangle has 2 points (two opposite corners), got 3"),
    ([_shape("cat", [[1, 1]], "circle")], "a.jpg", {},
     "a.json: shape 0 (cat): a circle has 2 points (its centre and a point on it), got 1"),
    ([_shape("cat", [[1, 1], [5, 1], [5, 5]])], "b.jpg", {},
     "a.json: image 'b.jpg' (imagePath, relative to the JSON's folder) does not exist and the file embeds no "
     "imageData"),
    (["cat"], "a.jpg", {"classes": ["cat"]}, "a.json: shape 0 must be an object"),
])
def test_bad_shapes_are_named_by_file_and_shape(tmp_path, shapes, image, kwargs, message):
    _photo(tmp_path)
    _save(tmp_path / "a.json", shapes, image)
    with pytest.raises(UserError) as err:
        load_labelme(tmp_path, **kwargs)
    assert str(tmp_path) in str(err.value) and message in str(err.value)


def test_bad_files_and_folders(tmp_path):
    with pytest.raises(UserError, match="labelme folder .*nope does not exist"):
        load_labelme(tmp_path / "nope")
    with pytest.raises(UserError, match="holds no .json files"):
        load_labelme(tmp_path)
    (tmp_path / "a.json").write_text("{")
    with pytest.raises(UserError, match="a.json is not valid JSON"):
        load_labelme(tmp_path)
    (tmp_path / "a.json").write_text('{"images": []}')
    with pytest.raises(UserError, match="a.json is not a labelme file .an object with a shapes list"):
        load_labelme(tmp_path)
    _save(tmp_path / "a.json", [], "a.jpg", "bm90IGFuIGltYWdl")  # "not an image"
    with pytest.raises(UserError, match="a.json: imageData is not a base64-encoded image"):
        load_labelme(tmp_path, classes=["cat"])
    _save(tmp_path / "a.json", [_shape("cat", [[1, 1], [5, 1], [5, 5]], "line")], "a.jpg")
    _photo(tmp_path)
    with pytest.raises(UserError, match="no polygon, rectangle or circle has a label; give classes:"):
        load_labelme(tmp_path)


def test_two_files_annotating_one_image_is_an_error(tmp_path):
    _photo(tmp_path)
    _save(tmp_path / "a.json", [_shape("cat", [[1, 1], [5, 1], [5, 5]])], "a.jpg")
    _save(tmp_path / "copy" / "a.json", [_shape("cat", [[1, 1], [5, 1], [5, 5]])], "../a.jpg")
    with pytest.raises(UserError, match=r"2 labelme files annotate image .*a.jpg: .*a.json, .*copy/a.json; keep one"):
        load_labelme(tmp_path)
    assert load_labelme(tmp_path, strict=False).problems.duplicate_ids == 1


def test_yaml_keys_and_check_dataset_report(tmp_path, capsys):
    _photo(tmp_path / "lm")
    _photo(tmp_path / "lm", "b.jpg")
    _save(tmp_path / "lm" / "a.json", [_shape("cat", [[150, 100], [170, 110], [170, 130]]),
                                       _shape("cat", [[1, 1], [2, 2], [3, 3]]),
                                       _shape("dog", [[5, 5]], "point")], "a.jpg")
    _save(tmp_path / "lm" / "b.json", [], "b.jpg")
    (tmp_path / "l.yaml").write_text("format: labelme\nroot: lm\nclasses: [cat, dog]\n")
    data = load_dataset(str(tmp_path / "l.yaml"), "train")
    assert data.name == "l_train" and data.class_names == ["cat", "dog"] and len(data.records) == 2
    check_dataset.main([str(tmp_path / "l.yaml")])
    out = capsys.readouterr().out
    assert "l_train: 2 images, 2 classes" in out
    assert "problems: 1 boxes clipped, 1 dropped, 1 images without" in out
    lm = tmp_path / "lm"
    assert f"{lm}/a.json: shape 0 (cat): x1 y1 x2 y2 = 150 100 170 130 clipped to the 160x120 image" in out
    assert f"{lm}/a.json: shape 1 (cat): polygon of no area" in out
    assert f"{lm}/a.json: shape 2: a point outlines no object; left out" in out
    assert f"{lm}/b.json: no usable shapes" in out
    (tmp_path / "l.yaml").write_text("format: labelme\nroot: lm\nimages: lm\n")
    with pytest.raises(UserError, match="unknown key in .*l.yaml 'images'"):
        load_dataset(str(tmp_path / "l.yaml"), "train")


def _shapes_set(root, count=4, size=96):
    """``count`` images with a filled polygon each (class red or blue), saved as labelme saves them."""
    rng = np.random.default_rng(1)
    for k in range(count):
        image, xs, ys = polygon_image(rng, size, (30, 30, 220) if k % 2 else (220, 60, 30))
        cv2.imwrite(str(root / f"s{k}.jpg"), image)
        _save(root / f"s{k}.json", [_shape("blue" if k % 2 else "red", np.stack([xs, ys], 1).tolist())],
              f"s{k}.jpg", size=(size, size))


@pytest.mark.slow
def test_train_mask_rcnn_and_evaluate_from_a_labelme_yaml(tmp_path, monkeypatch, capsys):
    (tmp_path / "lm").mkdir()
    _shapes_set(tmp_path / "lm")
    (tmp_path / "shapes.yaml").write_text("format: labelme\nroot: lm\nclasses: [red, blue]\n")
    printed, result = train_and_evaluate(tmp_path, tmp_path / "shapes.yaml", monkeypatch, capsys)
    assert "Mask R-CNN" in printed and "on shapes_train (4 images, 2 classes)" in printed
    assert result["images"] == 4 and set(result) >= {"bbox", "segm"}  # the polygons are the mask ground truth
    assert 0.0 <= result["segm"]["AP"] <= 1.0 and set(result["segm"]["per_class"]) == {"red", "blue"}
