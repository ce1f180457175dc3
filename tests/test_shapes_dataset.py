"""Tests for the synthetic ``shapes`` dataset generator (detection/data/shapes.py)."""

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detection.data import shapes
from detection.data.shapes import (
    CLASSES,
    LARGE_AREA,
    SMALL_AREA,
    SPLITS,
    ShapesConfig,
    ensure_generated,
    generate,
    image_stem,
    render_sample,
)

# pycocotools' decode trips a NumPy 2 deprecation warning that is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# Non-square so that a width/height mix-up anywhere shows up.
SMALL = ShapesConfig(seed=3, num_train=40, num_val=10, image_size=(160, 208))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("tree") / "shapes", SMALL)


def _coco(root, split):
    return json.loads((Path(root) / f"instances_{split}.json").read_text())


def _files(root):
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tight_coco_box(mask):
    rows, cols = np.nonzero(mask)
    return [float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1), float(rows.max() - rows.min() + 1)]


def _decode(ann):
    return mask_utils.decode({"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()})


def test_same_seed_gives_byte_identical_tree(tree, tmp_path):
    first, second = _files(tree), _files(generate(tmp_path / "again", SMALL))
    assert sorted(first) == sorted(second)
    assert any(name.endswith(".xml") for name in first) and "instances_train.json" in first
    for name in first:
        assert first[name] == second[name], name


def test_different_seed_gives_different_data(tree, tmp_path):
    other = generate(tmp_path / "other", dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    for name in ("instances_train.json", "instances_val.json", "Annotations/train_00000.xml"):
        assert (tree / name).read_bytes() != (other / name).read_bytes(), name
    assert (tree / "JPEGImages/train_00000.jpg").read_bytes() != (other / "JPEGImages/train_00000.jpg").read_bytes()


def test_images_depend_only_on_seed_split_and_index():
    # Per-image streams: changing the split sizes must not change image 7.
    a = render_sample(SMALL, "train", 7)
    b = render_sample(dataclasses.replace(SMALL, num_train=3, num_val=500), "train", 7)
    assert np.array_equal(a.image, b.image) and a.labels == b.labels
    assert not np.array_equal(a.image, render_sample(SMALL, "val", 7).image)


@pytest.mark.parametrize("split", SPLITS)
def test_coco_boxes_and_areas_match_visible_masks(tree, split):
    coco = _coco(tree, split)
    h, w = SMALL.image_size
    assert coco["categories"] == [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES)]
    assert [im["id"] for im in coco["images"]] == list(range(1, SMALL.num_images(split) + 1))
    assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
    for ann in coco["annotations"]:
        mask = _decode(ann)
        assert mask.shape == (h, w)
        assert ann["bbox"] == _tight_coco_box(mask)
        assert mask_utils.toBbox(ann["segmentation"]).tolist() == ann["bbox"]  # same convention as pycocotools
        assert ann["area"] == mask.sum()
        assert ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= len(CLASSES)
        assert mask.sum() >= shapes.MIN_VISIBLE_PIXELS


def test_visible_masks_of_an_image_do_not_overlap(tree):
    coco = _coco(tree, "train")
    for image in coco["images"]:
        masks = [_decode(a) for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert 1 <= len(masks) <= SMALL.max_objects
        assert np.sum(masks, axis=0).max() == 1


@pytest.mark.parametrize("split", SPLITS)
def test_voc_xml_boxes_equal_converted_coco_boxes(tree, split):
    coco = _coco(tree, split)
    h, w = SMALL.image_size
    for image in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        xml = ET.parse(tree / "Annotations" / (Path(image["file_name"]).stem + ".xml")).getroot()
        assert xml.findtext("filename") == image["file_name"]
        assert [xml.findtext(f"size/{k}") for k in ("width", "height", "depth")] == [str(w), str(h), "3"]
        assert xml.findtext("segmented") == "0"
        objects = xml.findall("object")
        assert len(objects) == len(anns)
        for obj, ann in zip(objects, anns):
            x, y, bw, bh = ann["bbox"]
            expected = [int(x) + 1, int(y) + 1, int(x + bw), int(y + bh)]  # c0+1, r0+1, c1+1, r1+1
            assert [int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] == expected
            assert obj.findtext("name") == CLASSES[ann["category_id"] - 1]
            assert (obj.findtext("pose"), obj.findtext("truncated"), obj.findtext("difficult")) == ("Unspecified", "0", "0")


def test_image_sets_match_files(tree):
    stems = {}
    for split in SPLITS:
        listed = (tree / "ImageSets/Main" / f"{split}.txt").read_text().splitlines()
        assert listed == [image_stem(split, i) for i in range(SMALL.num_images(split))]
        assert [im["file_name"] for im in _coco(tree, split)["images"]] == [f"{s}.jpg" for s in listed]
        stems[split] = listed
    all_stems = set(stems["train"]) | set(stems["val"])
    assert {p.stem for p in (tree / "JPEGImages").glob("*.jpg")} == all_stems
    assert {p.stem for p in (tree / "Annotations").glob("*.xml")} == all_stems


def test_images_decode_to_configured_size(tree):
    h, w = SMALL.image_size
    for path in sorted((tree / "JPEGImages").glob("*.jpg")):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape == (h, w, 3), path
    assert all((im["width"], im["height"]) == (w, h) for im in _coco(tree, "train")["images"])


def test_all_classes_occur(tree):
    present = {a["category_id"] for split in SPLITS for a in _coco(tree, split)["annotations"]}
    assert present == set(range(1, len(CLASSES) + 1))


def test_default_size_mix_covers_all_coco_buckets(tmp_path):
    root = generate(tmp_path / "sizes", ShapesConfig(num_train=200, num_val=0))
    areas = np.array([a["area"] for a in _coco(root, "train")["annotations"]])
    fractions = [(areas < SMALL_AREA).mean(), ((areas >= SMALL_AREA) & (areas < LARGE_AREA)).mean(), (areas >= LARGE_AREA).mean()]
    assert min(fractions) >= 0.10, fractions
    assert _coco(root, "val")["images"] == [] and (root / "ImageSets/Main/val.txt").read_text() == ""


def test_occlusion_keeps_enough_of_every_object_visible():
    for index in range(60):
        sample = render_sample(SMALL, "train", index)
        for mask, full in zip(sample.masks, sample.full_areas):
            assert mask.sum() >= shapes.MIN_VISIBLE_PIXELS
            assert mask.sum() >= shapes.MIN_VISIBLE_FRACTION * full


def test_ground_truth_scores_perfect_in_cocoeval(tree):
    gt = COCO(str(tree / "instances_val.json"))
    detections = [{**a, "score": 1.0} for a in gt.dataset["annotations"]]
    for iou_type in ("bbox", "segm"):
        dets = gt.loadRes([{k: v for k, v in d.items() if k != "id"} for d in detections])
        evaluator = COCOeval(gt, dets, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        assert evaluator.stats[0] == pytest.approx(1.0), iou_type


def test_ensure_generated_reuses_matching_tree_and_rebuilds_on_change(tmp_path):
    config = ShapesConfig(seed=1, num_train=6, num_val=2)
    root = ensure_generated(tmp_path / "shapes", config)
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    assert ensure_generated(root, config) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps

    changed = ShapesConfig(seed=1, num_train=9, num_val=2)
    ensure_generated(root, changed)
    assert json.loads((root / shapes.CONFIG_FILE).read_text())["num_train"] == 9
    assert len((root / "ImageSets/Main/train.txt").read_text().splitlines()) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes"]  # no temp/old siblings left


def test_ensure_generated_rebuilds_incomplete_tree(tmp_path):
    root = tmp_path / "shapes"
    (root / "JPEGImages").mkdir(parents=True)  # e.g. a tree from an interrupted copy
    ensure_generated(root, ShapesConfig(num_train=3, num_val=1))
    assert (root / shapes.CONFIG_FILE).is_file() and len(list((root / "JPEGImages").iterdir())) == 4


def test_failed_generation_leaves_existing_tree_untouched(tmp_path, monkeypatch):
    config = ShapesConfig(num_train=4, num_val=1)
    root = generate(tmp_path / "shapes", config)
    before = _files(root)
    real_render = shapes.render_sample

    def failing_render(cfg, split, index):
        if index == 2:
            raise RuntimeError("boom")
        return real_render(cfg, split, index)

    monkeypatch.setattr(shapes, "render_sample", failing_render)
    with pytest.raises(RuntimeError, match="boom"):
        generate(root, ShapesConfig(seed=5, num_train=4, num_val=1))
    assert _files(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes"]


def test_object_count_respects_config():
    config = ShapesConfig(min_objects=1, max_objects=2, num_train=30)
    counts = [len(render_sample(config, "train", i).labels) for i in range(30)]
    assert min(counts) >= 1 and max(counts) <= 2


def test_config_validation_and_normalisation():
    assert ShapesConfig(image_size=[128, 96]).image_size == (128, 96)
    with pytest.raises(ValueError):
        ShapesConfig(min_objects=0)
    with pytest.raises(ValueError):
        ShapesConfig(min_objects=4, max_objects=3)
    with pytest.raises(ValueError):
        ShapesConfig(image_size=(16, 16))
