"""Instance masks made at the augmented image's size (detection/data/mask_raster.py) against the definition they
replace: decode at full size (decode_segmentation, pycocotools), then cv2.resize with nearest neighbour, then flip.
Real annotations: tests/data/coco_instances_sample.json (4 COCO val2017 photos, 35 objects: polygons, one in two
parts, a crowd region as uncompressed RLE; tests/data/README.md), besides synthetic ones."""
import json
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from backbones.errors import UserError
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset, decode_segmentation
from detection.data.mask_raster import instance_masks
from detection.data.transforms import ShortestEdgeResize, masks_follow, seed_augmentation, train_augmentation

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = DATA / "coco_instances_sample.json"


def _sample_images():
    """[(height, width, [segmentation, ...])] of the COCO sample's images."""
    coco = json.loads(SAMPLE.read_text())
    return [(image["height"], image["width"], [a["segmentation"] for a in coco["annotations"]
                                               if a["image_id"] == image["id"]])
            for image in coco["images"]]


def _compressed(segmentation, height, width):
    """The same mask as compressed RLE (the form instance PNGs and VOC masks are loaded in)."""
    return mask_utils.encode(np.asfortranarray(decode_segmentation(segmentation, height, width)))


def _reference(segmentations, height, width, size, flip=False):
    """What training did before: each mask decoded at full size, resized with nearest neighbour, flipped."""
    masks = np.stack([cv2.resize(decode_segmentation(s, height, width), size[::-1], interpolation=cv2.INTER_NEAREST)
                      for s in segmentations])
    return masks[:, :, ::-1] if flip else masks


def _band(mask, radius):
    """Pixels within ``radius`` (chessboard) of ``mask``'s border, the image's edge counting as border."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask, kernel) != cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def _off_border(ours, reference, radius):
    """How many pixels the two masks disagree on away from both masks' borders."""
    return int(((ours != reference) & ~_band(ours, radius) & ~_band(reference, radius)).sum())


def _synthetic():
    """(48, 64) image: a triangle, a concave L, a polygon touching the image's edges, two overlapping parts."""
    return 48, 64, [[[3.5, 4.0, 20.2, 6.1, 9.7, 30.3]],
                    [[30, 5, 36, 5, 36, 25, 50, 25, 50, 31, 30, 31]],
                    [[0, 0, 64, 0, 64, 10.5, 0, 12]],
                    [[40, 34, 60, 34, 60, 44, 40, 44], [52, 30, 63.9, 30, 63.9, 47.9, 52, 47.9]]]


def test_at_the_image_size_masks_are_decode_segmentation():
    for height, width, polygons in [*_sample_images(), _synthetic()]:
        rles = [_compressed(s, height, width) for s in polygons]
        for segmentations in (polygons, rles, polygons + rles):  # the polygon path, the RLE path, both together
            expected = np.stack([decode_segmentation(s, height, width) for s in segmentations])
            masks = instance_masks(segmentations, height, width)
            assert masks.dtype == np.uint8 and masks.flags.c_contiguous
            np.testing.assert_array_equal(masks, expected)
            np.testing.assert_array_equal(instance_masks(segmentations, height, width, flip=True),
                                          expected[:, :, ::-1])
    crowd = [s for _, _, image in _sample_images() for s in image if isinstance(s, dict)]
    assert len(crowd) == 1 and isinstance(crowd[0]["counts"], list)  # the uncompressed RLE was among them


@pytest.mark.parametrize("sy, sx", [(0.37, 0.37), (0.5, 0.5), (0.8, 0.8), (1.25, 1.25), (1.87, 1.87), (3.0, 3.0),
                                    (4.17, 4.17), (0.6, 1.5), (2.0, 0.8)])
def test_resized_polygons_differ_from_decode_then_resize_only_at_borders(sy, sx):
    """Disagreements lie within 1 px of either mask's border; where nearest neighbour draws each source pixel as
    a block of 4 or more, within half a block. (Training scales both sides alike; unequal scales check x and y.)"""
    radius = max(1, int(max(sx, sy) / 2))
    disagreeing = 0
    for height, width, segmentations in [*_sample_images(), _synthetic()]:
        size = (int(height * sy), int(width * sx))  # albumentations' rounding (geometric.functional.scale)
        polygons = [s for s in segmentations if isinstance(s, list)]
        masks, reference = instance_masks(polygons, height, width, size), _reference(polygons, height, width, size)
        assert masks.shape == reference.shape == (len(polygons), *size)
        for ours, theirs in zip(masks, reference):
            assert _off_border(ours, theirs, radius) == 0
            disagreeing += int((ours != theirs).sum())
        np.testing.assert_array_equal(instance_masks(polygons, height, width, size, flip=True), masks[:, :, ::-1])
    assert disagreeing > 0  # they are not the same masks: the check above is what holds


def test_at_training_sizes_polygons_are_pycocotools_rasterising_the_scaled_polygons():
    """Each object is rasterised on a canvas around its box, moved there by whole pixels: the same pixels as
    pycocotools gives on the whole image (up to exact ties of its rounding, which these scales do not meet)."""
    for height, width, segmentations in _sample_images():
        scale = min(800 / min(height, width), 1333 / max(height, width))  # the default training size
        size = (int(height * scale), int(width * scale))
        polygons = [s for s in segmentations if isinstance(s, list)]
        sx, sy = size[1] / width, size[0] / height
        whole = [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
            [(np.reshape(p, (-1, 2)) * (sx, sy)).ravel() for p in s], *size))) for s in polygons]
        np.testing.assert_array_equal(instance_masks(polygons, height, width, size), np.stack(whole))


def test_the_border_check_fails_for_masks_one_pixel_off():
    height, width, segmentations = _sample_images()[0]
    size = (int(height * 1.87), int(width * 1.87))
    ours, = instance_masks(segmentations[:1], height, width, size)
    assert _off_border(np.roll(ours, 3, axis=1), ours, 1) > 0  # 3 output px = 1.6 source px


@pytest.mark.parametrize("size", [(150, 211), (800, 1199)])
def test_resized_rle_masks_are_decode_then_resize(size):
    for height, width, segmentations in [*_sample_images(), _synthetic()]:
        # compressed RLE of every object, and the crowd region's own uncompressed RLE
        rles = [s if isinstance(s, dict) else _compressed(s, height, width) for s in segmentations]
        for flip in (False, True):
            np.testing.assert_array_equal(instance_masks(rles, height, width, size, flip),
                                          _reference(rles, height, width, size, flip))


def test_more_than_512_rle_masks():
    """More masks than OpenCV takes as the channels of one image (512; 128 through OpenCV 5's Python binding)."""
    rng = np.random.default_rng(0)
    blobs = (rng.random((700, 6, 8)) > 0.6).repeat(5, axis=1).repeat(5, axis=2)  # 5x5 blocks: (700, 30, 40)
    rles = [mask_utils.encode(np.asfortranarray(b.astype(np.uint8))) for b in blobs]
    masks = instance_masks(rles, 30, 40, (45, 61), flip=True)
    assert masks.shape == (700, 45, 61)
    np.testing.assert_array_equal(masks, _reference(rles, 30, 40, (45, 61), flip=True))


def test_an_object_in_several_parts_is_their_union():
    height, width, segmentations = _synthetic()
    parts = segmentations[3]
    assert decode_segmentation(parts, height, width).sum() < sum(decode_segmentation([p], height, width).sum()
                                                                 for p in parts)  # the parts overlap
    multi = [s for _, _, image in _sample_images() for s in image if isinstance(s, list) and len(s) > 1]
    assert len(multi) == 1 and len(multi[0]) == 2  # COCO annotation 257712, a two-part polygon
    for size in [(height, width), (100, 150), (20, 30)]:
        separately = instance_masks([[p] for p in parts], height, width, size)
        np.testing.assert_array_equal(instance_masks([parts], height, width, size)[0], separately.max(axis=0))
    height, width = 427, 640  # image 128372, the two-part polygon's
    for size in [(height, width), (800, 1199), (200, 299)]:
        separately = instance_masks([[p] for p in multi[0]], height, width, size)
        together = instance_masks(multi, height, width, size)[0]
        np.testing.assert_array_equal(together, separately.max(axis=0))
        assert separately[0].any() and separately[1].any()


def test_polygons_of_fewer_than_3_points_are_rings_without_area():
    """pycocotools reads a part of 4 numbers as a box (and with lists fails on it), and refuses fewer."""
    box = [10, 10, 30, 30]
    with pytest.raises(TypeError):
        decode_segmentation([box], 48, 64)
    as_box = mask_utils.decode(mask_utils.frPyObjects(np.array([box], np.float64), 48, 64))[:, :, 0]
    assert as_box.sum() == 30 * 30  # what a box reading would give
    triangle = [3.5, 4.0, 20.2, 6.1, 9.7, 30.3]
    for size in [(48, 64), (96, 128), (24, 32)]:
        masks = instance_masks([[box], [[5, 7]], [triangle, box], [triangle, [5, 7]], [triangle, []]], 48, 64, size)
        assert not masks[:2].any()  # a 2-point ring (a segment) and a 1-point ring cover no pixel centre
        for mask in masks[2:]:
            np.testing.assert_array_equal(mask, instance_masks([[triangle]], 48, 64, size)[0])
    # pycocotools itself, given the segment as a ring of 3 points (its last repeated): no pixel either
    assert not mask_utils.decode(mask_utils.frPyObjects([[10, 10, 30, 30, 30, 30]], 48, 64)).any()
    # an odd last number is ignored, as pycocotools ignores it
    np.testing.assert_array_equal(instance_masks([[triangle + [7.0]]], 48, 64)[0],
                                  decode_segmentation([triangle + [7.0]], 48, 64))


def test_rle_of_another_size_is_refused():
    rle = mask_utils.encode(np.zeros((30, 40), np.uint8, order="F"))
    with pytest.raises(UserError, match="an instance mask \\(RLE\\) is 30x40 pixels .* on a 48x64 image"):
        instance_masks([rle], 48, 64, (96, 128))


def _coco_sample(rle=False):
    data = load_coco(SAMPLE, DATA, "coco_sample")
    if rle:  # every polygon as compressed RLE: the masks then take the RLE path
        for rec in data.records:
            rec.segmentations = [s if isinstance(s, dict) else _compressed(s, rec.height, rec.width)
                                 for s in rec.segmentations]
    return data


def _through_albumentations(dataset, index, seed):
    """The sample as it was made before: masks decoded at full size and passed through the augmentation."""
    rec = dataset.records[index]
    keep = ~rec.ignore
    seed_augmentation(dataset.augment, seed)
    return dataset.augment(image=dataset.read_image(rec.image_id), bboxes=rec.boxes[keep], labels=rec.labels[keep],
                           masks=[decode_segmentation(s, rec.height, rec.width)
                                  for s, k in zip(rec.segmentations, keep) if k])


@pytest.mark.parametrize("rle", [False, True])
def test_samples_are_those_of_masks_passed_through_the_augmentation(rle):
    """Same image, boxes and labels, same random draws; RLE masks the same, polygon masks up to their borders."""
    dataset = DetectionDataset(_coco_sample(rle), augment=train_augmentation((320, 480, 800), 1000, 0.5),
                               with_masks=True)
    assert masks_follow(dataset.augment)
    flips, sizes = set(), set()
    for seed in range(8):
        for index in range(len(dataset)):
            image, target = dataset[(index, seed)]
            out = _through_albumentations(dataset, index, seed)
            np.testing.assert_array_equal(image.numpy(), out["image"].transpose(2, 0, 1))
            np.testing.assert_array_equal(target["boxes"].numpy(), np.asarray(out["bboxes"], np.float32))
            np.testing.assert_array_equal(target["labels"].numpy(), out["labels"])
            reference = np.stack(out["masks"])
            assert target["masks"].shape == reference.shape and target["masks"].dtype.is_floating_point is False
            if rle:
                np.testing.assert_array_equal(target["masks"].numpy(), reference)
            else:
                radius = max(1, int(image.shape[1] / dataset.records[index].height / 2))
                assert all(_off_border(a, b, radius) == 0 for a, b in zip(target["masks"].numpy(), reference))
            sizes.add(min(image.shape[1:]))
            flips.add(bool(dataset.augment.transforms[1].get_applied_params()))
    assert flips == {False, True} and len(sizes) >= 3


def test_other_geometric_steps_still_take_masks_through_albumentations():
    assert masks_follow(train_augmentation(800, 1333, 0.5, color_jitter=0.4))
    augment = A.Compose([ShortestEdgeResize((200,), 1000), A.VerticalFlip(p=1.0)],
                        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]), seed=0)
    assert not masks_follow(augment)
    dataset = DetectionDataset(_coco_sample(), augment=augment, with_masks=True)
    _, target = dataset[(0, 3)]
    np.testing.assert_array_equal(target["masks"].numpy(), np.stack(_through_albumentations(dataset, 0, 3)["masks"]))
