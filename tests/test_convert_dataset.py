"""tools/convert_dataset.py: COCO, VOC and YOLO output read back by the training readers, on real COCO annotations
(tests/data/coco_instances_sample.json: 4 val2017 photos, 35 objects, polygons and a crowd RLE; see
tests/data/README.md) and on the shapes set (visible-mask RLEs).

Round trips: boxes to the target format's precision (COCO: the same float32; VOC: each edge at the nearest
whole pixel; YOLO: 6 decimals of the image size), masks exactly where the target holds pixels or traced outlines
(VOC PNGs, RLEs traced to YOLO polygons), and within a pixel or two of the boundary through an annotator's
polygon written with 6 decimals (pycocotools fills boundary pixels by where their vertices fall).
"""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_util

from detection.cli import convert_dataset
from detection.data.catalog import load_dataset, load_dataset_file
from detection.data.coco_format import load_coco
from detection.data.conversion import output_names
from detection.data.mask_polygons import decode, mask_polygon
from detection.data.records import ImageRecord
from detection.data.voc_writer import voc_box

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "coco_instances_sample.json"


def _sample():
    return load_coco(SAMPLE, DATA, "sample")


def _convert(*argv):
    convert_dataset.main([str(a) for a in argv])


def _fill(polygon, height, width) -> np.ndarray:
    """The pixels pycocotools fills for one flat polygon (as any COCO tool rasterizes it)."""
    return mask_util.decode(mask_util.frPyObjects([polygon], height, width)[0])


def _painted(record) -> np.ndarray:
    """The instance map a VOC PNG can hold: objects painted largest first, so smaller ones stay on top."""
    masks = [decode(s, record.height, record.width).astype(bool) for s in record.segmentations]
    painted = np.zeros((record.height, record.width), np.int32)
    for k in sorted(range(len(masks)), key=lambda k: -int(masks[k].sum())):
        painted[masks[k]] = k + 1
    return painted


def test_coco_to_coco_keeps_ids_boxes_masks_and_crowds(tmp_path, capsys):
    _convert("--from", "coco", SAMPLE, "--images", DATA, "--to", "coco", tmp_path / "out", "--split", "val")
    assert "coco_instances_sample: 4 images, 35 objects (35 with masks) -> split val" in capsys.readouterr().out
    spec = yaml.safe_load((tmp_path / "out" / "dataset.yaml").read_text())
    assert spec == {"format": "coco", "annotations": "annotations/instances_val.json", "images": "images/val"}
    source, back = _sample(), load_dataset_file(tmp_path / "out" / "dataset.yaml", "test")
    assert back.category_ids == source.category_ids and back.class_names == source.class_names  # ids 1..90
    assert [r.image_id for r in back.records] == [r.image_id for r in source.records]
    for a, b in zip(source.records, back.records):
        assert Path(b.file_name) == tmp_path / "out" / "images" / "val" / Path(a.file_name).name
        assert Path(b.file_name).read_bytes() == Path(a.file_name).read_bytes()
        assert np.array_equal(a.boxes, b.boxes)  # float32 to the last bit
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.ignore, b.ignore)
        assert b.segmentations == [s if isinstance(s, list) else b.segmentations[k]
                                   for k, s in enumerate(a.segmentations)]
        for s, t in zip(a.segmentations, b.segmentations):
            assert np.array_equal(decode(s, a.height, a.width), decode(t, b.height, b.width))
    written = json.loads((tmp_path / "out" / "annotations" / "instances_val.json").read_text())
    crowd = [ann for ann in written["annotations"] if ann["iscrowd"]]
    original = [ann for ann in json.loads(SAMPLE.read_text())["annotations"] if ann["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["segmentation"] == original[0]["segmentation"]  # uncompressed RLE kept
    assert crowd[0]["bbox"] == original[0]["bbox"] == [131, 294, 115, 126]


def test_coco_to_voc_to_coco(tmp_path):
    _convert("--from", "coco", SAMPLE, "--images", DATA, "--to", "voc", tmp_path / "voc", "--split", "val")
    spec = yaml.safe_load((tmp_path / "voc" / "dataset.yaml").read_text())
    source = _sample()
    assert spec == {"format": "voc", "root": ".", "classes": source.class_names, "split": "val", "masks": True}
    xml = (tmp_path / "voc" / "Annotations" / "coco_000000464689.xml").read_text()
    assert "<filename>coco_000000464689.jpg</filename>" in xml and "<difficult>1</difficult>" in xml
    voc = load_dataset_file(tmp_path / "voc" / "dataset.yaml", "train")
    assert [r.image_id for r in voc.records] == [Path(r.file_name).stem for r in source.records]
    for a, b in zip(source.records, voc.records):
        # whole pixels: each edge at its nearest pixel boundary
        assert np.array_equal(b.boxes, np.floor(a.boxes.astype(np.float64) + 0.5))
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.ignore, b.ignore)
        painted = _painted(a)  # overlapping people on the bus: a pixel holds one object
        for k, segmentation in enumerate(b.segmentations):
            assert np.array_equal(decode(segmentation, b.height, b.width), painted == k + 1)
    _convert("--from", tmp_path / "voc" / "dataset.yaml", "--to", "coco", tmp_path / "coco")
    back = load_dataset_file(tmp_path / "coco" / "dataset.yaml")
    assert back.class_names == source.class_names and back.category_ids == list(range(1, 81))  # VOC has no ids
    for a, b in zip(voc.records, back.records):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.ignore, b.ignore)
        for s, t in zip(a.segmentations, b.segmentations):  # RLE both ways: exact
            assert np.array_equal(decode(s, a.height, a.width), decode(t, b.height, b.width))


def _yolo_objects(root, split, record, stem):
    """(class index, coordinates in pixels) of each line of a YOLO label file, parsed here by the Ultralytics
    layout: ``cls cx cy w h`` or ``cls x1 y1 x2 y2 ...``, normalised by the image size."""
    objects = []
    for line in (root / "labels" / split / f"{stem}.txt").read_text().splitlines():
        values = line.split()
        assert all(len(v.split(".")[1]) == 6 for v in values[1:])  # 6 decimals
        scale = np.array([record.width, record.height] * ((len(values) - 1) // 2))
        objects.append((int(values[0]), np.array(values[1:], np.float64) * scale))
    return objects


def _check_yolo_boxes(root, split, records):
    for record in records:
        objects = _yolo_objects(root, split, record, Path(record.file_name).stem)
        keep = np.flatnonzero(~record.ignore)  # YOLO has no crowd / difficult: left out
        assert [c for c, _ in objects] == (record.labels[keep] - 1).tolist()
        for k, (_, (cx, cy, w, h)) in zip(keep, objects):
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            size = np.array([record.width, record.height] * 2)
            assert np.abs(np.array(box) - record.boxes[k]).max() <= 1e-6 * size.max()


def test_coco_to_yolo_boxes_and_polygons(tmp_path, capsys):
    _convert("--from", "coco", SAMPLE, "--images", DATA, "--to", "yolo", tmp_path / "boxes", "--no-masks")
    assert "1 crowd/difficult objects left out: YOLO labels have no ignore flag" in capsys.readouterr().out
    source = _sample()
    _check_yolo_boxes(tmp_path / "boxes", "train", source.records)
    assert yaml.safe_load((tmp_path / "boxes" / "data.yaml").read_text()) == {
        "train": "images/train", "nc": 80, "names": dict(enumerate(source.class_names))}
    assert yaml.safe_load((tmp_path / "boxes" / "dataset.yaml").read_text()) == {
        "format": "yolo", "root": ".", "split": "train"}
    assert (tmp_path / "boxes" / "images" / "train" / "coco_000000128372.jpg").is_file()

    _convert("--from", "coco", SAMPLE, "--images", DATA, "--to", "yolo", tmp_path / "segments")
    boundary_pixels = []  # (pixels that differ, pixels of either) per object
    for record in source.records:
        objects = _yolo_objects(tmp_path / "segments", "train", record, Path(record.file_name).stem)
        for k, (_, polygon) in zip(np.flatnonzero(~record.ignore), objects):
            assert len(polygon) > 4  # segment lines
            original = decode(record.segmentations[k], record.height, record.width)
            back = _fill(polygon.tolist(), record.height, record.width)
            union, differ = (original | back).sum(), (original ^ back).sum()
            # an annotator's polygon: pycocotools fills a pixel by where the vertices fall to 1/5 pixel, so
            # 6 decimals can move a pixel or two on the boundary; traced masks (several parts) are exact
            assert differ <= max(0.01 * union, 2), (record.image_id, k)
            if len(record.segmentations[k]) > 1:  # several parts: joined by tracing the mask, exact
                assert differ == 0
            boundary_pixels.append((int(differ), int(union)))
    differ, union = np.sum(boundary_pixels, axis=0)
    assert len(boundary_pixels) == 34 and differ / union < 1e-3, (differ, union)


def _by_stem(data) -> dict:
    return {Path(r.file_name).stem: r for r in data.records}


def _yolo_round_trip(source, tmp_path, dataset_argv, role="train"):
    """source -> yolo (boxes only, and with segments) -> the yolo reader -> coco -> the coco reader."""
    _convert(*dataset_argv, "--to", "yolo", tmp_path / "boxes", "--no-masks")
    boxes = _by_stem(load_dataset_file(tmp_path / "boxes" / "dataset.yaml", role))
    assert sorted(boxes) == sorted(Path(r.file_name).stem for r in source.records)
    for a in source.records:
        b, keep = boxes[Path(a.file_name).stem], np.flatnonzero(~a.ignore)  # YOLO has no crowd / difficult
        assert (b.width, b.height) == (a.width, a.height) and np.array_equal(b.labels, a.labels[keep])
        assert np.abs(b.boxes - a.boxes[keep]).max(initial=0) <= 1e-6 * max(a.width, a.height)
        assert not b.ignore.any() and b.segmentations is None
    _convert(*dataset_argv, "--to", "yolo", tmp_path / "segments")
    yolo = load_dataset_file(tmp_path / "segments" / "dataset.yaml", role)
    segments = _by_stem(yolo)
    for a in source.records:
        b, keep = segments[Path(a.file_name).stem], np.flatnonzero(~a.ignore)
        assert np.array_equal(b.labels, a.labels[keep])
        for k, segmentation in zip(keep, b.segmentations):
            original, back = decode(a.segmentations[k], a.height, a.width), decode(segmentation, b.height, b.width)
            differ, union = (original ^ back).sum(), (original | back).sum()
            if not (isinstance(a.segmentations[k], list) and len(a.segmentations[k]) == 1):
                assert differ == 0  # an RLE or several parts: traced, exact
            assert differ <= max(0.01 * union, 2)  # an annotator's polygon: a pixel or two on the boundary
    _convert("--from", tmp_path / "segments" / "dataset.yaml", "--to", "coco", tmp_path / "coco")
    back = _by_stem(load_dataset_file(tmp_path / "coco" / "dataset.yaml", role))
    for a in yolo.records:
        b = back[Path(a.file_name).stem]
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
        for s, t in zip(a.segmentations, b.segmentations):
            assert np.array_equal(decode(s, a.height, a.width), decode(t, b.height, b.width))
    return yolo


def test_coco_to_yolo_to_coco_through_the_yolo_reader(tmp_path):
    yolo = _yolo_round_trip(_sample(), tmp_path, ["--from", "coco", SAMPLE, "--images", DATA])
    assert len(yolo.records) == 4 and sum(len(r.boxes) for r in yolo.records) == 34  # the crowd region left out


def test_shapes_to_yolo_to_coco_through_the_yolo_reader(small_shapes, tmp_path):
    yolo = _yolo_round_trip(load_dataset("shapes", "test"), tmp_path, ["--from", "shapes"], role="test")
    assert len(yolo.records) == 8 and yolo.class_names == ["circle", "square", "triangle", "star", "hexagon"]


def test_shapes_round_trip_exactly_through_voc_and_yolo(small_shapes, tmp_path):
    _convert("--from", "shapes", "--to", "voc", tmp_path / "voc")
    spec = yaml.safe_load((tmp_path / "voc" / "dataset.yaml").read_text())
    assert spec["train"] == {"split": "train", "masks": True} and spec["val"] == {"split": "val", "masks": True}
    for role in ("train", "test"):
        source, voc = load_dataset("shapes", role), load_dataset_file(tmp_path / "voc" / "dataset.yaml", role)
        assert len(voc.records) == len(source.records) == (24 if role == "train" else 8)
        for a, b in zip(source.records, voc.records):
            assert np.array_equal(b.boxes, np.floor(a.boxes.astype(np.float64) + 0.5))
            for s, t in zip(a.segmentations, b.segmentations):  # visible masks do not overlap: exact
                assert np.array_equal(decode(s, a.height, a.width), decode(t, b.height, b.width))
    _convert("--from", "shapes", "--to", "yolo", tmp_path / "yolo")
    for split, role in (("train", "train"), ("val", "test")):
        source = load_dataset("shapes", role)
        for record in source.records:
            objects = _yolo_objects(tmp_path / "yolo", split, record, Path(record.file_name).stem)
            assert len(objects) == len(record.boxes)
            for (_, polygon), segmentation in zip(objects, record.segmentations):  # RLE -> traced polygon
                back = _fill(polygon.tolist(), record.height, record.width)
                assert np.array_equal(back, decode(segmentation, record.height, record.width))
            for (label, _), expected in zip(objects, record.labels):
                assert label == expected - 1
    _convert("--from", "shapes", "--to", "yolo", tmp_path / "boxes", "--no-masks")
    _check_yolo_boxes(tmp_path / "boxes", "val", load_dataset("shapes", "test").records)


def test_masks_with_holes_and_parts_trace_exactly():
    mask = np.zeros((40, 50), np.uint8)
    mask[5:30, 5:30] = 1
    mask[10:20, 12:22] = 0   # a hole
    mask[14:16, 15:17] = 1   # an island in the hole
    mask[33:38, 40:49] = 1   # a second part
    mask[0, 49] = 1          # one pixel in a corner
    polygon = mask_polygon(mask)
    back = _fill(polygon, 40, 50)
    assert np.array_equal(back, mask)
    rounded = (np.round(np.array(polygon).reshape(-1, 2) / [50, 40], 6) * [50, 40]).reshape(-1).tolist()
    assert np.array_equal(_fill(rounded, 40, 50), mask)
    assert mask_polygon(np.zeros((4, 4), np.uint8)) == []


def test_coco_boxes_read_back_bit_for_bit(tmp_path):
    """x, y, w, h written so that the reader's float32(x + w) is the record's x2, for any float32 box."""
    from detection.data.coco_writer import coco_json
    from detection.data.records import DetectionData
    rng = np.random.default_rng(0)
    corners = np.sort(rng.uniform(0, 2000, (500, 2, 2)).astype(np.float32), axis=1)
    boxes = corners.transpose(0, 2, 1).reshape(-1, 4)[:, [0, 2, 1, 3]]  # x1 y1 x2 y2
    record = ImageRecord(1, tmp_path / "a.jpg", 2000, 2000, boxes, np.ones(500, np.int64), np.zeros(500, bool))
    (tmp_path / "gt.json").write_text(json.dumps(coco_json(DetectionData("d", [record], ["c"], [1]), ["a.jpg"])))
    assert np.array_equal(load_coco(tmp_path / "gt.json", tmp_path).records[0].boxes, boxes)

def test_voc_boxes_are_whole_pixels():
    assert voc_box([0, 0, 10, 10], 20, 20) == [1, 1, 10, 10]  # pixels 1..10, 1-based inclusive
    assert voc_box([3.49, 3.5, 7.51, 7.49], 20, 20) == [4, 5, 8, 7]  # nearest boundary, halves up
    assert voc_box([5.2, 5.1, 5.4, 5.3], 20, 20) == [6, 6, 6, 6]  # under half a pixel: one pixel
    assert voc_box([19.8, 0, 20, 1], 20, 20) == [20, 1, 20, 1]  # at the right edge: the last pixel


def test_output_names_are_unique_by_stem_and_case():
    def record(name):
        return ImageRecord(0, Path("x") / name, 1, 1, np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                           np.zeros(0, bool))
    records = [record(n) for n in ("a.jpg", "A.png", "b c.jpg", "a.jpg", "a_2.jpg", "é.jpg")]
    assert output_names(records) == ["a.jpg", "A_2.png", "b c.jpg", "a_3.jpg", "a_2_2.jpg", "é.jpg"]
    assert output_names(records, spaces=False)[2] == "b_c.jpg"  # VOC split lists are whitespace-separated


def test_voc_source_by_format_and_path_and_refusals(small_shapes, tmp_path, capsys):
    classes = ["circle", "square", "triangle", "star", "hexagon"]
    _convert("--from", "voc", small_shapes / "shapes", "--split", "val", "--classes", *classes,
             "--to", "coco", tmp_path / "out")
    source = load_dataset("shapes", "test")
    back = load_dataset_file(tmp_path / "out" / "dataset.yaml")
    assert yaml.safe_load((tmp_path / "out" / "dataset.yaml").read_text())["images"] == "images/val"
    assert [r.image_id for r in back.records] == list(range(1, 9)) and back.category_ids == [1, 2, 3, 4, 5]
    for a, b in zip(source.records, back.records):  # VOC boxes are whole pixels: they stay as they are
        assert np.array_equal(a.boxes, b.boxes)
    capsys.readouterr()
    with pytest.raises(SystemExit):  # not empty
        _convert("--from", "voc", small_shapes / "shapes", "--split", "val", "--classes", *classes,
                 "--to", "coco", tmp_path / "out")
    assert capsys.readouterr().err.startswith(f"error: the output folder {tmp_path / 'out'} is not empty")
    _convert("--from", "voc", small_shapes / "shapes", "--split", "val", "--classes", *classes,
             "--to", "coco", tmp_path / "out", "--overwrite")
    for argv, message in [
        (["--from", "shapes", "--to", "labelme", tmp_path / "x"], "--to format 'labelme'"),
        (["--from", "voc", "a", "b", "--to", "coco", tmp_path / "x"], "--from takes a dataset"),
        (["--from", "shapes", "--images", "x", "--to", "coco", tmp_path / "x"],
         "--images go with --from FORMAT PATH"),
        (["--from", "shapes", "--split", "val", "--to", "coco", tmp_path / "x"], "--split names one split"),
        (["--from", "voc", small_shapes / "shapes", "--set", "image_ext", "--to", "coco", tmp_path / "x"],
         "--set image_ext: expected KEY=VALUE"),
        (["--from", "voc", small_shapes / "shapes", "--split", "val", "--set", "colour=red", "--to", "voc",
          tmp_path / "x"], "colour"),
        (["--from", "coco", DATA / "missing.json", "--images", DATA, "--to", "voc", tmp_path / "x"],
         f"annotation file {DATA / 'missing.json'} does not exist"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            _convert(*argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err, message


def test_a_yaml_of_one_section_converts_that_split(small_shapes, tmp_path):
    (tmp_path / "v.yaml").write_text(f"format: voc\nroot: {small_shapes / 'shapes'}\n"
                                     f"classes: [circle, square, triangle, star, hexagon]\nval: {{split: val}}\n")
    _convert("--from", tmp_path / "v.yaml", "--to", "yolo", tmp_path / "out")
    assert yaml.safe_load((tmp_path / "out" / "dataset.yaml").read_text()) == {
        "format": "yolo", "root": ".", "split": "val"}
    assert len(list((tmp_path / "out" / "labels" / "val").glob("*.txt"))) == 8
    _convert("--from", tmp_path / "v.yaml", "--split", "test", "--to", "voc", tmp_path / "voc")
    assert (tmp_path / "voc" / "ImageSets" / "Main" / "test.txt").read_text().split() == [
        f"val_{i:05d}" for i in range(8)]


def test_an_annotation_tools_file_converts_by_format_and_path(tmp_path):
    """CVAT for images 1.1 XML (polygons and a mask) -> YOLO and COCO, through the cvat reader."""
    photo = DATA / "coco_000000343934_160x120.jpg"
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a b.jpg").write_bytes(photo.read_bytes())  # a name with a space
    (tmp_path / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
        '  <meta><task><labels><label><name>cat</name></label><label><name>dog</name></label></labels></task>'
        '</meta>\n  <image id="0" name="a b.jpg" width="160" height="120">\n'
        '    <polygon label="dog" occluded="0" points="10.5,10;60,12.25;30,50" z_order="0"/>\n'
        '    <mask label="cat" occluded="0" rle="1, 2, 1, 4, 4" left="100" top="80" width="4" height="3" '
        'z_order="0"/>\n  </image>\n</annotations>\n')
    source = load_dataset_file(_yaml(tmp_path, "format: cvat\nannotations: annotations.xml\nimages: photos\n"))
    _convert("--from", "cvat", tmp_path / "annotations.xml", "--images", tmp_path / "photos",
             "--to", "yolo", tmp_path / "yolo")
    lines = (tmp_path / "yolo" / "labels" / "train" / "a b.txt").read_text().splitlines()
    assert lines[0] == "1 0.065625 0.083333 0.375000 0.102083 0.187500 0.416667"  # the polygon, normalised
    cls, *values = lines[1].split()
    traced = (np.array(values, np.float64).reshape(-1, 2) * [160, 120]).reshape(-1).tolist()
    assert cls == "0" and np.array_equal(_fill(traced, 120, 160), decode(source.records[0].segmentations[1], 120, 160))
    _convert("--from", "cvat", tmp_path / "annotations.xml", "--images", tmp_path / "photos",
             "--to", "coco", tmp_path / "coco")
    back = load_dataset_file(tmp_path / "coco" / "dataset.yaml")
    assert back.class_names == ["cat", "dog"] and Path(back.records[0].file_name).name == "a b.jpg"
    assert np.array_equal(back.records[0].boxes, source.records[0].boxes)
    assert back.records[0].segmentations[0] == source.records[0].segmentations[0] == [[10.5, 10, 60, 12.25, 30, 50]]


def _yaml(folder, text):
    (folder / "d.yaml").write_text(text)
    return folder / "d.yaml"


def test_missing_image_and_mixed_extensions_are_named(tmp_path, capsys):
    gt = json.loads(SAMPLE.read_text())
    gt["images"][0]["file_name"] = "nowhere.jpg"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(SystemExit):
        _convert("--from", "coco", tmp_path / "gt.json", "--images", DATA, "--to", "yolo", tmp_path / "a")
    assert f"image file {DATA / 'nowhere.jpg'} does not exist (1 of 4 are missing)" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # refused before anything is written
    for image in gt["images"]:  # the first as .png: VOC trees have one image extension
        (tmp_path / image["file_name"]).write_bytes((DATA / image["file_name"].replace("nowhere", "coco_000000128372")).read_bytes())
    gt["images"][0]["file_name"] = "nowhere.png"
    (tmp_path / "nowhere.png").write_bytes((DATA / "coco_000000128372.jpg").read_bytes())
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(SystemExit):
        _convert("--from", "coco", tmp_path / "gt.json", "--images", tmp_path, "--to", "voc", tmp_path / "b")
    assert "the images have several extensions (.jpg, .png) and a VOC tree has one" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before anything is written
    _convert("--from", "coco", tmp_path / "gt.json", "--images", tmp_path, "--to", "coco", tmp_path / "c")
    assert (tmp_path / "c" / "images" / "train" / "nowhere.png").is_file()


@pytest.mark.slow
def test_converted_voc_trains_mask_rcnn_with_repeat_factors_and_evaluates(small_shapes, tmp_path, monkeypatch,
                                                                          capsys):
    """The converted tree's dataset.yaml through train_det (2 iterations, masks, data.sampler: repeat_factor)
    and eval_coco (boxes and masks)."""
    from detection.cli import eval_coco, train_det
    _convert("--from", "shapes", "--to", "voc", tmp_path / "voc")
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {min_size: 96, max_size: 128, rpn_post_nms_top_n_test: 30, box_representation_size: 32,"
                      " box_score_thresh: 0.0}\nsolver: {ims_per_batch: 2, base_lr: 0.001, warmup_iters: 1}\n"
                      "data: {sampler: repeat_factor, repeat_threshold: 0.6}\n")
    out = tmp_path / "run"
    argv = ["--backbone", "resnet18", "--dataset", tmp_path / "voc" / "dataset.yaml", "--mask", "--config", config,
            "--max-iter", 2, "--pretrained", "none", "--output", out]
    monkeypatch.setattr("sys.argv", ["tools/train_det.py", *map(str, argv)])
    train_det.main([str(a) for a in argv])
    assert "on dataset_train (24 images, 5 classes)" in capsys.readouterr().out
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"]["sampler"] == "repeat_factor" and saved["data"]["repeat_threshold"] == 0.6
    eval_coco.main(["--checkpoint", str(out / "model_final.pth")])
    result = json.loads((out / "model_final.dataset_val.eval_coco.json").read_text())
    assert {"bbox", "segm"} <= set(result)
