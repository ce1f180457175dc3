"""Tests for detection.evaluation.coco (pycocotools wrapper).

The default backend is "auto" (faster-coco-eval where installed): the tests that compare with a direct
pycocotools COCOeval run once per backend, exact for pycocotools, to 1e-9 for faster-coco-eval (its C++
accumulation rounds differently in the last bits: 0.3 vs 0.29999999999999993).
"""

import contextlib
import copy
import io
import json
import math
import sys

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from backbones.errors import UserError
from detection.evaluation import STAT_NAMES, evaluate_coco, to_coco_results
from detection.evaluation.coco import resolve_backend

BACKENDS = ["pycocotools", "faster-coco-eval"]
TOLERANCE = {"pycocotools": 0.0, "faster-coco-eval": 1e-9}  # against a direct pycocotools COCOeval

# Non-contiguous dataset ids; contiguous label l maps to CATEGORY_IDS[l - 1].
CATEGORY_IDS = [3, 7, 11]
CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 11, "name": "bird"}]
IMAGES = {1: (160, 200), 2: (180, 240), 5: (128, 128)}  # id -> (height, width)
# (image id, category id, shape, x0, y0, w, h): small (< 32^2), medium and large objects.
OBJECTS = [
    (1, 3, "rect", 10, 10, 20, 20),
    (1, 7, "ellipse", 60, 30, 50, 40),
    (1, 11, "rect", 40, 50, 120, 100),
    (2, 7, "ellipse", 5, 20, 130, 110),
    (2, 3, "ellipse", 150, 100, 60, 50),
    (2, 11, "rect", 200, 10, 25, 15),
    (5, 3, "rect", 0, 0, 128, 128),
    (5, 11, "ellipse", 30, 40, 45, 50),
]


def draw(shape, x0, y0, w, h, height, width):
    """Binary (H, W) mask of a rectangle or of the ellipse inscribed in it."""
    yy, xx = np.mgrid[:height, :width] + 0.5  # pixel centres
    inside = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
    if shape == "ellipse":
        inside &= ((xx - x0 - w / 2) / (w / 2)) ** 2 + ((yy - y0 - h / 2) / (h / 2)) ** 2 <= 1
    return inside.astype(np.uint8)


def gt_masks(objects=OBJECTS):
    return [draw(s, x, y, w, h, *IMAGES[img]) for img, _, s, x, y, w, h in objects]


def make_coco_gt(objects=OBJECTS):
    """In-memory COCO ground truth with compressed-RLE masks."""
    annotations = []
    for ann_id, ((img, cat, *_), mask) in enumerate(zip(objects, gt_masks(objects)), start=1):
        rle = mask_util.encode(np.asfortranarray(mask[:, :, None]))[0]
        rle["counts"] = rle["counts"].decode("ascii")
        annotations.append(
            {
                "id": ann_id,
                "image_id": img,
                "category_id": cat,
                "segmentation": rle,
                "area": float(mask_util.area(rle)),
                "bbox": mask_util.toBbox(rle).tolist(),
                "iscrowd": 0,
            }
        )
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "height": h, "width": w} for i, (h, w) in IMAGES.items()],
        "annotations": annotations,
        "categories": copy.deepcopy(CATEGORIES),
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def perfect_predictions():
    """torchvision-style outputs reproducing the ground truth exactly (torch tensors)."""
    preds = {}
    for img, (height, width) in IMAGES.items():
        idx = [k for k, obj in enumerate(OBJECTS) if obj[0] == img]
        masks = gt_masks()
        boxes, labels, mask_list = [], [], []
        for k in idx:
            rows, cols = np.nonzero(masks[k])
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])  # continuous x1y1x2y2
            labels.append(CATEGORY_IDS.index(OBJECTS[k][1]) + 1)
            mask_list.append(masks[k][None].astype(np.float32) * 0.9)  # probabilities
        preds[img] = {
            "boxes": torch.tensor(boxes, dtype=torch.float32),
            "scores": torch.linspace(0.9, 0.5, len(idx)),
            "labels": torch.tensor(labels),
            "masks": torch.tensor(np.stack(mask_list)),
        }
    return preds


def random_predictions(rng, per_image=6):
    """Jittered copies of GT objects plus background detections, numpy arrays."""
    preds = {}
    for img, (height, width) in IMAGES.items():
        objs = [o for o in OBJECTS if o[0] == img]
        boxes, labels, masks = [], [], []
        for _ in range(per_image):
            if rng.random() < 0.7:
                _, cat, shape, x, y, w, h = objs[rng.integers(len(objs))]
                x, y, w, h = np.array([x, y, w, h]) + rng.normal(0, 4, 4)
                w, h = max(w, 2.0), max(h, 2.0)
                label = CATEGORY_IDS.index(cat) + 1 if rng.random() < 0.8 else int(rng.integers(1, 4))
            else:
                shape, label = "rect", int(rng.integers(1, 4))
                x, y = rng.uniform(0, width - 10), rng.uniform(0, height - 10)
                w, h = rng.uniform(5, width - x), rng.uniform(5, height - y)
            boxes.append([x, y, x + w, y + h])
            labels.append(label)
            masks.append(draw(shape, x, y, w, h, height, width)[None] * rng.uniform(0.6, 1.0))
        preds[img] = {
            "boxes": np.array(boxes),
            "scores": np.round(rng.random(per_image), 2),
            "labels": np.array(labels),
            "masks": np.stack(masks),
        }
    return preds


def direct_cocoeval(coco_gt, results, iou_type):
    """Plain COCOeval run, dropping boxes for segm as detectron2 does."""
    results = copy.deepcopy(results)
    if iou_type == "segm":
        for r in results:
            r.pop("bbox", None)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_perfect_predictions_give_ap_one(iou_type):
    gt = make_coco_gt()
    results = to_coco_results(perfect_predictions(), CATEGORY_IDS, iou_types=("bbox", "segm"))
    stats = evaluate_coco(gt, results, iou_type)
    # COCOeval divides by (tp + fp + eps), so a perfect AP is 1 - 2e-16, not exactly 1.
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "ARs", "ARm", "ARl"):
        assert stats[name] == pytest.approx(1.0, abs=1e-12), name
    assert stats["per_class"] == pytest.approx({"cat": 1.0, "dog": 1.0, "bird": 1.0}, abs=1e-12)
    assert "Average Precision" in stats["summary_text"]


# pycocotools' decode trips a numpy-2 DeprecationWarning (not ours).
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_results_format_and_round_trip():
    gt = make_coco_gt()
    results = to_coco_results(perfect_predictions(), CATEGORY_IDS, iou_types=("bbox", "segm"))
    json.dumps(results)  # plain Python types only
    assert len(results) == len(OBJECTS)
    by_key = {(r["image_id"], r["category_id"]): r for r in results}
    for ann in gt.dataset["annotations"]:
        r = by_key[(ann["image_id"], ann["category_id"])]
        assert set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"}
        assert isinstance(r["segmentation"]["counts"], str)
        assert r["bbox"] == pytest.approx(ann["bbox"])  # x, y, w, h
        np.testing.assert_array_equal(
            mask_util.decode(r["segmentation"]), mask_util.decode(ann["segmentation"])
        )


def test_bbox_only_results_have_no_segmentation():
    results = to_coco_results(perfect_predictions(), CATEGORY_IDS)
    assert all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in results)
    assert all(isinstance(r["image_id"], int) for r in results)


def test_category_id_mapping_round_trip():
    results = to_coco_results(perfect_predictions(), CATEGORY_IDS)
    assert {r["category_id"] for r in results} == set(CATEGORY_IDS)
    # Back to contiguous labels: same multiset of (image, label) as the predictions.
    back = sorted((r["image_id"], CATEGORY_IDS.index(r["category_id"]) + 1) for r in results)
    expected = sorted(
        (img, int(lab)) for img, p in perfect_predictions().items() for lab in p["labels"].tolist()
    )
    assert back == expected
    # A wrong mapping (cat and dog swapped) shows up in the per-class numbers.
    swapped = to_coco_results(perfect_predictions(), [7, 3, 11])
    per_class = evaluate_coco(make_coco_gt(), swapped)["per_class"]
    assert per_class["bird"] == pytest.approx(1.0, abs=1e-12)
    assert per_class["cat"] == 0.0 and per_class["dog"] == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_random_predictions_match_direct_cocoeval(seed, iou_type, backend):
    gt = make_coco_gt()
    results = to_coco_results(random_predictions(np.random.default_rng(seed)), CATEGORY_IDS, ("bbox", "segm"))
    before = copy.deepcopy(results)
    stats = evaluate_coco(gt, results, iou_type, backend=backend)
    assert stats["backend"] == backend
    assert results == before  # the caller's list is not mutated by loadRes
    direct = direct_cocoeval(gt, results, iou_type)
    np.testing.assert_allclose([stats[name] for name in STAT_NAMES], direct.stats, rtol=0, atol=TOLERANCE[backend])
    assert 0.0 < stats["AP"] < 1.0  # a non-trivial case
    # Per-class AP, detectron2 style: area "all", last max_dets, ignore -1.
    for k, cat in enumerate(CATEGORIES):
        p = direct.eval["precision"][:, :, k, 0, -1]
        assert stats["per_class"][cat["name"]] == pytest.approx(np.mean(p[p > -1]), abs=1e-12)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_empty_predictions_give_zeros(iou_type):
    gt = make_coco_gt()
    empty = {img: {"boxes": np.zeros((0, 4)), "scores": [], "labels": [], "masks": np.zeros((0, 1, h, w))}
             for img, (h, w) in IMAGES.items()}
    results = to_coco_results(empty, CATEGORY_IDS, ("bbox", "segm"))
    assert results == []
    stats = evaluate_coco(gt, results, iou_type)
    assert [stats[name] for name in STAT_NAMES] == [0.0] * 12
    assert stats["per_class"] == {"cat": 0.0, "dog": 0.0, "bird": 0.0}


def test_undefined_stats_keep_cocos_minus_one():
    gt = make_coco_gt([OBJECTS[2]])  # a single large "bird" in image 1
    pred = {1: {"boxes": [[40.0, 50.0, 160.0, 150.0]], "scores": [0.9], "labels": [3]}}
    stats = evaluate_coco(gt, to_coco_results(pred, CATEGORY_IDS))
    assert stats["AP"] == pytest.approx(1.0, abs=1e-12) and stats["APl"] == pytest.approx(1.0, abs=1e-12)
    assert stats["APs"] == -1.0 and stats["APm"] == -1.0  # no small / medium GT
    assert stats["per_class"]["bird"] == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(stats["per_class"]["cat"])  # no GT of that category


def test_bad_inputs_raise():
    gt = make_coco_gt()
    with pytest.raises(ValueError, match=r"image 1, index 1: label 4 is outside 1..3"):
        to_coco_results({1: {"boxes": np.zeros((2, 4)), "scores": [1, 1], "labels": [1, 4]}}, CATEGORY_IDS)
    with pytest.raises(ValueError, match="no 'masks'"):
        no_masks = {1: {"boxes": np.zeros((1, 4)), "scores": [1], "labels": [1]}}
        to_coco_results(no_masks, CATEGORY_IDS, ("segm",))
    with pytest.raises(ValueError, match="iou_types"):
        to_coco_results({}, CATEGORY_IDS, ("keypoints",))
    result = {"image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1.0}
    with pytest.raises(ValueError, match="image_id 99"):
        evaluate_coco(gt, [result])
    with pytest.raises(ValueError, match="category_id 4"):
        evaluate_coco(gt, [dict(result, image_id=1, category_id=4)])
    with pytest.raises(ValueError, match="'segmentation'"):
        evaluate_coco(gt, [dict(result, image_id=1)], "segm")


def test_segm_area_range_uses_mask_area():
    """An unmatched mask of small area whose box is medium-sized must count as
    a small false positive (detectron2 drops the box before loadRes)."""
    gt = make_coco_gt([OBJECTS[0]])  # one small 20x20 "cat" in image 1
    fp_mask = draw("ellipse", 100, 80, 40, 32, *IMAGES[1])
    assert fp_mask.sum() < 32**2 <= 40 * 32
    hit_mask = draw("rect", 10, 10, 20, 20, *IMAGES[1])
    pred = {
        1: {
            "boxes": np.array([[100.0, 80.0, 140.0, 112.0], [10.0, 10.0, 30.0, 30.0]]),
            "scores": np.array([0.9, 0.5]),
            "labels": np.array([1, 1]),
            "masks": np.stack([fp_mask, hit_mask])[:, None].astype(np.float32),
        }
    }
    stats = evaluate_coco(gt, to_coco_results(pred, CATEGORY_IDS, ("bbox", "segm")), "segm")
    assert stats["APs"] == pytest.approx(0.5, abs=1e-12)  # FP ranked first, then the TP
    assert stats["APl"] == -1.0


def assert_same_numbers(fast, ours):
    """faster-coco-eval's evaluate_coco result equals pycocotools' to 1e-9: the 12 stats, per-class AP, curves."""
    assert (fast["backend"], ours["backend"]) == ("faster-coco-eval", "pycocotools")
    np.testing.assert_allclose([fast[n] for n in STAT_NAMES], [ours[n] for n in STAT_NAMES], rtol=0, atol=1e-9)
    assert fast["per_class"].keys() == ours["per_class"].keys()
    np.testing.assert_allclose(list(fast["per_class"].values()), list(ours["per_class"].values()), rtol=0,
                               atol=1e-9)  # nan (no ground truth) equals nan here
    for name, (recall, precision) in ours["precision_recall"].items():
        np.testing.assert_array_equal(fast["precision_recall"][name][0], recall)
        np.testing.assert_allclose(fast["precision_recall"][name][1], precision, rtol=0, atol=1e-9)


def test_faster_coco_eval_backend_gives_the_same_numbers():
    rng = np.random.default_rng(5)
    gt = {"images": [{"id": i, "width": 100, "height": 80} for i in range(1, 6)],
          "annotations": [], "categories": [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}]}
    for i in range(1, 6):
        for k in range(3):
            x, y = rng.uniform(0, 50, 2)
            w, h = rng.uniform(5, 40, 2)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "bbox": [x, y, w, h],
                                      "area": w * h, "iscrowd": 0, "category_id": int(rng.choice([3, 7]))})
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.random()),
                "bbox": [v + rng.normal(0, 3) for v in a["bbox"][:2]] + a["bbox"][2:]} for a in gt["annotations"]]
    ours = evaluate_coco(coco_gt, results, "bbox", backend="pycocotools")
    fast = evaluate_coco(coco_gt, results, "bbox", backend="faster-coco-eval")
    assert_same_numbers(fast, ours)
    assert 0.0 < ours["AP"] < 1.0


def crowded_coco_gt():
    """make_coco_gt plus a crowd region (iscrowd 1: detections inside it are ignored, not false positives) and
    a fourth category ("fish") that has ground truth but, in the tests below, no detections."""
    gt = make_coco_gt(OBJECTS + [(2, 7, "rect", 150, 10, 80, 60)])
    dataset = copy.deepcopy(gt.dataset)
    dataset["annotations"][-1]["iscrowd"] = 1
    dataset["categories"].append({"id": 13, "name": "fish"})
    mask = draw("ellipse", 10, 60, 40, 40, *IMAGES[5])
    rle = mask_util.encode(np.asfortranarray(mask[:, :, None]))[0]
    rle["counts"] = rle["counts"].decode("ascii")
    dataset["annotations"].append({"id": 99, "image_id": 5, "category_id": 13, "segmentation": rle, "iscrowd": 0,
                                   "area": float(mask_util.area(rle)), "bbox": mask_util.toBbox(rle).tolist()})
    crowded = COCO()
    crowded.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        crowded.createIndex()
    return crowded


@pytest.mark.parametrize("form", ["boxes and masks", "masks alone", "empty"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_faster_coco_eval_takes_what_pycocotools_takes_with_the_same_numbers(iou_type, seed, form):
    """The forms this project evaluates: results with boxes and masks, results of masks without a box (loadRes
    derives box and area from the mask, for bbox and segm alike), none at all; ground truth with a crowd region
    and a category without detections. Both backends accept them all and give the same numbers to 1e-9."""
    gt = crowded_coco_gt()
    results = to_coco_results(random_predictions(np.random.default_rng(seed), per_image=12), CATEGORY_IDS,
                              ("bbox", "segm"))
    # a detection inside the crowd region (ignored, so it changes nothing but must be accepted)
    crowd_box = [[155.0, 15.0, 225.0, 65.0]]
    crowd_mask = draw("rect", 155, 15, 70, 50, *IMAGES[2])[None, None].astype(np.float32)
    results += to_coco_results({2: {"boxes": crowd_box, "scores": [0.95], "labels": [2], "masks": crowd_mask}},
                               CATEGORY_IDS, ("bbox", "segm"))
    if form == "masks alone":
        results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    if form == "empty":
        results = []
    before = copy.deepcopy(results)
    ours = evaluate_coco(gt, results, iou_type, backend="pycocotools")
    truth = copy.deepcopy(gt.dataset)  # as pycocotools left it (its COCOeval writes RLEs into the ground truth)
    fast = evaluate_coco(gt, results, iou_type, backend="faster-coco-eval")
    assert results == before  # neither backend writes into the caller's results
    assert gt.dataset == truth  # faster-coco-eval evaluates copies of the annotations
    assert_same_numbers(fast, ours)
    assert ours["per_class"]["fish"] == 0.0  # ground truth, no detection: AP 0 (not nan, not skipped)
    if form != "empty":
        assert 0.0 < ours["AP"] < 1.0  # a non-trivial case


def test_auto_backend_is_faster_coco_eval_when_importable_else_pycocotools(monkeypatch):
    pytest.importorskip("faster_coco_eval")
    gt = make_coco_gt()
    results = to_coco_results(random_predictions(np.random.default_rng(0)), CATEGORY_IDS)
    assert resolve_backend() == resolve_backend("auto") == "faster-coco-eval"
    assert evaluate_coco(gt, results)["backend"] == "faster-coco-eval"
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # import faster_coco_eval now raises ImportError
    assert resolve_backend("auto") == "pycocotools"
    assert resolve_backend("faster-coco-eval") == "faster-coco-eval"  # named explicitly: no fallback ...
    with pytest.raises(UserError, match="pip install faster-coco-eval"):  # ... but a one-line error
        evaluate_coco(gt, results, backend="faster-coco-eval")
    stats = evaluate_coco(gt, results)
    assert stats["backend"] == "pycocotools"
    assert [stats[n] for n in STAT_NAMES] == direct_cocoeval(gt, results, "bbox").stats.tolist()
    with pytest.raises(UserError, match="COCO evaluation backend"):
        resolve_backend("coco")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_precision_recall_curves_are_cocoevals_precision_array(seed, iou_type, backend):
    """The curves (plotted per class) are COCOeval's own ``eval["precision"][T, :, K, A, M]`` at IoU 0.5, area
    "all", 100 detections: the indices are looked up in a direct COCOeval's params, not assumed."""
    gt = make_coco_gt()
    results = to_coco_results(random_predictions(np.random.default_rng(seed)), CATEGORY_IDS, ("bbox", "segm"))
    # "dog" has ground truth but no detections; image 1's "cat" and "bird" are found only by the detections below
    results = [r for r in results if r["category_id"] != 7 and r["image_id"] != 1]
    # ... the "cat" (20 x 20 at 10, 10) by its 12th detection: max_dets 10 and 100 give different curves;
    # the "bird" (120 x 100 at 40, 50) by a box 38 px off, IoU 8200 / 15800 = 0.519: a hit at IoU 0.5, not 0.55
    boxes = [[130.0, 10.0 * i, 140.0, 10.0 * i + 8] for i in range(11)] + [[10.0, 10.0, 30.0, 30.0],
                                                                            [78.0, 50.0, 198.0, 150.0]]
    masks = [draw("rect", x1, y1, x2 - x1, y2 - y1, *IMAGES[1])[None].astype(np.float32) for x1, y1, x2, y2 in boxes]
    results += to_coco_results({1: {"boxes": np.array(boxes), "scores": np.linspace(0.999, 0.001, 13),
                                    "labels": np.array([1] * 12 + [3]), "masks": np.stack(masks)}}, CATEGORY_IDS,
                               ("bbox", "segm"))
    curves = evaluate_coco(gt, results, iou_type, backend=backend)["precision_recall"]
    direct = direct_cocoeval(gt, results, iou_type)
    params = direct.params
    t = int(np.flatnonzero(np.isclose(params.iouThrs, 0.5))[0])
    a = params.areaRngLbl.index("all")
    m = params.maxDets.index(100)
    assert direct.eval["precision"].shape == (len(params.iouThrs), 101, len(CATEGORIES), 4, 3)
    assert set(curves) == {c["name"] for c in CATEGORIES}
    for cat in CATEGORIES:
        recall, precision = curves[cat["name"]]
        expected = direct.eval["precision"][t, :, params.catIds.index(cat["id"]), a, m]
        # COCOeval fills a category with ground truth at every recall threshold (0 past the last reached one)
        assert expected.shape == (101,) and (expected > -1).all()
        np.testing.assert_array_equal(recall, np.linspace(0, 1, 101))
        np.testing.assert_allclose(precision, expected, rtol=0, atol=TOLERANCE[backend])
    assert curves["dog"][1].max() == 0.0  # no detections: precision 0 everywhere
    assert curves["cat"][1][0] > 0.0 and curves["bird"][1][0] > 0.0
    # a non-trivial case: another IoU threshold, area or max_dets would give other curves
    ours = np.stack([curves[gt.cats[c]["name"]][1] for c in params.catIds], axis=1)
    for other in (direct.eval["precision"][t + 1, :, :, a, m], direct.eval["precision"][t, :, :, a, 1],
                  direct.eval["precision"][t, :, :, 3, m]):
        assert not np.array_equal(ours, other)


def test_precision_recall_curve_of_a_hand_checked_case():
    """One "cat": detections FP (0.9), TP (0.8). At IoU 0.5 recall reaches 1 at rank 2 with precision 1/2;
    COCO's interpolated precision is the max over ranks at recall >= r: 1/2 at every threshold."""
    gt = make_coco_gt([OBJECTS[0]])
    pred = {1: {"boxes": [[100.0, 100.0, 130.0, 130.0], [10.0, 10.0, 30.0, 30.0]], "scores": [0.9, 0.8],
                "labels": [1, 1]}}
    curves = evaluate_coco(gt, to_coco_results(pred, CATEGORY_IDS))["precision_recall"]
    recall, precision = curves["cat"]
    np.testing.assert_array_equal(recall, np.linspace(0, 1, 101))
    np.testing.assert_allclose(precision, 0.5, rtol=0, atol=1e-12)
    assert curves["dog"][0].size == 0 and curves["bird"][0].size == 0  # no ground truth: no curve
