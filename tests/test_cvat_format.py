"""format: cvat (detection/data/cvat_format.py): CVAT "for images 1.1" XML, as CVAT exports a task."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from backbones.errors import UserError
from detection.cli import check_dataset
from detection.data.catalog import load_dataset
from detection.data.coco_format import to_coco_ground_truth
from detection.data.cvat_format import load_cvat
from detection.data.dataset import decode_segmentation
from format_training import train_and_evaluate

PHOTO = Path(__file__).resolve().parent / "data" / "coco_000000343934_160x120.jpg"  # a real 160x120 JPEG

META = """  <version>1.1</version>
  <meta>
    <task>
      <id>7</id>
      <name>pets</name>
      <size>2</size>
      <mode>annotation</mode>
      <labels>
        <label>
          <name>cat</name>
          <color>#fa3253</color>
          <type>any</type>
          <attributes>
            <attribute><name>colour</name><mutable>False</mutable><input_type>select</input_type></attribute>
          </attributes>
        </label>
        <label>
          <name>dog</name>
          <color>#3d3df5</color>
          <type>any</type>
          <attributes/>
        </label>
      </labels>
    </task>
    <dumped>2024-03-01 10:00:00.000000+00:00</dumped>
  </meta>
"""


def _write(folder, images, meta=META):
    """annotations.xml with ``images`` (the <image> elements' text) after CVAT's header."""
    path = folder / "annotations.xml"
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n{meta}{images}</annotations>\n')
    return path


IMAGES = """  <image id="0" name="photos/a.jpg" width="160" height="120">
    <box label="dog" source="manual" occluded="0" xtl="10.50" ytl="20.00" xbr="110.00" ybr="90.25" z_order="0">
      <attribute name="colour">brown</attribute>
    </box>
    <polygon label="cat" source="manual" occluded="1" points="100.00,50.00;170.00,60.00;120.00,130.00" z_order="0"/>
    <polyline label="cat" source="manual" occluded="0" points="1.00,2.00;3.00,4.00" z_order="0"/>
    <tag label="cat" source="manual"/>
  </image>
  <image id="1" name="b.jpg" width="160" height="120">
    <box label="cat" source="manual" occluded="0" xtl="5.00" ytl="5.00" xbr="5.00" ybr="30.00" z_order="0"/>
  </image>
"""


def test_boxes_polygons_and_problems(tmp_path):
    data = load_cvat(_write(tmp_path, IMAGES), tmp_path)
    assert data.class_names == ["cat", "dog"] and data.category_ids == [1, 2] and data.name == "annotations"
    a, b = data.records
    assert (a.image_id, a.file_name, a.width, a.height) == (0, tmp_path / "photos" / "a.jpg", 160, 120)
    # a <box> is x1 y1 x2 y2 already; the polygon's extent is clipped to the 160x120 image
    np.testing.assert_allclose(a.boxes, [[10.5, 20, 110, 90.25], [100, 50, 160, 120]])
    assert a.labels.tolist() == [2, 1] and a.ignore.tolist() == [False, False] and len(b.boxes) == 0
    p = data.problems
    assert (p.clipped_boxes, p.dropped_boxes, p.skipped_shapes, p.images_without_objects) == (1, 1, 1, 1)
    assert any("image 0 (photos/a.jpg) <polyline> 2: a <polyline> outlines no object; left out" in line
               for line in p.details)
    assert any("image 1 (b.jpg) <box> 0 (cat): x1 y1 x2 y2 = 5 5 5 30 is empty" in line for line in p.details)
    # boxes and polygons mixed: the data has no masks unless box_masks gives boxes box-shaped ones
    assert a.segmentations is None and p.objects_without_masks == 1
    assert any("image 0 (photos/a.jpg) object 0 is a box while other objects have masks" in line for line in p.details)
    masked = load_cvat(_write(tmp_path, IMAGES), tmp_path, classes=["dog", "cat"], box_masks=True).records[0]
    assert masked.labels.tolist() == [1, 2]
    assert masked.segmentations == [[[10.5, 20, 110, 20, 110, 90.25, 10.5, 90.25]], [[100, 50, 170, 60, 120, 130]]]


def test_polygons_only_are_masks_and_a_mask_element_is_decoded(tmp_path):
    # CVAT's mask RLE: run lengths over the left/top/width/height rectangle, row by row, background first.
    # 4x3 rectangle at (20, 10): rows 0110 / 1111 / 0000 -> runs 1, 2, 1, 4, 4
    images = """  <image id="3" name="a.jpg" width="64" height="48">
    <polygon label="cat" occluded="0" points="10,10;30,10;30,20;10,20" z_order="0"/>
    <mask label="dog" source="manual" occluded="0" rle="1, 2, 1, 4, 4" left="20" top="10" width="4" height="3" z_order="0"/>
  </image>
"""
    data = load_cvat(_write(tmp_path, images), tmp_path)
    rec = data.records[0]
    np.testing.assert_array_equal(rec.boxes, [[10, 10, 30, 20], [20, 10, 24, 12]])
    coco, _ = to_coco_ground_truth(data)  # mask ground truth for COCO evaluation: areas are mask areas
    assert [a["area"] for a in coco.dataset["annotations"]] == [200, 6]
    square = decode_segmentation(rec.segmentations[0], 48, 64)
    assert square.sum() == 200 and square[10:20, 10:30].all()
    mask = mask_util.decode(rec.segmentations[1])
    expected = np.zeros((48, 64), np.uint8)
    expected[10, 21:23] = 1
    expected[11, 20:24] = 1
    np.testing.assert_array_equal(mask, expected)
    json.dumps(rec.segmentations)  # JSON-ready, as COCO files hold them


def test_rotated_box_and_ellipse(tmp_path):
    images = """  <image id="0" name="a.jpg" width="200" height="200">
    <box label="cat" occluded="0" xtl="40" ytl="90" xbr="160" ybr="110" rotation="90.00" z_order="0"/>
    <ellipse label="dog" occluded="0" cx="100" cy="100" rx="30" ry="10" rotation="90.00" z_order="0"/>
  </image>
"""
    rec = load_cvat(_write(tmp_path, images), tmp_path).records[0]
    np.testing.assert_allclose(rec.boxes, [[90, 40, 110, 160], [90, 70, 110, 130]], atol=1e-4)


def test_labels_of_a_project_export_and_skeleton_points(tmp_path):
    meta = """  <version>1.1</version>
  <meta><project><name>p</name><labels>
    <label><name>person</name><type>skeleton</type></label>
    <label><name>nose</name><type>points</type><parent>person</parent></label>
    <label><name>car</name><type>rectangle</type></label>
  </labels></project></meta>
"""
    images = """  <image id="0" name="train/a.jpg" subset="train" task_id="4" width="64" height="48"/>
  <image id="0" name="val/b.jpg" subset="val" task_id="5" width="64" height="48"/>
"""
    data = load_cvat(_write(tmp_path, images, meta), tmp_path)
    assert data.class_names == ["person", "car"]
    assert [r.image_id for r in data.records] == ["4/0", "5/0"]  # frame ids count within each task


@pytest.mark.parametrize("images, message", [
    ('<image id="0" name="a.jpg" width="64" height="48"><box label="cow" xtl="1" ytl="1" xbr="5" ybr="5"/></image>',
     "image 0 (a.jpg) <box> 0 has label 'cow', which is not one of the classes (cat, dog); add it to classes:"),
    ('<image id="0" name="a.jpg" width="64" height="48"><box label="cat" xtl="1" ytl="1" xbr="5"/></image>',
     "image 0 (a.jpg) <box> 0 (cat): attribute ybr is missing"),
    ('<image id="0" name="a.jpg" width="64" height="48"><box label="cat" xtl="1" ytl="nan" xbr="5" ybr="5"/></image>',
     "image 0 (a.jpg) <box> 0 (cat): attribute ytl is not a finite number ('nan')"),
    ('<image id="0" name="a.jpg" width="64" height="48"><polygon label="cat" points="1,2;3"/></image>',
     "image 0 (a.jpg) <polygon> 0 (cat): points must be 'x1,y1;x2,y2;...' with finite numbers, got '1,2;3'"),
    ('<image id="0" name="a.jpg" width="64" height="48"><mask label="cat" rle="1, 2" left="0" top="0" width="2" '
     'height="2"/></image>', "<mask> 0 (cat): rle must be comma-separated run lengths adding up to width x height = 4"),
    ('<image id="0" name="a.jpg" height="48"/>', "<image> 0 (0-based) (a.jpg): attribute width is missing"),
    ('<image id="x" name="a.jpg" width="64" height="48"/>', "<image> 0 (0-based) (a.jpg): attribute id is 'x'"),
    ('<image id="0" name="a.jpg" width="64" height="48"/><image id="0" name="b.jpg" width="64" height="48"/>',
     "image id 0 is used by 2 <image> elements (a.jpg, b.jpg); give each image its own id"),
    ('<track id="0" label="cat"><box frame="0" xtl="1" ytl="1" xbr="5" ybr="5"/></track>',
     "is a 'CVAT for video 1.1' export (it has <track> elements); export the task as 'CVAT for images 1.1'"),
])
def test_bad_files_are_named_with_the_element(tmp_path, images, message):
    path = _write(tmp_path, images)
    with pytest.raises(UserError) as err:
        load_cvat(path, tmp_path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_not_xml_no_labels_and_missing_file(tmp_path):
    (tmp_path / "a.xml").write_text("<annotations><image></annotations>")
    with pytest.raises(UserError, match=r"a.xml is not valid XML \(line 1, column"):
        load_cvat(tmp_path / "a.xml", tmp_path)
    with pytest.raises(UserError, match="<meta> lists no labels; give classes: in the dataset YAML"):
        load_cvat(_write(tmp_path, "", meta=""), tmp_path)
    assert load_cvat(_write(tmp_path, "", meta=""), tmp_path, classes=["x"]).class_names == ["x"]
    with pytest.raises(UserError, match="CVAT annotation file .*nope.xml does not exist"):
        load_cvat(tmp_path / "nope.xml", tmp_path)


def test_yaml_keys_and_check_dataset_report(tmp_path, capsys):
    _write(tmp_path, IMAGES)
    (tmp_path / "photos").mkdir()
    for name in ("photos/a.jpg", "b.jpg"):
        shutil.copy(PHOTO, tmp_path / name)
    (tmp_path / "c.yaml").write_text("format: cvat\nannotations: annotations.xml\nimages: .\n")
    data = load_dataset(str(tmp_path / "c.yaml"), "train")
    assert data.name == "c_train" and data.class_names == ["cat", "dog"] and data.records[0].segmentations is None
    check_dataset.main([str(tmp_path / "c.yaml"), "--check-images"])
    out = capsys.readouterr().out
    assert "c_train: 2 images, 2 classes" in out and "problems: 1 boxes clipped, 1 dropped, 1 images without" in out
    assert ("1 images without objects, 1 shapes left out (not objects), 1 boxes among objects with masks (the data "
            "is read as boxes only)") in out
    assert "skipped_shapes: " in out and "objects_without_masks: " in out and "box_masks: true" in out
    (tmp_path / "c.yaml").write_text("format: cvat\nannotations: annotations.xml\nimages: .\nclass_attribute: x\n")
    with pytest.raises(UserError, match="class_attribute"):
        load_dataset(str(tmp_path / "c.yaml"), "train")


def _pets(folder, count=4, size=96):
    """``count`` images with a filled polygon each and their CVAT polygons."""
    rng, images = np.random.default_rng(1), ""
    for k in range(count):
        image = np.full((size, size, 3), 70, np.uint8)
        x, y = (int(v) for v in rng.integers(10, 50, 2))
        points = np.array([[x, y], [x + 36, y + 4], [x + 30, y + 40], [x + 2, y + 30]], np.int32)
        cv2.fillPoly(image, [points], (200, 60, 40))
        cv2.imwrite(str(folder / f"p{k}.jpg"), image)
        text = ";".join(f"{px:.2f},{py:.2f}" for px, py in points.tolist())
        images += (f'  <image id="{k}" name="p{k}.jpg" width="{size}" height="{size}">\n'
                   f'    <polygon label="{("cat", "dog")[k % 2]}" source="manual" occluded="0" points="{text}" '
                   f'z_order="0"/>\n  </image>\n')
    _write(folder, images)


@pytest.mark.slow
def test_train_mask_rcnn_and_evaluate_from_a_cvat_yaml(tmp_path, monkeypatch, capsys):
    _pets(tmp_path)
    (tmp_path / "pets.yaml").write_text("format: cvat\nannotations: annotations.xml\nimages: .\n")
    printed, result = train_and_evaluate(tmp_path, tmp_path / "pets.yaml", monkeypatch, capsys)
    assert "Mask R-CNN" in printed and "on pets_train (4 images, 2 classes)" in printed
    assert result["images"] == 4 and set(result) >= {"bbox", "segm"}  # the polygons are the mask ground truth
    assert set(result["bbox"]["per_class"]) == set(result["segm"]["per_class"]) == {"cat", "dog"}
