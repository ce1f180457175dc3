"""format: masks: an image folder and per-image instance-id PNGs (the Penn-Fudan layout: PNGImages/ + PedMasks/)."""

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from backbones.errors import UserError
from detection.data.catalog import load_dataset_file
from detection.data.dataset import DetectionDataset
from detection.data.coco_format import to_coco_ground_truth
from detection.data.masks_format import encode, load_masks
from detection.evaluation.dataset_eval import coco_metrics, has_ground_truth_masks
from format_training import train_and_evaluate

W, H = 64, 48


def _shapes():
    """Known instance masks of two images: {stem: [(id, binary mask)]}."""
    a1 = np.zeros((H, W), bool)
    a1[5:15, 3:13] = True                       # a rectangle: columns 3..12, rows 5..14
    a2 = np.zeros((H, W), bool)
    a2[20:40, 30:34] = True                     # an L shape: a bar and a foot
    a2[36:40, 30:50] = True
    b1 = np.zeros((H, W), bool)
    yy, xx = np.mgrid[:H, :W]
    b1[(yy - 24) ** 2 + (xx - 40) ** 2 <= 81] = True  # a disc of radius 9 around (40, 24)
    b2 = np.zeros((H, W), bool)
    b2[0:3, 60:64] = True                       # touching the top-right corner
    return {"FudanPed00001": [(1, a1), (2, a2)], "FudanPed00002": [(1, b1), (300, b2)]}


def _id_png(instances, dtype=np.uint8):
    values = np.zeros((H, W), dtype)
    for value, mask in instances:
        values[mask] = value
    return values


def _penn_fudan(root, suffix="_mask"):
    """PNGImages/ + PedMasks/ as Penn-Fudan ships them: a palette ("P") PNG of instance ids, whose colours are
    not the ids; the second image's mask is 16-bit (its instance 300 does not fit 8 bits)."""
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    rng = np.random.default_rng(0)
    shapes = _shapes()
    for stem, instances in shapes.items():
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(root / "PNGImages" / f"{stem}.png")
    palette = Image.fromarray(_id_png(shapes["FudanPed00001"]), "L").convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [7] * (256 * 3 - 9))  # index 1 is red, 2 green
    palette.save(root / "PedMasks" / f"FudanPed00001{suffix}.png")
    Image.fromarray(_id_png(shapes["FudanPed00002"], np.uint16)).save(root / "PedMasks" / f"FudanPed00002{suffix}.png")
    return shapes


def _decoded(segmentation):
    return mask_util.decode(segmentation).astype(bool)


def test_instance_ids_become_exact_rle_masks_and_tight_boxes(tmp_path):
    shapes = _penn_fudan(tmp_path)
    assert Image.open(tmp_path / "PedMasks" / "FudanPed00001_mask.png").mode == "P"
    assert Image.open(tmp_path / "PedMasks" / "FudanPed00002_mask.png").mode == "I;16"
    data = load_masks(tmp_path / "PNGImages", tmp_path / "PedMasks", ["person"], mask_suffix="_mask", name="pf")
    assert data.name == "pf" and data.class_names == ["person"] and data.category_ids == [1]
    assert [r.image_id for r in data.records] == ["FudanPed00001", "FudanPed00002"]
    first, second = data.records
    assert (first.width, first.height) == (W, H) and first.file_name == tmp_path / "PNGImages" / "FudanPed00001.png"
    # tight bounds, 0-based continuous: x2 = last column + 1
    assert first.boxes.tolist() == [[3, 5, 13, 15], [30, 20, 50, 40]]
    assert second.boxes.tolist() == [[31, 15, 50, 34], [60, 0, 64, 3]]
    for record in data.records:
        expected = shapes[record.image_id]
        assert record.labels.tolist() == [1, 1] and record.ignore.tolist() == [False, False]
        assert len(record.segmentations) == 2
        for (_, mask), segmentation in zip(expected, record.segmentations):
            assert isinstance(segmentation["counts"], str) and segmentation["size"] == [H, W]
            assert np.array_equal(_decoded(segmentation), mask)  # exact
    assert data.problems.details == []
    # the training dataset decodes them back to the same masks
    target = DetectionDataset(data, with_masks=True).annotations("FudanPed00002")
    assert target["masks"].shape == (2, H, W) and np.array_equal(target["masks"][0].astype(bool), shapes[
        "FudanPed00002"][0][1])


def test_the_masks_are_the_ground_truth_of_coco_mask_evaluation(tmp_path):
    shapes = _penn_fudan(tmp_path)
    dataset = DetectionDataset(load_masks(tmp_path / "PNGImages", tmp_path / "PedMasks", ["person"],
                                          mask_suffix="_mask"))
    assert has_ground_truth_masks(dataset)
    coco, coco_id = to_coco_ground_truth(dataset.data)
    areas = [a["area"] for a in coco.dataset["annotations"]]
    assert areas == [float(m.sum()) for stem in ("FudanPed00001", "FudanPed00002") for _, m in shapes[stem]]
    perfect = {r.image_id: {"boxes": r.boxes, "labels": r.labels, "scores": np.ones(len(r.boxes)),
                            "rles": r.segmentations} for r in dataset.records}
    results = coco_metrics(dataset, perfect, ("bbox", "segm"))
    assert results["bbox"]["AP"] == pytest.approx(1.0) and results["segm"]["AP"] == pytest.approx(1.0)
    shifted = {i: {**p, "rles": [encode(np.roll(mask_util.decode(s), 1, axis=1)) for s in p["rles"]]}
               for i, p in perfect.items()}
    assert coco_metrics(dataset, shifted, ("segm",))["segm"]["AP"] < 0.9  # masks one column off are scored


def test_a_yaml_file_reads_penn_fudan_with_its_mask_suffix(tmp_path):
    _penn_fudan(tmp_path / "PennFudanPed")
    (tmp_path / "pf.yaml").write_text("format: masks\nimages: PennFudanPed/PNGImages\nmasks: PennFudanPed/PedMasks\n"
                                      "mask_suffix: _mask\nclasses: [pedestrian]\n")
    data = load_dataset_file(tmp_path / "pf.yaml")
    assert data.name == "pf_train" and data.class_names == ["pedestrian"]
    assert [len(r.boxes) for r in data.records] == [2, 2]
    (tmp_path / "pf.yaml").write_text("format: masks\nimages: PennFudanPed/PNGImages\nmasks: PennFudanPed/PedMasks\n"
                                      "classes: [pedestrian]\n")
    with pytest.raises(UserError, match=r"image .*FudanPed00001.png has no mask: .*PedMasks/FudanPed00001.png does "
                                        r"not exist"):
        load_dataset_file(tmp_path / "pf.yaml")


def _classes_and_void(root):
    """One image, instance ids with a 255 boundary ring around instance 1, and a class-id PNG in which
    instance 2 is mostly class 1 with a few pixels of class 2."""
    for folder in ("images", "masks", "classes"):
        (root / folder).mkdir()
    Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(root / "images" / "a.jpg")
    instances = np.zeros((H, W), np.uint8)
    classes = np.zeros((H, W), np.uint8)
    instances[9:21, 9:21] = 255          # boundary ring, as VOC draws it
    instances[10:20, 10:20] = 1
    classes[9:21, 9:21] = 255
    classes[10:20, 10:20] = 2
    instances[30:40, 40:60] = 2          # 200 pixels: 190 of class 1, 10 of class 2
    classes[30:40, 40:60] = 1
    classes[30, 40:50] = 2
    Image.fromarray(instances).save(root / "masks" / "a.png")
    Image.fromarray(classes).save(root / "classes" / "a.png")
    return instances


def test_class_id_pngs_give_each_object_its_majority_class_and_void_is_no_object(tmp_path):
    instances = _classes_and_void(tmp_path)
    data = load_masks(tmp_path / "images", tmp_path / "masks", ["person", "bike"], class_masks=tmp_path / "classes",
                      void=255)
    record, = data.records
    assert record.labels.tolist() == [2, 1] and record.boxes.tolist() == [[10, 10, 20, 20], [40, 30, 60, 40]]
    assert np.array_equal(_decoded(record.segmentations[0]), instances == 1)  # the ring is not part of it
    assert data.problems.mask_problems == 1
    assert data.problems.details == [f"mask_problems: {tmp_path / 'masks' / 'a.png'}: object 2 covers class ids "
                                     f"[1, 2] in {tmp_path / 'classes' / 'a.png'}; it is given the majority, 1"]
    # without void: 255 is a class id (out of range) and an object id (the ring)
    with pytest.raises(UserError, match=r"class mask .*a.png has class id 255 but classes lists 2 names"):
        load_masks(tmp_path / "images", tmp_path / "masks", ["person", "bike"], class_masks=tmp_path / "classes")
    data = load_masks(tmp_path / "images", tmp_path / "masks", ["person"])
    assert [len(r.boxes) for r in data.records] == [3]  # 1, 2 and the 255 ring


def test_an_object_over_background_only_in_the_class_png_is_dropped_and_counted(tmp_path):
    _classes_and_void(tmp_path)
    classes = np.array(Image.open(tmp_path / "classes" / "a.png"))
    classes[10:20, 10:20] = 0
    Image.fromarray(classes).save(tmp_path / "classes" / "a.png")
    data = load_masks(tmp_path / "images", tmp_path / "masks", ["person", "bike"], class_masks=tmp_path / "classes",
                      void=255)
    assert data.records[0].labels.tolist() == [1] and data.problems.dropped_boxes == 1
    assert "object 1 has no class in" in data.problems.details[0]


def test_an_all_background_mask_is_an_image_without_objects(tmp_path):
    _penn_fudan(tmp_path, suffix="")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "PedMasks" / "FudanPed00001.png")
    data = load_masks(tmp_path / "PNGImages", tmp_path / "PedMasks", ["person"])
    assert [len(r.boxes) for r in data.records] == [0, 2] and data.records[0].segmentations == []
    assert data.problems.images_without_objects == 1


def test_bad_masks_are_named(tmp_path):
    _penn_fudan(tmp_path, suffix="")
    images, masks = tmp_path / "PNGImages", tmp_path / "PedMasks"
    Image.fromarray(np.zeros((H, W + 2), np.uint8)).save(masks / "FudanPed00002.png")
    with pytest.raises(UserError, match=r"mask .*FudanPed00002.png is 66x48 pixels \(width x height\) but its image "
                                        r".*FudanPed00002.png is 64x48"):
        load_masks(images, masks, ["person"])
    Image.fromarray(np.tile(np.array([1, 2, 3], np.uint8), (H, W, 1))).save(masks / "FudanPed00002.png")
    with pytest.raises(UserError, match=r"mask .*FudanPed00002.png is a colour \(RGB\) image"):
        load_masks(images, masks, ["person"])
    (masks / "FudanPed00002.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"cannot read mask .*FudanPed00002.png"):
        load_masks(images, masks, ["person"])
    with pytest.raises(UserError, match=r"classes lists 2 names \(a, b\) but there is no class_masks folder"):
        load_masks(images, masks, ["a", "b"])
    with pytest.raises(UserError, match="the masks format needs classes"):
        load_masks(images, masks)
    with pytest.raises(UserError, match="images and masks are the same folder"):
        load_masks(images, images, ["person"])


def test_two_images_of_one_stem_would_share_a_mask(tmp_path):
    _penn_fudan(tmp_path, suffix="")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "PNGImages" / "FudanPed00001.jpg")
    with pytest.raises(UserError, match=r"2 images have the stem 'FudanPed00001' \(FudanPed00001.jpg, "
                                        r"FudanPed00001.png\)"):
        load_masks(tmp_path / "PNGImages", tmp_path / "PedMasks", ["person"])
    data = load_masks(tmp_path / "PNGImages", tmp_path / "PedMasks", ["person"], strict=False)
    assert data.problems.duplicate_ids == 1 and len(data.records) == 3


def test_yaml_keys_are_checked(tmp_path):
    _penn_fudan(tmp_path, suffix="")
    for extra, message in (("void: yes\n", "void must be a positive whole pixel value such as 255, got True"),
                           ("mask_suffix: 3\n", "mask_suffix must be text such as _mask, got 3"),
                           ("", "format masks needs classes")):
        classes = "" if not extra else "classes: [person]\n"
        (tmp_path / "d.yaml").write_text(f"format: masks\nimages: PNGImages\nmasks: PedMasks\n{classes}{extra}")
        with pytest.raises(UserError, match=f"d.yaml: {message}"):
            load_dataset_file(tmp_path / "d.yaml")


@pytest.mark.slow
def test_mask_rcnn_trains_and_evaluates_on_penn_fudan_style_data(tmp_path, monkeypatch, capsys):
    _penn_fudan(tmp_path / "pf")
    (tmp_path / "pf.yaml").write_text("format: masks\nimages: pf/PNGImages\nmasks: pf/PedMasks\nmask_suffix: _mask\n"
                                      "classes: [person]\n")
    printed, result = train_and_evaluate(tmp_path, tmp_path / "pf.yaml", monkeypatch, capsys, size=(64, 96),
                                         eval_dataset=True)
    assert "Mask R-CNN" in printed
    assert result["images"] == 2 and {"bbox", "segm"} <= set(result)


def test_a_yaml_file_with_class_masks_and_void(tmp_path):
    _classes_and_void(tmp_path)
    (tmp_path / "d.yaml").write_text("format: masks\nimages: images\nmasks: masks\nclass_masks: classes\nvoid: 255\n"
                                     "classes: [person, bike]\n")
    data = load_dataset_file(tmp_path / "d.yaml")
    assert data.class_names == ["person", "bike"] and data.records[0].labels.tolist() == [2, 1]
    assert data.problems.mask_problems == 1
