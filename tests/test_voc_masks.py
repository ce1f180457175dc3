"""VOC instance masks (masks: true): SegmentationObject/ + SegmentationClass/ PNGs paired with the XML objects,
on the real VOC 2007_000063 (tests/data/voc_masks, tests/data/README.md) and variants of it."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from pycocotools import mask as mask_util

from backbones.errors import UserError
from detection.data.catalog import load_dataset_file
from detection.data.coco_format import to_coco_ground_truth
from detection.data.dataset import DetectionDataset
from detection.data.voc_format import VOC_CLASSES, load_voc
from detection.evaluation.dataset_eval import has_ground_truth_masks
from format_training import run_tool, train_and_evaluate

SAMPLE = Path(__file__).resolve().parent / "data" / "voc_masks"
STEM = "2007_000063"


def _png(folder, root=SAMPLE):
    return np.array(Image.open(root / folder / f"{STEM}.png"))


def test_the_real_sample_pairs_instance_k_with_the_kth_xml_object():
    data = load_voc(SAMPLE, "sample", masks=True)
    record, = data.records
    assert data.problems.details == [] and data.problems.mask_problems == 0
    assert [VOC_CLASSES[label - 1] for label in record.labels] == ["dog", "chair"]  # the XML's order
    assert record.boxes.tolist() == [[122, 114, 379, 275], [74, 0, 428, 375]]     # the XML boxes, kept
    assert record.ignore.tolist() == [False, False] and len(record.segmentations) == 2
    objects, classes = _png("SegmentationObject"), _png("SegmentationClass")
    assert Image.open(SAMPLE / "SegmentationObject" / f"{STEM}.png").mode == "P"
    for k, segmentation in enumerate(record.segmentations):
        mask = mask_util.decode(segmentation).astype(bool)
        assert np.array_equal(mask, objects == k + 1)       # exact; the 255 boundary band is in no mask
        assert set(np.unique(classes[mask])) == {[12, 9][k]}  # dog is VOC index 12, chair 9
        x, y, w, h = mask_util.toBbox(segmentation).tolist()
        assert np.abs(np.array([x, y, x + w, y + h]) - record.boxes[k]).max() <= 6  # within a few pixels
    assert [int(mask_util.area(s)) for s in record.segmentations] == [27632, 78930]
    # the boundary band exists in the files and belongs to neither object
    assert (objects == 255).sum() == 8714


def test_without_masks_the_same_image_keeps_boxes_only():
    data = load_voc(SAMPLE, "sample")
    assert data.records[0].segmentations is None and data.records[0].boxes.shape == (2, 4)
    assert not has_ground_truth_masks(DetectionDataset(data))
    masked = DetectionDataset(load_voc(SAMPLE, "sample", masks=True))
    assert has_ground_truth_masks(masked)
    coco, _ = to_coco_ground_truth(masked.data)
    assert [a["area"] for a in coco.dataset["annotations"]] == [27632.0, 78930.0]  # mask areas, as in COCO


def test_a_yaml_file_selects_the_segmentation_list(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "VOC")
    (tmp_path / "VOC" / "ImageSets" / "Main" / "sample.txt").write_text(f"{STEM}\n2007_000032\n")  # boxes-only list
    (tmp_path / "d.yaml").write_text("format: voc\nroot: VOC\nsplit: sample\nmasks: true\n")
    data = load_dataset_file(tmp_path / "d.yaml")
    assert [r.image_id for r in data.records] == [STEM] and len(data.records[0].segmentations) == 2
    (tmp_path / "d.yaml").write_text("format: voc\nroot: VOC\nsplit: sample\nmasks: 1\n")
    with pytest.raises(UserError, match=r"d.yaml: masks must be true .* or false, got 1"):
        load_dataset_file(tmp_path / "d.yaml")


def _variant(tmp_path, objects=None, classes=None, xml=None):
    """The sample tree in ``tmp_path`` with its instance or class PNG values, or XML text, replaced."""
    root = tmp_path / "VOC"
    shutil.copytree(SAMPLE, root)
    for folder, values in (("SegmentationObject", objects), ("SegmentationClass", classes)):
        if values is not None:
            original = Image.open(SAMPLE / folder / f"{STEM}.png")
            image = Image.fromarray(values.astype(np.uint8), "P")
            image.putpalette(original.getpalette())
            image.save(root / folder / f"{STEM}.png")
    if xml is not None:
        (root / "Annotations" / f"{STEM}.xml").write_text(xml((SAMPLE / "Annotations" / f"{STEM}.xml").read_text()))
    return root


def test_a_class_under_an_instance_other_than_its_xml_class_is_a_named_problem(tmp_path):
    classes = _png("SegmentationClass")
    classes[classes == 12] = 8  # the dog's pixels drawn as cat
    root = _variant(tmp_path, classes=classes)
    data = load_voc(root, "sample", masks=True)
    assert data.problems.mask_problems == 1 and data.records[0].labels.tolist() == [12, 9]
    assert data.problems.details == [
        f"mask_problems: object index 0 (0-based) of {root / 'Annotations' / (STEM + '.xml')} ('dog') is 'cat' in "
        f"{root / 'SegmentationClass' / (STEM + '.png')} (the majority under its instance 1 in "
        f"{root / 'SegmentationObject' / (STEM + '.png')}); the XML class is kept"]


def test_swapped_xml_objects_show_as_class_mismatches(tmp_path):
    def swap(text):
        dog, chair = text.index("<object>"), text.rindex("<object>")
        end = text.rindex("</annotation>")
        return text[:dog] + text[chair:end] + text[dog:chair] + text[end:]
    data = load_voc(_variant(tmp_path, xml=swap), "sample", masks=True)
    assert data.records[0].labels.tolist() == [9, 12] and data.problems.mask_problems == 2


def test_an_object_without_pixels_is_kept_for_evaluation_only_and_an_extra_instance_is_named(tmp_path):
    objects = _png("SegmentationObject")
    objects[objects == 1] = 3  # the dog's instance renumbered: object 1 has no pixels, instance 3 no object
    data = load_voc(_variant(tmp_path, objects=objects), "sample", masks=True)
    record = data.records[0]
    assert record.ignore.tolist() == [True, False] and mask_util.area(record.segmentations[0]) == 0
    assert data.problems.mask_problems == 2
    assert "instance 3 has no <object> in" in data.problems.details[0]
    assert "object index 0 (0-based)" in data.problems.details[1] and "has no pixels" in data.problems.details[1]


def test_bad_segmentation_pngs_are_named(tmp_path):
    root = _variant(tmp_path, objects=_png("SegmentationObject")[:, :499])
    with pytest.raises(UserError, match=r"SegmentationObject/2007_000063.png is 499x375 pixels \(width x height\) "
                                        r"but .*2007_000063.xml gives the image size 500x375"):
        load_voc(root, "sample", masks=True)
    (root / "SegmentationObject" / f"{STEM}.png").unlink()
    with pytest.raises(UserError, match=r"SegmentationObject/2007_000063.png does not exist: the images of "
                                        r"ImageSets/Segmentation/ need"):
        load_voc(root, "sample", masks=True)
    (root / "ImageSets" / "Segmentation" / "sample.txt").unlink()
    with pytest.raises(UserError, match=r"VOC split list .*ImageSets/Segmentation/sample.txt does not exist"):
        load_voc(root, "sample", masks=True)


@pytest.mark.slow
def test_mask_rcnn_trains_and_evaluates_on_voc_instance_masks(tmp_path, monkeypatch, capsys):
    """The real image and its mirror image (the XML boxes and both PNGs mirrored too)."""
    root = tmp_path / "VOC"
    shutil.copytree(SAMPLE, root)
    mirrored = f"{STEM}_flip"
    ImageOps.mirror(Image.open(root / "JPEGImages" / f"{STEM}.jpg")).save(root / "JPEGImages" / f"{mirrored}.jpg")
    for folder in ("SegmentationObject", "SegmentationClass"):
        ImageOps.mirror(Image.open(root / folder / f"{STEM}.png")).save(root / folder / f"{mirrored}.png")
    xml = (root / "Annotations" / f"{STEM}.xml").read_text()
    for xmin, xmax in (("123", "379"), ("75", "428")):  # VOC's 1-based inclusive columns, mirrored: x' = 501 - x
        xml = xml.replace(f"<xmin>{xmin}</xmin>", f"<xmin>{501 - int(xmax)}</xmin>", 1).replace(
            f"<xmax>{xmax}</xmax>", f"<xmax>{501 - int(xmin)}</xmax>", 1)
    (root / "Annotations" / f"{mirrored}.xml").write_text(xml)
    (root / "ImageSets" / "Segmentation" / "sample.txt").write_text(f"{STEM}\n{mirrored}\n")
    (tmp_path / "voc.yaml").write_text("format: voc\nroot: VOC\nsplit: sample\nmasks: true\n")
    flipped = load_dataset_file(tmp_path / "voc.yaml").records[1]
    assert flipped.boxes.tolist() == [[121, 114, 378, 275], [72, 0, 426, 375]]
    printed, result = train_and_evaluate(tmp_path, tmp_path / "voc.yaml", monkeypatch, capsys, size=(64, 96),
                                         eval_dataset=True)
    assert "Mask R-CNN" in printed
    assert result["images"] == 2 and {"bbox", "segm"} <= set(result)


def test_check_dataset_reports_the_mask_problems(tmp_path, monkeypatch, capsys):
    classes = _png("SegmentationClass")
    classes[classes == 12] = 8  # the dog's pixels drawn as cat
    _variant(tmp_path, classes=classes)
    (tmp_path / "v.yaml").write_text("format: voc\nroot: VOC\nsplit: sample\nmasks: true\n")
    run_tool("check_dataset", tmp_path / "v.yaml", monkeypatch=monkeypatch)  # problems it can train with: no exit
    out = capsys.readouterr().out
    assert "0 images without objects, 1 instance masks disagreeing with their class or object" in out
    assert "mask_problems: object index 0 (0-based) of " in out and "('dog') is 'cat' in " in out
