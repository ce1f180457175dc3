"""VOC XML loader: coordinate conversion, bad-data accounting, error messages, union."""
import json
import re

import numpy as np
import pytest

from backbones.errors import UserError
from detection.data import shapes
from detection.data.voc_format import VOC_CLASSES, load_voc, voc_union

CLASSES = ("cat", "dog")


def _object(name, box, difficult=None):
    """XML text of one <object>; ``box`` values are written verbatim (so may be bad)."""
    diff = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    fields = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    return f"<object><name>{name}</name><truncated>1</truncated>{diff}<bndbox>{fields}</bndbox></object>"


def _xml(width, height, *objects):
    return (f"<annotation><filename>x.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{''.join(objects)}</annotation>\n")


def _tree(root, split_text, annotations, split="train"):
    """Write a VOC tree: ``annotations`` maps stem -> XML text; returns root."""
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text(split_text)
    for stem, text in annotations.items():
        (root / "Annotations" / f"{stem}.xml").write_text(text)
    return root


def _one_image(tmp_path, *objects, width=100, height=80):
    root = _tree(tmp_path / "VOC", "a\n", {"a": _xml(width, height, *objects)})
    return load_voc(root, "train", CLASSES)


def test_voc_classes_standard_order():
    assert len(VOC_CLASSES) == 20 and VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[-1] == "tvmonitor"
    assert VOC_CLASSES.index("person") == 14


def test_exact_conversion_and_record_fields(tmp_path):
    data = _one_image(tmp_path, _object("dog", (1, 1, 100, 80)), _object("cat", (5, 7, 5, 7)))
    (rec,) = data.records
    # full image: xmin=1 -> 0, xmax=W -> W; 1-pixel box at (5, 7) -> [4, 6, 5, 7]
    np.testing.assert_array_equal(rec.boxes, [[0, 0, 100, 80], [4, 6, 5, 7]])
    assert rec.boxes.dtype == np.float32 and rec.labels.dtype == np.int64
    assert rec.labels.tolist() == [2, 1] and rec.ignore.tolist() == [False, False]
    assert (rec.image_id, rec.width, rec.height) == ("a", 100, 80)
    assert rec.file_name == tmp_path / "VOC" / "JPEGImages" / "a.jpg"
    assert data.class_names == ["cat", "dog"] and data.category_ids == [1, 2]
    assert data.name == "VOC_train"
    assert (data.problems.clipped_boxes, data.problems.dropped_boxes) == (0, 0)


def test_image_ext_and_name(tmp_path):
    root = _tree(tmp_path / "VOC", "a\n", {"a": _xml(10, 10, _object("cat", (1, 1, 5, 5)))})
    data = load_voc(root, "train", CLASSES, name="mine", image_ext=".png")
    assert data.name == "mine" and data.records[0].file_name.name == "a.png"


def test_difficult_becomes_ignore(tmp_path):
    data = _one_image(tmp_path, _object("cat", (1, 1, 9, 9), difficult=1),
                      _object("cat", (1, 1, 9, 9), difficult=0), _object("dog", (1, 1, 9, 9)))
    assert data.records[0].ignore.tolist() == [True, False, False]
    assert data.problems.images_without_objects == 0  # a difficult object still counts as an object


def test_fractional_coordinates_kept(tmp_path):
    data = _one_image(tmp_path, _object("cat", (10.5, 20.25, 30.75, 40.5)))
    np.testing.assert_allclose(data.records[0].boxes, [[9.5, 19.25, 30.75, 40.5]])


def test_out_of_image_box_clipped_and_counted(tmp_path):
    data = _one_image(tmp_path, _object("cat", (-4, 0, 120, 50)), _object("dog", (2, 2, 3, 3)))
    np.testing.assert_array_equal(data.records[0].boxes, [[0, 0, 100, 50], [1, 1, 3, 3]])
    assert data.problems.clipped_boxes == 1 and data.problems.dropped_boxes == 0
    assert "a.xml" in data.problems.details[0] and "object index 0" in data.problems.details[0]


def test_inverted_and_empty_boxes_dropped_and_counted(tmp_path):
    data = _one_image(tmp_path, _object("cat", (10, 10, 20, 20)),
                      _object("dog", (30, 10, 20, 20)),     # inverted x
                      _object("cat", (10, 10, 20, 9)),     # zero height: y1 = 9 = y2
                      _object("dog", (150, 10, 160, 20)))   # entirely right of the image
    rec = data.records[0]
    np.testing.assert_array_equal(rec.boxes, [[9, 9, 20, 20]])
    assert rec.labels.tolist() == [1] and rec.ignore.tolist() == [False]
    assert data.problems.dropped_boxes == 3 and data.problems.clipped_boxes == 0
    dropped = [d for d in data.problems.details if d.startswith("dropped_boxes")]
    assert [("object index %d " % k) in d for k, d in zip((1, 2, 3), dropped)] == [True] * 3
    assert all("a.xml" in d for d in dropped)


def test_image_with_only_dropped_objects_kept_and_counted(tmp_path):
    root = _tree(tmp_path / "VOC", "bad\nempty\nok\n", {
        "bad": _xml(50, 50, _object("cat", (60, 60, 70, 70))),
        "empty": _xml(50, 50),
        "ok": _xml(50, 50, _object("dog", (1, 1, 50, 50))),
    })
    data = load_voc(root, "train", CLASSES)
    assert [r.image_id for r in data.records] == ["bad", "empty", "ok"]
    bad, empty, _ = data.records
    assert bad.boxes.shape == (0, 4) and bad.labels.shape == (0,) and bad.ignore.shape == (0,)
    assert empty.boxes.shape == (0, 4) and empty.boxes.dtype == np.float32
    assert data.problems.images_without_objects == 2 and data.problems.dropped_boxes == 1


def test_split_list_second_column_and_blank_lines(tmp_path):
    text = "a  1\n\n   \nb -1\r\nc\n\n"
    anns = {s: _xml(20, 20, _object("cat", (1, 1, 5, 5))) for s in "abc"}
    data = load_voc(_tree(tmp_path / "VOC", text, anns), "train", CLASSES)
    assert [r.image_id for r in data.records] == ["a", "b", "c"]


def test_unknown_class_error(tmp_path):
    with pytest.raises(UserError, match=r"a\.xml.*'horse'.*`classes:`.*full list"):
        _one_image(tmp_path, _object("cat", (1, 1, 5, 5)), _object("horse", (1, 1, 5, 5)))


def test_malformed_xml_error_names_file_and_line(tmp_path):
    text = "<annotation>\n<size><width>10</width>\n<height>10</height></size>\n<object></annotation>\n"
    root = _tree(tmp_path / "VOC", "a\n", {"a": text})
    with pytest.raises(UserError, match=r"a\.xml is not valid XML \(line 4, column \d+\)"):
        load_voc(root, "train", CLASSES)


@pytest.mark.parametrize("box, found", [((1, 1, "x", 5), r"<xmax> is not a number \('x'\)"),
                                        ((1, 1, 5, ""), r"<ymax> is not a number"),
                                        ((1, 1, 5, "nan"), r"<ymax> is not a finite number")])
def test_non_numeric_box_field_error(tmp_path, box, found):
    with pytest.raises(UserError, match=r"a\.xml: object index 0 .*" + found):
        _one_image(tmp_path, _object("cat", box))


def test_missing_box_field_error(tmp_path):
    obj = "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax></bndbox></object>"
    with pytest.raises(UserError, match=r"a\.xml: object index 0 .*<ymax> is missing"):
        _one_image(tmp_path, obj)


def test_missing_xml_error_names_path(tmp_path):
    root = _tree(tmp_path / "VOC", "a\nb\n", {"a": _xml(10, 10)})
    expected = str(root / "Annotations" / "b.xml")
    with pytest.raises(UserError, match="annotation file not found: " + re.escape(expected)):
        load_voc(root, "train", CLASSES)


def test_missing_split_list_error_names_path(tmp_path):
    root = _tree(tmp_path / "VOC", "a\n", {"a": _xml(10, 10)})
    expected = str(root / "ImageSets" / "Main" / "val.txt")
    with pytest.raises(UserError, match=re.escape(expected) + r".*datasets/README\.md"):
        load_voc(root, "val", CLASSES)


def test_repeated_stem_in_split_list_error(tmp_path):
    root = _tree(tmp_path / "VOC", "a\nb\n\na  1\nb\na\n", {"a": _xml(10, 10), "b": _xml(10, 10)})
    with pytest.raises(UserError, match=r"train\.txt: image 'a' is listed 3 times \(lines 1, 4, 6\); list each "
                                        r"image once \(and 1 more such error; python tools/check_dataset.py lists "
                                        r"them all\)"):
        load_voc(root, "train", CLASSES)
    lenient = load_voc(root, "train", CLASSES, strict=False)  # check_dataset's load: every repeat is noted
    assert [r.image_id for r in lenient.records] == ["a", "b", "a", "b", "a"]
    assert lenient.problems.duplicate_ids == 2
    assert "image 'b' is listed 2 times (lines 2, 5)" in lenient.problems.errors()[1]


def test_voc_union_refuses_sources_of_one_name(tmp_path):
    data = load_voc(_tree(tmp_path / "VOC", "a\n", {"a": _xml(10, 10)}), "train", CLASSES, name="voc_2007_trainval")
    with pytest.raises(UserError, match=r"'both': its sources \['voc_2007_trainval', 'voc_2007_trainval'\] share a "
                                        r"name, so their image ids would collide"):
        voc_union([data, data], "both")


def test_voc_union_unique_ids_and_summed_problems(tmp_path):
    anns = {"000005": _xml(10, 10, _object("cat", (-1, 1, 5, 5))), "000007": _xml(10, 10)}
    d07 = load_voc(_tree(tmp_path / "VOC2007", "000005\n000007\n", anns), "train", CLASSES, name="voc_2007_trainval")
    d12 = load_voc(_tree(tmp_path / "VOC2012", "000005\n", anns), "train", CLASSES, name="voc_2012_trainval")
    both = voc_union([d07, d12], "voc_0712_trainval")
    assert both.name == "voc_0712_trainval" and both.class_names == ["cat", "dog"]
    assert [r.image_id for r in both.records] == [
        "voc_2007_trainval/000005", "voc_2007_trainval/000007", "voc_2012_trainval/000005"]
    assert (both.problems.clipped_boxes, both.problems.images_without_objects) == (2, 1)
    assert len(both.problems.details) == 3
    assert d07.records[0].image_id == "000005"  # the sources are not modified


def test_voc_union_rejects_different_classes(tmp_path):
    anns = {"a": _xml(10, 10)}
    d1 = load_voc(_tree(tmp_path / "v1", "a\n", anns), "train", CLASSES, name="one")
    d2 = load_voc(_tree(tmp_path / "v2", "a\n", anns), "train", ("cat", "dog", "cow"), name="two")
    with pytest.raises(UserError, match="class lists differ"):
        voc_union([d1, d2], "both")


def test_shapes_voc_matches_coco(tmp_path):
    root = shapes.generate(tmp_path / "shapes", shapes.ShapesConfig(seed=3, num_train=6, num_val=2))
    data = load_voc(root, "train", shapes.CLASSES)
    coco = json.loads((root / "instances_train.json").read_text())
    stem_of = {img["id"]: img["file_name"].rsplit(".", 1)[0] for img in coco["images"]}
    expected = {stem: ([], []) for stem in stem_of.values()}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        expected[stem_of[ann["image_id"]]][0].append([x, y, x + w, y + h])
        expected[stem_of[ann["image_id"]]][1].append(ann["category_id"])
    assert [r.image_id for r in data.records] == [f"train_{i:05d}" for i in range(6)]
    for rec in data.records:
        boxes, labels = expected[rec.image_id]
        np.testing.assert_array_equal(rec.boxes, np.array(boxes, np.float32).reshape(-1, 4))
        assert rec.labels.tolist() == labels and not rec.ignore.any()
        assert rec.file_name.is_file() and (rec.width, rec.height) == (192, 192)
    assert data.problems.clipped_boxes == data.problems.dropped_boxes == 0


def test_voc_2012_test_loads_without_annotations(tmp_path, monkeypatch):
    """The 2012 test archive has images and split lists, no Annotations: sizes come from the images."""
    from PIL import Image
    from detection.data.catalog import load_dataset
    root = tmp_path / "VOCdevkit" / "VOC2012"
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main" / "test.txt").write_text("2008_000001\n2008_000007\n")
    Image.new("RGB", (500, 375)).save(root / "JPEGImages" / "2008_000001.jpg")
    Image.new("RGB", (333, 480)).save(root / "JPEGImages" / "2008_000007.jpg")
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path))
    data = load_dataset("voc_2012_test", "test")
    assert [(r.image_id, r.width, r.height, r.boxes.shape) for r in data.records] == [
        ("2008_000001", 500, 375, (0, 4)), ("2008_000007", 333, 480, (0, 4))]
    (root / "JPEGImages" / "2008_000007.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"cannot read image .*2008_000007\.jpg"):
        load_dataset("voc_2012_test", "test")
