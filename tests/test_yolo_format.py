"""format: yolo (detection/data/yolo_format.py): the Ultralytics layout, data.yaml + images/ + labels/."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from backbones.errors import UserError
from detection.cli import check_dataset
from detection.data.catalog import load_dataset
from detection.data.dataset import decode_segmentation, read_image_file
from detection.data.yolo_format import label_path, load_yolo
from format_training import polygon_image, train_and_evaluate

PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"  # a real 160x120 JPEG


def _dataset(root, labels, data="names: {0: cat, 1: dog}\ntrain: images/train\nval: val.txt\n"):
    """``labels``: {image path under root: label text or None (no label file)}; photos copied there."""
    for name, text in labels.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PHOTO, root / name)
        if text is not None:
            label_path(root / name).parent.mkdir(parents=True, exist_ok=True)
            label_path(root / name).write_text(text)
    (root / "data.yaml").write_text(data)
    return root


def test_label_path_is_ultralytics_img2label_paths():
    assert label_path("/d/images/train/a.b.jpg") == Path("/d/labels/train/a.b.txt")
    assert label_path("/images/x/images/train/a.png") == Path("/images/x/labels/train/a.txt")  # the last one
    assert label_path("/d/pics/a.jpg") == Path("/d/pics/a.txt")


def test_boxes_and_segments_de_normalised_exactly(tmp_path):
    _dataset(tmp_path, {"images/train/a.jpg": "\ufeff0 0.5 0.5 0.25 0.5\r\n1 0.1 0.1 0.4 0.1 0.25 0.5\r\n\r\n",
                        "images/train/sub/b.jpg": "", "images/train/c.jpg": None})
    data = load_yolo(tmp_path, "train")
    assert data.class_names == ["cat", "dog"] and data.category_ids == [1, 2] and data.name == f"{tmp_path.name}_train"
    a, b, c = data.records  # sorted paths: a.jpg, c.jpg, sub/b.jpg
    assert (a.image_id, a.file_name, a.width, a.height) == ("images/train/a.jpg", tmp_path / "images/train/a.jpg",
                                                            160, 120)
    assert (b.image_id, c.image_id) == ("images/train/c.jpg", "images/train/sub/b.jpg")
    # 160x120: cx 80 cy 60 w 40 h 60 -> 60 30 100 90; the segment (16,12) (64,12) (40,60), its extent the box
    np.testing.assert_allclose(a.boxes, [[60, 30, 100, 90], [16, 12, 64, 60]], atol=1e-4)
    assert a.labels.tolist() == [1, 2] and len(b.boxes) == len(c.boxes) == 0
    # one box among segments: the data trains without masks, and says so
    assert a.segmentations is None and data.problems.objects_without_masks == 1
    assert data.problems.images_without_objects == 2
    assert any("labels/train/a.txt: object 0 is a box while other objects have masks" in line
               for line in data.problems.details)
    assert any("images/train/c.jpg: no objects (label file c.txt absent)" in line for line in data.problems.details)


def test_segments_are_polygon_masks_and_box_masks(tmp_path):
    _dataset(tmp_path, {"images/train/a.jpg": "1 0.1 0.1 0.4 0.1 0.4 0.5 0.1 0.5\n0 0.5 0.5 0.25 0.5\n"})
    data = load_yolo(tmp_path, "train", box_masks=True)
    (a,) = data.records
    np.testing.assert_allclose(a.segmentations[0][0], [16, 12, 64, 12, 64, 60, 16, 60], atol=1e-4)
    assert a.segmentations[1] == [[60, 30, 100, 30, 100, 90, 60, 90]]
    mask = decode_segmentation(a.segmentations[0], a.height, a.width)
    assert mask.shape == (120, 160) and mask.sum() == 48 * 48 and mask[12:60, 16:64].all()


def test_val_from_a_list_names_dict_and_path_outside(tmp_path):
    _dataset(tmp_path, {"images/val/x.jpg": "1 0.5 0.5 1 1\n", "images/val/y.jpg": "0 0.25 0.25 0.5 0.5\n"},
             data="path: ../somewhere/else\nnames: [cat, dog]\nnc: 2\nval: [val.txt]\n")
    (tmp_path / "val.txt").write_text("./images/val/y.jpg\nimages/val/x.jpg\n")
    data = load_yolo(tmp_path, "val", name="mine")
    assert data.name == "mine" and [r.image_id for r in data.records] == ["images/val/y.jpg", "images/val/x.jpg"]
    np.testing.assert_array_equal(data.records[0].boxes, [[0, 0, 80, 60]])
    np.testing.assert_array_equal(data.records[1].boxes, [[0, 0, 160, 120]])
    assert data.problems.details == []


def test_exif_orientation_turns_the_size_as_ultralytics_exif_size(tmp_path):
    # A 160x120 JPEG whose EXIF orientation 6 shows it turned: 120 wide, 160 high, as YOLO labels are made on.
    (tmp_path / "images" / "train").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(PHOTO).save(tmp_path / "images/train/r.jpg", exif=exif)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels/train/r.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = load_yolo(tmp_path, "train", classes=["cat"])  # no data.yaml: classes and images/<split>
    (r,) = data.records
    assert (r.width, r.height) == (120, 160) and read_image_file(r.file_name).shape[:2] == (160, 120)
    np.testing.assert_array_equal(r.boxes, [[30, 40, 90, 120]])


def test_clipped_duplicate_and_dropped_lines_are_counted_per_line(tmp_path):
    _dataset(tmp_path, {"images/train/a.jpg": "0 0.9 0.5 0.4 0.2\n1 -0.1 0 0.5 0 0.5 1.2\n0 0.9 0.5 0.4 0.2\n"
                                              "0 0.5 0.5 0 0.1\n"})
    data = load_yolo(tmp_path, "train")
    (a,) = data.records
    np.testing.assert_allclose(a.boxes, [[112, 48, 160, 72], [0, 0, 80, 120]], atol=1e-4)
    p = data.problems
    assert (p.clipped_boxes, p.dropped_boxes) == (2, 2)
    label = tmp_path / "labels/train/a.txt"
    assert f"clipped_boxes: {label}:1: x1 y1 x2 y2 = 112 48 176 72 clipped to the 160x120 image" in p.details
    assert f"clipped_boxes: {label}:2: segment coordinates from -0.1 to 1.2 clipped to [0, 1]" in p.details
    assert f"dropped_boxes: {label}:3: a duplicate of an earlier line; removed" in p.details
    assert any(line.startswith(f"dropped_boxes: {label}:4: x1 y1 x2 y2 = 80 54 80 66 is empty") for line in p.details)


@pytest.mark.parametrize("text, message", [
    ("2 0.5 0.5 0.1 0.1\n", "labels/train/a.txt:1: class 2 is out of range; the dataset has 2 classes (ids 0..1)"),
    ("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1 0.9\n", "labels/train/a.txt:2: 6 fields; a YOLO label line is"),
    ("0 0.5 0.5 0.1\n", "labels/train/a.txt:1: 4 fields"),
    ("0 0.5 0.5 0.1 0.1 0.2 0.2 0.3\n", "labels/train/a.txt:1: 8 fields"),
    ("0 0.5 0.5 0.1 abc\n", "labels/train/a.txt:1: '0 0.5 0.5 0.1 abc' holds a field that is not a number"),
    ("0 0.5 nan 0.1 0.1\n", "labels/train/a.txt:1: '0 0.5 nan 0.1 0.1' holds a coordinate that is not finite"),
    ("1.5 0.5 0.5 0.1 0.1\n", "labels/train/a.txt:1: class '1.5' is not a whole number"),
    ("-1 0.5 0.5 0.1 0.1\n", "labels/train/a.txt:1: class -1 is out of range"),
])
def test_bad_label_lines_are_named_by_file_and_line(tmp_path, text, message):
    _dataset(tmp_path, {"images/train/a.jpg": text})
    with pytest.raises(UserError) as err:
        load_yolo(tmp_path, "train")
    assert str(tmp_path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("data, kwargs, message", [
    (None, {}, "data.yaml does not exist; give data: (the dataset's data.yaml with names:) or classes:"),
    ("names: [cat]\ntrain: images/train\n", {"split": "test"},
     "data.yaml has no 'test' entry (it has train); set split:"),
    ("names: [cat]\ntrain: images/train\n", {"classes": ["dog"]}, "classes ['dog'] differ from the names in"),
    ("names: [cat, dog]\nnc: 3\ntrain: images/train\n", {}, "data.yaml: nc is 3 but names lists 2 classes"),
    ("names: {0: cat, 2: dog}\ntrain: images/train\n", {}, "data.yaml: names keys must be the class ids 0..1"),
    ("train: images/train\n", {}, "data.yaml has no names:; give the class names"),
    ("names: [cat]\ntrain: images/nope\n", {}, "data.yaml: train image folder"),
    ("names: [cat]\ntrain: t.txt\n", {}, "data.yaml: train image list"),
    ("names: [cat]\ntrain: images/train\nval: images/train\n[", {}, "data.yaml is not valid YAML"),
])
def test_bad_data_yaml(tmp_path, data, kwargs, message):
    _dataset(tmp_path, {"images/train/a.jpg": "0 0.5 0.5 0.1 0.1\n"}, data=data or "")
    if data is None:
        (tmp_path / "data.yaml").unlink()
    with pytest.raises(UserError) as err:
        load_yolo(tmp_path, kwargs.pop("split", "train"), **kwargs)
    assert message in str(err.value)


def test_an_image_listed_twice_is_an_error_check_dataset_reports(tmp_path, capsys):
    _dataset(tmp_path, {"images/val/x.jpg": "1 0.5 0.5 1 1\n"}, data="names: [cat, dog]\nval: val.txt\n")
    (tmp_path / "val.txt").write_text("images/val/x.jpg\n./images/val/x.jpg\n")
    with pytest.raises(UserError, match=r"data.yaml: val lists image .*x.jpg 2 times; list each image once"):
        load_yolo(tmp_path, "val")
    assert load_yolo(tmp_path, "val", strict=False).problems.duplicate_ids == 1


def test_yaml_keys_and_check_dataset_report(tmp_path, capsys):
    _dataset(tmp_path / "ds", {"images/train/a.jpg": "0 0.9 0.5 0.4 0.2\n1 0.1 0.1 0.4 0.1 0.25 0.5\n",
                               "images/train/b.jpg": None},
             data="names: [cat, dog]\ntrain: images/train\n")
    (tmp_path / "y.yaml").write_text("format: yolo\nroot: ds\nsplit: train\nbox_masks: true\n")
    data = load_dataset(str(tmp_path / "y.yaml"), "train")
    assert data.name == "y_train" and data.class_names == ["cat", "dog"] and len(data.records) == 2
    assert data.records[0].segmentations[0] == [[112, 48, 160, 48, 160, 72, 112, 72]]
    check_dataset.main([str(tmp_path / "y.yaml")])
    out = capsys.readouterr().out
    assert "y_train: 2 images, 2 classes" in out and "problems: 1 boxes clipped" in out
    assert "1 images without" in out
    assert f"{tmp_path}/ds/labels/train/a.txt:1: x1 y1 x2 y2 = 112 48 176 72 clipped" in out
    assert f"{tmp_path}/ds/images/train/b.jpg: no objects (label file b.txt absent)" in out
    (tmp_path / "y.yaml").write_text("format: yolo\nroot: ds\nsplit: 1\n")
    with pytest.raises(UserError, match="y.yaml: split must be a key of the YOLO data.yaml"):
        load_dataset(str(tmp_path / "y.yaml"), "train")
    (tmp_path / "y.yaml").write_text("format: yolo\nroot: ds\n")
    with pytest.raises(UserError, match="format yolo needs root, split; missing split"):
        load_dataset(str(tmp_path / "y.yaml"), "train")


def _shapes_set(root, count=4, size=96):
    """``count`` images per split, each with a filled polygon (class 0 or 1) as a YOLO segment line."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k in range(count):
            image, xs, ys = polygon_image(rng, size, (30, 30, 220) if k % 2 else (220, 60, 30))
            cv2.imwrite(str(root / "images" / split / f"s{k}.jpg"), image)
            coordinates = " ".join(f"{x / size:.6f} {y / size:.6f}" for x, y in zip(xs, ys))
            (root / "labels" / split / f"s{k}.txt").write_text(f"{k % 2} {coordinates}\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: red\n  1: blue\n")


@pytest.mark.slow
def test_train_mask_rcnn_and_evaluate_from_a_yolo_yaml(tmp_path, monkeypatch, capsys):
    _shapes_set(tmp_path / "ds")
    (tmp_path / "shapes.yaml").write_text("format: yolo\nroot: ds\ntrain: {split: train}\nval: {split: val}\n")
    printed, result = train_and_evaluate(tmp_path, tmp_path / "shapes.yaml", monkeypatch, capsys)
    assert "Mask R-CNN" in printed and "on shapes_train (4 images, 2 classes)" in printed
    assert result["images"] == 4 and set(result) >= {"bbox", "segm"}  # the segments are the mask ground truth
    assert 0.0 <= result["segm"]["AP"] <= 1.0 and set(result["segm"]["per_class"]) == {"red", "blue"}


def test_read_back_what_convert_dataset_writes(small_shapes, tmp_path):
    """shapes -> tools/convert_dataset.py --to yolo -> load_yolo: boxes within the 6 decimals' precision, masks
    through the traced segments."""
    from detection.cli import convert_dataset
    convert_dataset.main(["--from", "shapes", "--to", "yolo", str(tmp_path / "boxes"), "--no-masks"])
    convert_dataset.main(["--from", "shapes", "--to", "yolo", str(tmp_path / "segments")])
    source = load_dataset("shapes", "test")
    boxes, segments = load_yolo(tmp_path / "boxes", "val"), load_yolo(tmp_path / "segments", "val")
    assert boxes.class_names == segments.class_names == source.class_names
    ious = []
    for a, b, s in zip(source.records, boxes.records, segments.records):
        assert Path(b.file_name).name == Path(a.file_name).name and b.labels.tolist() == a.labels.tolist()
        assert np.abs(b.boxes - a.boxes).max() <= 1e-6 * max(a.width, a.height) + 1e-4  # float32 rounding
        assert b.segmentations is None and s.labels.tolist() == a.labels.tolist()
        for k, segmentation in enumerate(a.segmentations):
            mine = decode_segmentation(segmentation, a.height, a.width).astype(bool)
            back = decode_segmentation(s.segmentations[k], s.height, s.width).astype(bool)
            ious.append((mine & back).sum() / (mine | back).sum())
    assert len(ious) > 10 and min(ious) >= 0.99, ious  # the bar through polygons (measured: 1.0)
