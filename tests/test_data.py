"""Loading COCO- and VOC-format data, custom dataset files, augmentation consistency, bad data."""
import json

import cv2
import numpy as np
import pytest
import torch

from backbones.errors import UnknownNameError, UserError
from detection.data.catalog import evaluation_split, load_dataset
from detection.data.coco_format import load_coco, to_coco_ground_truth
from detection.data.dataset import DetectionDataset
from detection.data.transforms import train_augmentation
from detection.evaluation.dataset_eval import coco_metrics, voc_metrics


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_pairs_and_generation_on_first_use(small_shapes):
    train, test = load_dataset("shapes", "train"), load_dataset("shapes", "test")
    assert (train.name, test.name) == ("shapes_train", "shapes_val")
    assert len(train.records) == 24 and len(test.records) == 8
    assert load_dataset("shapes_val").name == "shapes_val"


def test_evaluation_split_of_a_training_set():
    assert evaluation_split("shapes") == "shapes_val"
    assert evaluation_split("shapes_train") == "shapes_val"
    assert evaluation_split("coco_2017_train") == "coco_2017_val"
    assert evaluation_split("voc") == "voc_2007_test" and evaluation_split("voc_0712_trainval") == "voc_2007_test"


@pytest.mark.parametrize("name, missing", [
    ("coco_2017_val", "coco/annotations/instances_val2017.json"),
    ("coco_2014_minival", "coco/annotations/instances_minival2014.json"),
    ("voc_2007_test", "VOCdevkit/VOC2007"),
    ("voc", "VOCdevkit/VOC2007"),
])
def test_absent_data_names_the_missing_path(tmp_path, monkeypatch, name, missing):
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path))
    with pytest.raises(UserError, match="does not exist; see datasets/README.md") as err:
        load_dataset(name)
    assert str(tmp_path / missing) in str(err.value)


def test_unknown_dataset_name():
    with pytest.raises(UnknownNameError, match="unknown dataset 'shape'. Did you mean 'shapes'.*voc_07\\+\\+12"):
        load_dataset("shape")


def test_targets_match_the_annotations(small_shapes):
    data = load_dataset("shapes_train")
    dataset = DetectionDataset(data, with_masks=True)
    coco = json.loads((small_shapes / "shapes" / "instances_train.json").read_text())
    assert dataset.class_names == [c["name"] for c in coco["categories"]]
    image, target = dataset[0]
    anns = [a for a in coco["annotations"] if a["image_id"] == dataset.image_ids[0]]
    assert image.dtype == torch.uint8 and image.shape == (3, 192, 192)  # 8-bit: the detector's transform scales it
    assert target["boxes"].tolist() == [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
    assert target["labels"].tolist() == [a["category_id"] for a in anns]  # ids are already 1..5
    for box, mask in zip(target["boxes"].tolist(), target["masks"].numpy()):
        assert _tight_box(mask) == box


def test_flip_keeps_boxes_masks_and_image_consistent(small_shapes):
    data = load_dataset("shapes_train")
    plain = DetectionDataset(data, with_masks=True)
    flipped = DetectionDataset(data, augment=train_augmentation(hflip_prob=1.0), with_masks=True)
    for i in range(3):
        (img, tgt), (fimg, ftgt) = plain[i], flipped[i]
        assert torch.equal(fimg, img.flip(-1))
        assert torch.equal(ftgt["masks"], tgt["masks"].flip(-1))
        w = img.shape[-1]
        expected = tgt["boxes"][:, [2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) + torch.tensor([w, 0, w, 0])
        assert torch.allclose(ftgt["boxes"], expected)
        # albumentations round-trips boxes through normalised float32 coordinates (~1e-5 px)
        for box, mask in zip(ftgt["boxes"].tolist(), ftgt["masks"].numpy()):
            assert np.allclose(_tight_box(mask), box, atol=1e-3)


def _coco_file(tmp_path, annotations, images=None):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((50, 80, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((50, 80, 3), np.uint8))
    gt = {"images": images or [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 50},
                               {"id": 2, "file_name": "b.jpg", "width": 80, "height": 50}],
          "annotations": annotations,
          "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return path


def test_coco_bad_boxes_are_clipped_dropped_and_counted(tmp_path):
    path = _coco_file(tmp_path, [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [70, 40, 20, 20], "area": 1, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [10, 10, 0, 5], "area": 1, "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [5, 5, 10, 10], "area": 1, "iscrowd": 1},
    ])
    data = load_coco(path, tmp_path, "toy")
    assert data.class_names == ["dog", "cat"] and data.category_ids == [3, 7]  # category-id order
    a, b = data.records
    assert a.boxes.tolist() == [[70, 40, 80, 50], [5, 5, 15, 15]] and a.labels.tolist() == [2, 1]
    assert a.ignore.tolist() == [False, True]
    assert (data.problems.clipped_boxes, data.problems.dropped_boxes, data.problems.images_without_objects) == (1, 1, 1)
    assert any("annotation 2 of image 1: empty box" in line for line in data.problems.details)
    # crowd regions are not trained on
    assert DetectionDataset(data).annotations(1)["labels"].tolist() == [2]


def test_coco_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="annotation file .*nope.json does not exist"):
        load_coco(tmp_path / "nope.json", tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [,]}')
    with pytest.raises(UserError, match=r"broken.json is not valid COCO JSON: .*line 1 column 13"):
        load_coco(broken, tmp_path)
    path = _coco_file(tmp_path, [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5], "iscrowd": 0}])
    with pytest.raises(UserError, match=r"gt.json: annotations\[0\] \(id 1\): category_id 9 is not in the categories"):
        load_coco(path, tmp_path)


def test_corrupt_truncated_and_missing_images_are_named_or_skipped(tmp_path, capsys):
    path = _coco_file(tmp_path, [])
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    dataset = DetectionDataset(load_coco(path, tmp_path))
    with pytest.raises(UserError, match=r"cannot read image .*a.jpg \(missing or corrupt\)"):
        dataset[0]
    ok, encoded = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (50, 80, 3), dtype=np.uint8))
    (tmp_path / "b.jpg").write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(UserError, match=r"image .*b.jpg is truncated"):
        dataset[1]
    (tmp_path / "b.jpg").unlink()
    with pytest.raises(UserError, match=r"cannot read image .*b.jpg \(missing or corrupt\)"):
        dataset[1]
    (tmp_path / "b.jpg").write_bytes(encoded.tobytes())
    skipping = DetectionDataset(load_coco(path, tmp_path), skip_unreadable=True)
    image, target = skipping[0]  # a.jpg is skipped: b.jpg comes instead
    assert target["image_id"] == 2 and skipping.skipped == {1}
    assert "warning: skipping cannot read image" in capsys.readouterr().err


def _yaml(tmp_path, text):
    path = tmp_path / "mydata.yaml"
    path.write_text(text)
    return path


def test_custom_coco_and_voc_datasets_from_yaml(small_shapes, tmp_path):
    root = small_shapes / "shapes"
    coco = load_dataset(str(_yaml(tmp_path, f"format: coco\nannotations: {root}/instances_val.json\n"
                                            f"images: {root}/JPEGImages\n")), "test")
    assert coco.name == "mydata_val" and len(coco.records) == 8
    (tmp_path / "data").symlink_to(root)
    both = _yaml(tmp_path, "format: voc\nroot: data\nclasses: [circle, square, triangle, star, hexagon]\n"
                           "train: {split: train}\nval: {split: val, name: shapes_voc_val}\n")
    voc_train, voc_val = load_dataset(str(both), "train"), load_dataset(str(both), "test")
    assert (len(voc_train.records), voc_val.name) == (24, "shapes_voc_val")
    # the VOC tree and the COCO JSON of shapes describe the same boxes
    by_stem = {r.file_name.stem: r for r in voc_val.records}
    for rec in coco.records:
        assert np.array_equal(by_stem[rec.file_name.stem].boxes, rec.boxes)
        assert np.array_equal(by_stem[rec.file_name.stem].labels, rec.labels)


@pytest.mark.parametrize("text, message", [
    ("format: yolov5_pytorch\n", "unknown format in .*mydata.yaml .yolov5_pytorch."),
    ("format: coco\nannotations: a.json\nimage: x\n", "unknown key in .*mydata.yaml 'image'. Did you mean 'images'"),
    ("format: voc\nroot: x\n", "format voc needs root, split; missing split"),
    ("format: voc\nroot: x\nsplit: train\n", r"x/ImageSets/Main/train.txt does not exist"),
    ("format: coco\nannotations: a.json\nimages: .\nclasses: cat\n", "classes must be a list of names"),
    ("train: {format: coco, annotations: a.json, images: .}\n", "has no 'val:' section, needed to test on it"),
])
def test_bad_dataset_files(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_dataset(str(_yaml(tmp_path, text)), "test")


def test_voc_data_has_no_masks_and_gets_coco_style_evaluation(small_shapes, tmp_path):
    (tmp_path / "data").symlink_to(small_shapes / "shapes")
    data = load_dataset(str(_yaml(tmp_path, "format: voc\nroot: data\nsplit: val\n"
                                            "classes: [circle, square, triangle, star, hexagon]\n")), "test")
    with pytest.raises(UserError, match="has no instance masks; train without --mask"):
        DetectionDataset(data, with_masks=True)
    dataset = DetectionDataset(data)
    perfect = {r.image_id: {"boxes": r.boxes, "scores": np.ones(len(r.boxes)), "labels": r.labels}
               for r in data.records}
    assert coco_metrics(dataset, perfect)["bbox"]["AP"] == pytest.approx(1.0)
    assert voc_metrics(dataset, perfect)["mAP"] == pytest.approx(1.0)
    gt, ids = to_coco_ground_truth(data)
    assert sorted(ids.values()) == list(range(8)) and len(gt.anns) == sum(len(r.boxes) for r in data.records)


def test_missing_files_names_what_a_split_lacks_without_loading_it(tmp_path, monkeypatch):
    from detection.data.catalog import missing_files
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path))
    (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "trainval.txt").write_text("000005\n")
    voc = tmp_path / "VOCdevkit"
    # 07++12: 2007 trainval is there, 2007 test's list and all of 2012 are not (the folder covers its files)
    assert missing_files("voc_07++12") == [voc / "VOC2007" / "ImageSets" / "Main" / "test.txt", voc / "VOC2012"]
    assert missing_files("voc", "train") == [voc / "VOC2012"]
    assert missing_files("coco", "test") == [tmp_path / "coco" / "annotations" / "instances_val2017.json",
                                             tmp_path / "coco" / "val2017"]
    assert missing_files("shapes") == []  # generated on first use
    with pytest.raises(UserError, match="Did you mean 'coco'"):
        missing_files("cocoo")
