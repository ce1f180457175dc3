"""format: via (detection/data/via_format.py): VGG Image Annotator 1.x/2.x JSON, as the balloon tutorial set has it."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from backbones.errors import UserError
from detection.cli import check_dataset
from detection.data.catalog import load_dataset
from detection.data.dataset import decode_segmentation
from detection.data.via_format import load_via
from format_training import train_and_evaluate

PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"  # a real 160x120 JPEG


def _entry(filename, regions, size=1234):
    """One VIA entry, keyed as VIA keys it (file name + file size)."""
    return f"{filename}{size}", {"filename": filename, "size": size, "regions": regions, "file_attributes": {}}


def _polygon(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


def _rect(x, y, w, h, **attributes):
    return {"shape_attributes": {"name": "rect", "x": x, "y": y, "width": w, "height": h},
            "region_attributes": attributes}


def _write(folder, entries, photos=("photo.jpg",)):
    for name in photos:
        shutil.copy(PHOTO, folder / name)
    path = folder / "via_region_data.json"
    path.write_text(json.dumps(dict(entries) if not isinstance(entries, dict) else entries))
    return path


def test_balloon_style_via1_file_one_class_without_an_attribute(tmp_path):
    # VIA 1.x, as in the balloon set: regions keyed "0", "1", ...; region_attributes empty.
    regions = {"1": _polygon([10, 30, 30, 10], [10, 10, 20, 20]), "0": _polygon([20, 60, 40], [10, 10, 50])}
    path = _write(tmp_path, [_entry("photo.jpg", regions, PHOTO.stat().st_size)])
    data = load_via(path, tmp_path, classes=["balloon"])
    assert data.class_names == ["balloon"] and data.category_ids == [1] and data.name == "via_region_data"
    (rec,) = data.records
    assert (rec.image_id, rec.file_name, rec.width, rec.height) == ("photo.jpg", tmp_path / "photo.jpg", 160, 120)
    np.testing.assert_array_equal(rec.boxes, [[20, 10, 60, 50], [10, 10, 30, 20]])  # regions in key order
    assert rec.labels.tolist() == [1, 1] and rec.ignore.tolist() == [False, False]
    assert rec.segmentations == [[[20, 10, 60, 10, 40, 50]], [[10, 10, 30, 10, 30, 20, 10, 20]]]
    square = decode_segmentation(rec.segmentations[1], rec.height, rec.width)
    assert square.shape == (120, 160) and square.sum() == 200 and square[10:20, 10:30].all()
    assert data.problems.details == []


def _via2(folder):
    """A VIA 2 export: regions a list, class in region attribute "type", rect/polygon/circle/point shapes."""
    regions = [_rect(5, 6, 20, 10, type="cat"), _polygon([100, 170, 120], [50, 60, 130], type="dog"),
               {"shape_attributes": {"name": "circle", "cx": 50, "cy": 40, "r": 10},
                "region_attributes": {"type": "dog"}},
               {"shape_attributes": {"name": "point", "cx": 3, "cy": 4}, "region_attributes": {"type": "cat"}},
               _rect(150, 10, 0, 10, type="cat")]
    return _write(folder, [_entry("photo.jpg", regions), _entry("empty.jpg", [])], photos=("photo.jpg", "empty.jpg"))


def test_via2_export_boxes_circles_classes_and_problems(tmp_path):
    data = load_via(_via2(tmp_path), tmp_path, class_attribute="type")
    assert data.class_names == ["cat", "dog"]  # the values found, sorted
    photo, empty = data.records
    # rect x y w h -> x1 y1 x2 y2; the polygon reaches past the 160x120 image: clipped; the circle's exact extent.
    np.testing.assert_allclose(photo.boxes, [[5, 6, 25, 16], [100, 50, 160, 120], [40, 30, 60, 50]], atol=1e-5)
    assert photo.labels.tolist() == [1, 2, 2] and len(empty.boxes) == 0
    p = data.problems
    assert (p.clipped_boxes, p.dropped_boxes, p.skipped_shapes, p.images_without_objects) == (1, 1, 1, 1)
    assert any("image 'photo.jpg' region 3: a point outlines no object" in line for line in p.details)
    assert any("image 'photo.jpg' region 4: x1 y1 x2 y2 = 150 10 150 20 is empty" in line for line in p.details)
    # a box among polygons: the data has no masks, and the box is named with the way out
    assert photo.segmentations is None and p.objects_without_masks == 1
    assert any("object 0 is a box while other objects have masks" in line and "box_masks: true" in line
               for line in p.details)
    masked = load_via(_via2(tmp_path), tmp_path, class_attribute="type", classes=["dog", "cat"], box_masks=True)
    photo = masked.records[0]
    assert photo.labels.tolist() == [2, 1, 1] and masked.problems.objects_without_masks == 0
    assert photo.segmentations[0] == [[5, 6, 25, 6, 25, 16, 5, 16]]
    circle = decode_segmentation(photo.segmentations[2], 120, 160)
    assert abs(int(circle.sum()) - np.pi * 100) < 12  # a 64-gon of radius 10


def test_via2_project_file_and_checkbox_attributes(tmp_path):
    regions = [_rect(1, 2, 3, 4, kind={"dog": True, "cat": False}), _rect(10, 20, 30, 40, kind={"cat": True})]
    project = {"_via_settings": {}, "_via_img_metadata": dict([_entry("photo.jpg", regions)]),
               "_via_attributes": {"region": {"kind": {"type": "checkbox", "options": {"dog": "", "cat": ""}}},
                                   "file": {}},
               "_via_data_format_version": "2.0.10", "_via_image_id_list": ["photo.jpg1234"]}
    path = _write(tmp_path, project)
    data = load_via(path, tmp_path, class_attribute="kind")
    assert data.class_names == ["dog", "cat"]  # the project's declared options, in order
    np.testing.assert_array_equal(data.records[0].boxes, [[1, 2, 4, 6], [10, 20, 40, 60]])
    assert data.records[0].labels.tolist() == [1, 2] and data.records[0].segmentations is None


def test_size_of_an_exif_rotated_photo_is_the_shown_one(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees, as a phone writes a portrait photo
    Image.open(PHOTO).save(tmp_path / "photo.jpg", exif=exif)
    path = tmp_path / "v.json"
    path.write_text(json.dumps(dict([_entry("photo.jpg", [_rect(1, 2, 3, 4)])])))
    rec = load_via(path, tmp_path, classes=["x"]).records[0]
    assert (rec.width, rec.height) == (120, 160)


@pytest.mark.parametrize("entries, kwargs, message", [
    ([_entry("photo.jpg", [_rect(1, 1, 5, 5, type="cow")])], {"class_attribute": "type", "classes": ["cat"]},
     "image 'photo.jpg' region 0 has class 'cow', which is not one of the classes (cat); add it to classes:"),
    ([_entry("photo.jpg", [_rect(1, 1, 5, 5, type="cat"), _rect(1, 1, 5, 5)])], {"class_attribute": "type"},
     "image 'photo.jpg' region 1 has no 'type' region attribute (the class)"),
    ([_entry("photo.jpg", [_rect(1, 1, 5, 5)])], {"classes": ["cat", "dog"]},
     "2 classes need class_attribute: the region attribute that holds each region's class"),
    ([_entry("photo.jpg", [_rect(1, 1, 5, 5)])], {},
     "give class_attribute: (the region attribute holding the class) or, when every region is one class"),
    ([_entry("photo.jpg", [_polygon([1, 2, 3], [1, 2])])], {"classes": ["x"]},
     "image 'photo.jpg' region 0: polygon all_points_x and all_points_y must be lists of the same length"),
    ([_entry("photo.jpg", [_polygon([1, 2, "3"], [1, 2, 3])])], {"classes": ["x"]},
     "image 'photo.jpg' region 0: polygon all_points_x[2] must be a finite number, got \"3\""),
    ([_entry("photo.jpg", [_rect(1, 1, None, 5)])], {"classes": ["x"]},
     "image 'photo.jpg' region 0: rect width must be a finite number, got null"),
    ([_entry("photo.jpg", [{"region_attributes": {}}])], {"classes": ["x"]},
     "image 'photo.jpg' region 0: shape_attributes with a shape name is missing"),
    ([_entry("photo.jpg", []), _entry("gone.jpg", []), _entry("lost.jpg", [])], {"classes": ["x"]},
     "2 of 3 image files are missing: "),
    ([_entry("photo.jpg", [], 1), _entry("photo.jpg", [], 2)], {"classes": ["x"]},
     "image 'photo.jpg' has 2 entries; VIA keeps one per image file, merge their regions"),
    ({"project": {}, "config": {}, "attribute": {}, "file": {}, "view": {}, "metadata": {}}, {"classes": ["x"]},
     "is a VIA 3 project, which format: via does not read"),
])
def test_bad_files_are_named_with_the_region(tmp_path, entries, kwargs, message):
    path = _write(tmp_path, entries)
    with pytest.raises(UserError) as err:
        load_via(path, tmp_path, **kwargs)
    assert str(path) in str(err.value) or "classes" in message
    assert message in str(err.value)


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "v.csv").write_text("filename,file_size\n")
    with pytest.raises(UserError, match="v.csv is not valid JSON: .* not its CSV"):
        load_via(tmp_path / "v.csv", tmp_path, classes=["x"])
    with pytest.raises(UserError, match="VIA annotation file .*nope.json does not exist"):
        load_via(tmp_path / "nope.json", tmp_path, classes=["x"])


def test_yaml_keys_and_check_dataset_report(tmp_path, capsys):
    _via2(tmp_path)
    (tmp_path / "v.yaml").write_text("format: via\nannotations: via_region_data.json\nimages: .\n"
                                     "class_attribute: type\nclasses: [cat, dog]\nbox_masks: true\n")
    data = load_dataset(str(tmp_path / "v.yaml"), "train")
    assert data.name == "v_train" and data.class_names == ["cat", "dog"]
    assert data.records[0].segmentations[0] == [[5, 6, 25, 6, 25, 16, 5, 16]]
    check_dataset.main([str(tmp_path / "v.yaml")])
    out = capsys.readouterr().out
    assert "v_train: 2 images, 2 classes" in out and "problems: 1 boxes clipped, 1 dropped, 1 images without" in out
    assert "skipped_shapes: " in out and "region 3: a point outlines no object; left out" in out
    (tmp_path / "v.yaml").write_text("format: via\nannotations: via_region_data.json\nimages: .\nbox_masks: 1\n")
    with pytest.raises(UserError, match="v.yaml: box_masks must be true or false, got 1"):
        load_dataset(str(tmp_path / "v.yaml"), "train")


def _balloons(folder, count=4, size=96):
    """``count`` images with a filled ellipse each (a balloon), and their VIA 2 polygons (one class)."""
    entries, rng = [], np.random.default_rng(0)
    for k in range(count):
        image = np.full((size, size, 3), 60, np.uint8)
        cx, cy, r = (int(v) for v in rng.integers(30, 66, 2).tolist() + [int(rng.integers(12, 24))])
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        xs, ys = np.round(cx + r * np.cos(t)).astype(int), np.round(cy + 1.3 * r * np.sin(t)).astype(int)
        cv2.fillPoly(image, [np.stack([xs, ys], 1).astype(np.int32)], (30, 30, 220))
        cv2.imwrite(str(folder / f"b{k}.jpg"), image)
        entries.append(_entry(f"b{k}.jpg", [_polygon(xs.tolist(), ys.tolist())]))
    (folder / "via_region_data.json").write_text(json.dumps(dict(entries)))


@pytest.mark.slow
def test_train_mask_rcnn_and_evaluate_from_a_via_yaml(tmp_path, monkeypatch, capsys):
    _balloons(tmp_path)
    (tmp_path / "balloon.yaml").write_text("format: via\nannotations: via_region_data.json\nimages: .\n"
                                           "classes: [balloon]\n")
    printed, result = train_and_evaluate(tmp_path, tmp_path / "balloon.yaml", monkeypatch, capsys)
    assert "Mask R-CNN" in printed and "on balloon_train (4 images, 1 classes)" in printed
    assert result["images"] == 4 and set(result) >= {"bbox", "segm"}  # the polygons are the mask ground truth
    assert 0.0 <= result["segm"]["AP"] <= 1.0 and set(result["segm"]["per_class"]) == {"balloon"}
