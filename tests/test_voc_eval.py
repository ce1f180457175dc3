"""Tests for detection.evaluation.voc against a straightforward devkit re-implementation."""

import math

import numpy as np
import pytest
import torch

from detection.evaluation import (
    evaluate_voc,
    evaluate_voc_coco_style,
    from_voc_boxes,
    to_voc_boxes,
    voc_ap,
)


from detection.evaluation.voc_reference import ref_evaluate, ref_voc_ap  # noqa: E402


def random_box(rng, size=100, integer=True):
    x1, y1 = rng.uniform(1, size, 2)
    w, h = rng.uniform(0, size / 2, 2)
    box = np.array([x1, y1, x1 + w, y1 + h])
    return np.round(box) if integer else box


def random_case(rng, num_classes, num_images=None):
    """GTs with difficult objects / empty images; detections with duplicates,
    jittered copies, background boxes, tied scores, missing images."""
    integer = rng.random() < 0.5  # integer boxes make IoU == threshold possible
    num_images = num_images or int(rng.integers(1, 12))
    gts, dets = {}, {}
    for i in range(num_images):
        image_id = f"img{i}"
        n = int(rng.integers(0, 7))
        boxes = np.array([random_box(rng, integer=integer) for _ in range(n)]).reshape(-1, 4)
        labels = rng.integers(1, num_classes + 1, n)
        if n and rng.random() < 0.3:
            # Identical GT boxes tie on IoU: the first one (argmax) must win.
            k = int(rng.integers(0, n))
            boxes, labels = np.vstack([boxes, boxes[k]]), np.append(labels, labels[k])
            n += 1
        gts[image_id] = {"boxes": boxes, "labels": labels, "difficult": rng.random(n) < 0.2}
        if rng.random() < 0.2:
            continue  # image without detections
        det_boxes, det_labels = [], []
        for box, lab in zip(boxes, labels):
            for _ in range(int(rng.integers(0, 4))):  # 0..3 detections per GT: misses & duplicates
                jitter = rng.normal(0, 4, 4)
                det_boxes.append(box + (np.round(jitter) if integer else jitter))
                det_labels.append(lab if rng.random() < 0.85 else rng.integers(1, num_classes + 1))
            height = box[3] - box[1] + 1
            if integer and height % 2 == 0 and rng.random() < 0.5:
                # Top half of the GT: IoU exactly 0.5, exercising the threshold side.
                det_boxes.append(np.array([box[0], box[1], box[2], box[1] + height / 2 - 1]))
                det_labels.append(lab)
        for _ in range(int(rng.integers(0, 5))):  # background detections
            det_boxes.append(random_box(rng, integer=integer))
            det_labels.append(rng.integers(1, num_classes + 1))
        det_boxes = np.array(det_boxes).reshape(-1, 4)
        # Fix inverted jittered boxes; keep x2 >= x1 - 1 (allowed by VOC).
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] - 1)
        scores = np.round(rng.random(len(det_boxes)), 1)  # one decimal -> many ties
        dets[image_id] = {"boxes": det_boxes, "scores": scores, "labels": np.array(det_labels, int)}
    return dets, gts


def assert_same(actual, expected, tol=1e-9):
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("metric", ["area", "11point"])
@pytest.mark.parametrize("inclusive", [True, False])
def test_matches_reference_on_random_cases(seed, metric, inclusive):
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(1, 6))  # with few images, some classes lack GT or detections
    class_names = [f"c{k}" for k in range(num_classes)]
    dets, gts = random_case(rng, num_classes)
    threshold = float(rng.choice([0.5, 0.5, 0.3, 0.7]))
    result = evaluate_voc(dets, gts, class_names, threshold, metric, inclusive)
    ref_aps, ref_map = ref_evaluate(dets, gts, class_names, threshold, metric, inclusive)
    for name in class_names:
        assert_same(result["per_class"][name], ref_aps[name])
    assert_same(result["mAP"], ref_map)
    assert result["metric"] == metric and result["iou_threshold"] == threshold


def test_matches_reference_on_larger_case():
    """Size check (no timing): many images and detections per class."""
    rng = np.random.default_rng(1234)
    class_names = [f"c{k}" for k in range(6)]
    dets, gts = random_case(rng, len(class_names), num_images=300)
    result = evaluate_voc(dets, gts, class_names)
    ref_aps, ref_map = ref_evaluate(dets, gts, class_names, 0.5, "area", True)
    for name in class_names:
        assert_same(result["per_class"][name], ref_aps[name])
    assert_same(result["mAP"], ref_map)


def test_tie_order_follows_ground_truth_order():
    """Equal scores in two images: the image listed first in ground_truths is
    ranked first, whatever the order of the detections mapping."""
    gts = {
        "a": {"boxes": [[1, 1, 10, 10]], "labels": [1]},
        "b": {"boxes": [[1, 1, 10, 10]], "labels": [1]},
    }
    dets = {  # 'b' listed first here, but 'a' comes first in ground_truths
        "b": {"boxes": [[50, 50, 60, 60]], "scores": [0.5], "labels": [1]},  # FP
        "a": {"boxes": [[1, 1, 10, 10]], "scores": [0.5], "labels": [1]},  # TP
    }
    rec, prec = evaluate_voc(dets, gts, ["x"])["precision_recall"]["x"]
    np.testing.assert_allclose(rec, [0.5, 0.5])
    np.testing.assert_allclose(prec, [1.0, 0.5])


# --------------------------------------------------------------------------
# Hand-checked cases
# --------------------------------------------------------------------------
GT_BOX = [1, 1, 10, 10]  # 10 x 10 pixels
MISS_BOX = [50, 50, 60, 60]


def one_class(gt_boxes, det_boxes, scores, difficult=None):
    gts = {"im": {"boxes": gt_boxes, "labels": [1] * len(gt_boxes)}}
    if difficult is not None:
        gts["im"]["difficult"] = difficult
    dets = {"im": {"boxes": det_boxes, "scores": scores, "labels": [1] * len(det_boxes)}}
    return dets, gts


def ap_of(dets, gts, **kwargs):
    return evaluate_voc(dets, gts, ["x"], **kwargs)["per_class"]["x"]


def test_tp_then_duplicate():
    # tp=[1,0], fp=[0,1] -> rec=[1,1], prec=[1,.5]; envelope 1 over recall [0,1].
    dets, gts = one_class([GT_BOX], [GT_BOX, GT_BOX], [0.9, 0.8])
    result = evaluate_voc(dets, gts, ["x"])
    rec, prec = result["precision_recall"]["x"]
    np.testing.assert_array_equal(rec, [1.0, 1.0])
    np.testing.assert_array_equal(prec, [1.0, 0.5])
    assert result["per_class"]["x"] == 1.0
    assert ap_of(dets, gts, metric="11point") == pytest.approx(1.0, abs=1e-12)


def test_fp_then_tp():
    # rec=[0,1], prec=[0,.5]: area = 1 * 0.5; 11-point: max prec 0.5 at every t.
    dets, gts = one_class([GT_BOX], [MISS_BOX, GT_BOX], [0.9, 0.8])
    assert ap_of(dets, gts) == pytest.approx(0.5, abs=1e-12)
    assert ap_of(dets, gts, metric="11point") == pytest.approx(0.5, abs=1e-12)


def test_two_gts_tp_fp_tp():
    # rec=[.5,.5,1], prec=[1,.5,2/3]: area = .5*1 + .5*2/3 = 5/6;
    # 11-point: t=0..0.5 (6 points) -> 1, t=0.6..1 (5 points) -> 2/3: (6 + 10/3)/11 = 28/33.
    other = [21, 21, 30, 30]
    dets, gts = one_class([GT_BOX, other], [GT_BOX, MISS_BOX, other], [0.9, 0.8, 0.7])
    assert ap_of(dets, gts) == pytest.approx(5 / 6, abs=1e-12)
    assert ap_of(dets, gts, metric="11point") == pytest.approx(28 / 33, abs=1e-12)


def test_difficult_is_ignored():
    # Detection on the difficult GT is neither TP nor FP; npos = 1.
    other = [21, 21, 30, 30]
    dets, gts = one_class([GT_BOX, other], [other, GT_BOX], [0.9, 0.8], difficult=[False, True])
    result = evaluate_voc(dets, gts, ["x"])
    rec, prec = result["precision_recall"]["x"]
    np.testing.assert_array_equal(rec, [0.0, 1.0])
    np.testing.assert_array_equal(prec, [0.0, 1.0])
    assert result["per_class"]["x"] == 1.0


def test_only_difficult_gt_gives_nan_and_is_excluded():
    gts = {
        "im": {"boxes": [GT_BOX, GT_BOX], "labels": [1, 2], "difficult": [True, False]},
    }
    dets = {"im": {"boxes": [GT_BOX, GT_BOX], "scores": [0.9, 0.9], "labels": [1, 2]}}
    result = evaluate_voc(dets, gts, ["a", "b"])
    assert math.isnan(result["per_class"]["a"])
    assert result["per_class"]["b"] == 1.0
    assert result["mAP"] == 1.0


def test_iou_exactly_at_threshold():
    # det covers the top half of the GT: inter 50, union 100 -> IoU exactly 0.5.
    dets, gts = one_class([GT_BOX], [[1, 1, 10, 5]], [0.9])
    assert ap_of(dets, gts, inclusive_threshold=True) == 1.0  # MATLAB devkit: ov >= 0.5
    assert ap_of(dets, gts, inclusive_threshold=False) == 0.0  # py-faster-rcnn: ovmax > 0.5


def test_class_without_gt_is_nan_and_class_without_detections_is_zero():
    gts = {"im": {"boxes": [GT_BOX, GT_BOX], "labels": [1, 2]}}
    dets = {"im": {"boxes": [GT_BOX, GT_BOX], "scores": [0.9, 0.8], "labels": [1, 3]}}
    result = evaluate_voc(dets, gts, ["a", "b", "c"])
    assert result["per_class"]["a"] == 1.0
    assert result["per_class"]["b"] == 0.0  # GT but no detections
    assert math.isnan(result["per_class"]["c"])  # detections but no GT
    assert result["mAP"] == pytest.approx(0.5)
    rec, prec = result["precision_recall"]["b"]
    assert rec.size == 0 and prec.size == 0


def test_empty_detections():
    gts = {"a": {"boxes": [GT_BOX], "labels": [1]}, "b": {"boxes": np.zeros((0, 4)), "labels": []}}
    for dets in ({}, {"a": {"boxes": np.zeros((0, 4)), "scores": [], "labels": []}}):
        result = evaluate_voc(dets, gts, ["x"])
        assert result["per_class"]["x"] == 0.0 and result["mAP"] == 0.0
        assert evaluate_voc(dets, gts, ["x"], metric="11point")["mAP"] == 0.0


def test_accepts_torch_tensors():
    gts = {0: {"boxes": torch.tensor([GT_BOX], dtype=torch.float32), "labels": torch.tensor([1])}}
    dets = {
        0: {
            "boxes": torch.tensor([MISS_BOX, GT_BOX], dtype=torch.float32),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 1]),
        }
    }
    assert evaluate_voc(dets, gts, ["x"])["mAP"] == pytest.approx(0.5)


def test_coco_style_is_mean_over_thresholds():
    rng = np.random.default_rng(7)
    names = ["a", "b", "c"]
    dets, gts = random_case(rng, len(names), num_images=40)
    result = evaluate_voc_coco_style(dets, gts, names)
    maps = [evaluate_voc(dets, gts, names, t / 100.0)["mAP"] for t in range(50, 100, 5)]
    assert result["AP"] == pytest.approx(np.mean(maps), abs=1e-12)
    assert result["AP50"] == pytest.approx(maps[0], abs=1e-12)
    assert result["AP75"] == pytest.approx(maps[5], abs=1e-12)
    assert set(result) == {"AP", "AP50", "AP75"}


# --------------------------------------------------------------------------
# voc_ap and box conversions
# --------------------------------------------------------------------------
def test_voc_ap_known_curves():
    # rec=[.5,1], prec=[1,.5]: area = .5*1 + .5*.5; 11-point = (6*1 + 5*.5)/11.
    assert voc_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75, abs=1e-12)
    assert voc_ap([0.5, 1.0], [1.0, 0.5], "11point") == pytest.approx(8.5 / 11, abs=1e-12)
    # Perfect, empty and never-reaching curves.
    assert voc_ap([1.0], [1.0]) == 1.0
    assert voc_ap([1.0], [1.0], "11point") == pytest.approx(1.0, abs=1e-12)
    assert voc_ap([], []) == 0.0 and voc_ap([], [], "11point") == 0.0
    # The envelope lifts the dip: prec [1, .5, .8] at rec [.2, .4, .6] -> .2*1 + .4*.8.
    assert voc_ap([0.2, 0.4, 0.6], [1.0, 0.5, 0.8]) == pytest.approx(0.2 + 0.4 * 0.8, abs=1e-12)


def test_voc_ap_11point_uses_arange_thresholds():
    # np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > 0.3: recall 0.3 reaches only 3 thresholds.
    assert voc_ap([0.3], [1.0], "11point") == pytest.approx(3 / 11, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_voc_ap_matches_reference(seed):
    rng = np.random.default_rng(seed)
    rec = np.sort(rng.random(int(rng.integers(1, 30))))
    prec = rng.random(len(rec))
    for metric in ("area", "11point"):
        expected = ref_voc_ap(rec, prec, metric == "11point")
        assert voc_ap(rec, prec, metric) == pytest.approx(expected, abs=1e-12)


def test_box_conversion_round_trip():
    boxes = np.array([[0.0, 0.0, 10.0, 20.0], [5.5, 3.25, 7.0, 9.0]])
    voc = to_voc_boxes(boxes)
    np.testing.assert_array_equal(voc, [[1.0, 1.0, 10.0, 20.0], [6.5, 4.25, 7.0, 9.0]])
    np.testing.assert_array_equal(from_voc_boxes(voc), boxes)
    np.testing.assert_array_equal(to_voc_boxes(torch.tensor(boxes)), voc)
    assert to_voc_boxes(np.zeros((0, 4))).shape == (0, 4)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
def bad_input_case(**det_overrides):
    gts = {"img0": {"boxes": [GT_BOX], "labels": [1]}, "img1": {"boxes": [GT_BOX], "labels": [2]}}
    det = {"boxes": [GT_BOX, GT_BOX, GT_BOX], "scores": [0.9, 0.8, 0.7], "labels": [1, 2, 1]}
    det.update(det_overrides)
    return {"img0": {"boxes": [GT_BOX], "scores": [0.5], "labels": [1]}, "img1": det}, gts


def test_nan_box_raises():
    dets, gts = bad_input_case(boxes=[GT_BOX, GT_BOX, [1, np.nan, 10, 10]])
    with pytest.raises(ValueError, match=r"image 'img1', index 2: .*NaN"):
        evaluate_voc(dets, gts, ["a", "b"])


def test_inverted_box_raises():
    dets, gts = bad_input_case(boxes=[GT_BOX, [10, 1, 8, 10], GT_BOX])  # x2 < x1 - 1
    with pytest.raises(ValueError, match=r"image 'img1', index 1: .*inverted"):
        evaluate_voc(dets, gts, ["a", "b"])


def test_zero_width_box_is_allowed_and_is_a_false_positive():
    dets, gts = bad_input_case(boxes=[GT_BOX, [10, 1, 9, 10], GT_BOX])  # x2 == x1 - 1: empty box
    result = evaluate_voc(dets, gts, ["a", "b"])
    # Devkit rules by hand. "a": one GT (img0); detections by score: img1 0.9 and 0.7 (no "a" GT there: FP, FP),
    # img0 0.5 (TP). rec = [0, 0, 1], prec = [0, 0, 1/3]; the envelope is 1/3 up to recall 1: AP 1/3, and
    # 11-point 1/3 too (every threshold t has max prec 1/3 over rec >= t).
    # "b": one GT (img1), one detection, the empty box [10, 1, 9, 10] on it: iw = 9 - 10 + 1 = 0, so
    # inter = 0 and IoU 0 (union 0 * 10 + 100 - 0 = 100, no division by zero): a FP. AP 0. mAP (1/3 + 0) / 2.
    assert result["per_class"]["a"] == pytest.approx(1 / 3, abs=1e-12)
    assert result["per_class"]["b"] == 0.0
    assert result["mAP"] == pytest.approx(1 / 6, abs=1e-12)
    assert evaluate_voc(dets, gts, ["a", "b"], metric="11point")["mAP"] == pytest.approx(1 / 6, abs=1e-12)
    for metric in ("area", "11point"):
        ref_aps, ref_map = ref_evaluate(dets, gts, ["a", "b"], 0.5, metric, True)
        assert ref_aps == pytest.approx({"a": 1 / 3, "b": 0.0}, abs=1e-12) and ref_map == pytest.approx(1 / 6)


def test_an_empty_box_ranked_first_costs_precision():
    # The empty box inside the GT scores above the true detection: FP then TP, rec = [0, 1], prec = [0, 1/2]:
    # AP 1/2 for both metrics (it would be 1 if empty boxes were dropped before matching).
    dets, gts = one_class([GT_BOX], [[5, 1, 4, 10], GT_BOX], [0.9, 0.8])
    for metric in ("area", "11point"):
        assert ap_of(dets, gts, metric=metric) == pytest.approx(0.5, abs=1e-12)
        assert ref_evaluate(dets, gts, ["x"], 0.5, metric, True)[0]["x"] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("label", [0, 3, -1])
def test_label_out_of_range_raises(label):
    dets, gts = bad_input_case(labels=[1, label, 1])
    with pytest.raises(ValueError, match=rf"image 'img1', index 1: label {label} is outside 1..2"):
        evaluate_voc(dets, gts, ["a", "b"])


def test_unknown_image_raises():
    dets, gts = bad_input_case()
    dets["ghost"] = {"boxes": [GT_BOX], "scores": [0.5], "labels": [1]}
    with pytest.raises(ValueError, match="'ghost'"):
        evaluate_voc(dets, gts, ["a", "b"])


def test_nan_score_and_length_mismatch_raise():
    dets, gts = bad_input_case(scores=[0.9, np.nan, 0.7])
    with pytest.raises(ValueError, match=r"image 'img1', index 1: score is NaN"):
        evaluate_voc(dets, gts, ["a", "b"])
    dets, gts = bad_input_case(scores=[0.9, 0.8])
    with pytest.raises(ValueError, match=r"image 'img1'.*expected 3"):
        evaluate_voc(dets, gts, ["a", "b"])


def test_bad_metric_raises():
    dets, gts = bad_input_case()
    with pytest.raises(ValueError, match="metric"):
        evaluate_voc(dets, gts, ["a", "b"], metric="voc2012")


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5, float("nan")])
def test_iou_threshold_outside_zero_one_raises(threshold):
    # 0 or less matched every detection to any ground truth of its image; above 1 (or NaN) matched nothing
    dets, gts = bad_input_case()
    with pytest.raises(ValueError, match=r"iou_threshold must be in \(0, 1\]"):
        evaluate_voc(dets, gts, ["a", "b"], iou_threshold=threshold)
    assert evaluate_voc(dets, gts, ["a", "b"], iou_threshold=1.0)["iou_threshold"] == 1.0
