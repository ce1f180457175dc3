"""What eval_voc and eval_coco do with inputs that do not fit: COCO results files read back
(detection.evaluation.results_file), options out of range, undefined numbers, masks on one side only.

Each test reproduces a reported or found problem: a traceback, or a number printed without a word.
"""
import dataclasses
import json
import math
import warnings

import numpy as np
import pytest

from backbones.errors import UserError
from bad_inputs_evaluation import OBJECTS, coco_gt, perfect, rle, voc_folder
from detection.cli import eval_coco, eval_voc
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset
from detection.data.voc_format import load_voc
from detection.evaluation.dataset_eval import coco_metrics, has_ground_truth_masks, voc_metrics
from detection.evaluation.plots import plot_precision_recall
from detection.evaluation.results_file import load_results


@pytest.fixture
def gt(tmp_path):
    """The two-image COCO ground truth (no masks) as a dataset."""
    path = tmp_path / coco_gt(tmp_path)
    return DetectionDataset(load_coco(path, tmp_path / "images", "gt"))


def _load(tmp_path, dataset, entries=None, text=None):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries) if text is None else text, encoding="utf-8")
    return load_results(path, dataset)


def _run(main, argv):
    """A program's exit status (0 when it returns)."""
    try:
        main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code
    return 0


# --- COCO results files -------------------------------------------------------------------------------------
def test_results_with_segmentation_on_only_some_entries_warn_with_counts(tmp_path, gt, capsys):
    entries = perfect(masks=True)[:1] + perfect()[1:]
    predictions = _load(tmp_path, gt, entries)
    assert all("rles" not in p for p in predictions.values())  # boxes only, as before, but now said
    assert capsys.readouterr().err == \
        f"warning: {tmp_path / 'results.json'}: 1 of 2 results carry segmentation; evaluating boxes only\n"


def test_results_with_segmentation_on_every_entry_keep_their_masks(tmp_path, gt, capsys):
    predictions = _load(tmp_path, gt, perfect(masks=True))
    assert [p["rles"] for p in predictions.values()] == [[rle(*box)] for _, _, box in OBJECTS]
    assert capsys.readouterr().err == ""


def test_an_empty_results_list_is_warned_about(tmp_path, gt, capsys):
    predictions = _load(tmp_path, gt, [])
    assert all(len(p["scores"]) == 0 for p in predictions.values())
    assert "results.json holds no results: every AP is 0" in capsys.readouterr().err


def test_a_byte_order_mark_before_the_json_is_accepted(tmp_path, gt):
    predictions = _load(tmp_path, gt, text="\ufeff" + json.dumps(perfect()))
    assert [p["scores"].tolist() for p in predictions.values()] == [[0.9], [0.9]]


@pytest.mark.parametrize("entries, message", [
    ({"results": []}, r"results.json must hold a COCO results list \(\[\{image_id, category_id, bbox, score\}"),
    ("[]", "must hold a COCO results list"),  # a JSON string
    ([{**perfect()[0], "image_id": [1]}], r"entry 0 has image_id \[1\]; it must be a number or a string"),
    ([{**perfect()[0], "category_id": {"id": 1}}], r"entry 0 has category_id \{'id': 1\}; it must be a number"),
    ([{**perfect()[0], "score": "high"}], "entry 0 has a bad box or score"),
    ([{**r, "image_id": r["image_id"] + 397133} for r in perfect()],
     r"none of its 2 results names an image of gt \(2 images, such as 1, 2\); are they for another dataset\?"),
    ([perfect()[0], {**perfect()[1], "image_id": 7}],
     r"entry 1 names image 7, which is not in gt \(2 images, such as 1, 2\)"),
    ([{**r, "image_id": str(r["image_id"])} for r in perfect()],
     r"entry 0 names image '1', which is not in gt \(its image ids are numbers: write 1, not '1'\)"),
    ([{**perfect()[0], "category_id": 18}],
     r"entry 0 names category 18, which is not in gt \(its categories: 1 cat, 2 dog\)"),
])
def test_bad_results_are_named(tmp_path, gt, entries, message):
    with pytest.raises(UserError, match=message):
        _load(tmp_path, gt, entries)


def test_number_image_ids_on_voc_data_are_shown_its_string_ids(tmp_path):
    voc_folder(tmp_path)
    dataset = DetectionDataset(load_voc(tmp_path / "VOC", "test", class_names=("cat", "dog"), name="VOC_test"))
    with pytest.raises(UserError, match=r"entry 0 names image 1, which is not in VOC_test "
                                        r"\(its image ids are strings such as '000001', '000002'\)"):
        _load(tmp_path, dataset, [{**perfect()[0], "image_id": 1}, {**perfect()[1], "image_id": "000002"}])
    with pytest.raises(UserError, match=r"entry 0 names image 1, which is not in VOC_test"):
        _load(tmp_path, dataset, [{**perfect()[0], "image_id": 1}])  # one result: named as such, hint and all


def test_a_ground_truth_file_or_a_folder_as_results_is_named(tmp_path, gt):
    with pytest.raises(UserError, match="val.json is a COCO ground-truth file .images, annotations, categories."):
        load_results(tmp_path / coco_gt(tmp_path, name="val.json"), gt)
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="folder is a folder, not a COCO results JSON"):
        load_results(tmp_path / "folder", gt)


@pytest.mark.parametrize("segmentation", [  # polygons and uncompressed RLE are converted: tests/test_results_forms.py
    "abc",
    {"counts": "abc"},
    {"size": [100, 100], "counts": 12},
])
def test_segmentation_that_is_not_a_compressed_rle_is_named(tmp_path, gt, segmentation):
    entries = [{**r, "segmentation": segmentation} for r in perfect()]
    with pytest.raises(UserError, match=r"results.json: entry 0: segmentation must be a compressed RLE "
                                        r"\{'size': \[height, width\], 'counts': '...'\}"):
        _load(tmp_path, gt, entries)


def test_a_mask_of_another_size_than_its_image_is_named(tmp_path, gt):
    # pycocotools scores such a mask IoU 0 without a word: mask AP 0 for perfect boxes
    entries = perfect(masks=True)
    entries[1]["segmentation"] = rle(20, 20, 60, 60, size=(100, 120))
    with pytest.raises(UserError, match=r"entry 1: segmentation size \[100, 120\] is not image 2's "
                                        r"\[height, width\] \[100, 100\]"):
        _load(tmp_path, gt, entries)


# --- masks on one side only ----------------------------------------------------------------------------------
def test_mask_results_on_ground_truth_without_masks_are_scored_as_boxes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps(perfect(masks=True)))
    argv = ["--annotations", coco_gt(tmp_path), "--predictions", "results.json"]
    assert _run(eval_coco.main, argv) == 0  # was: KeyError 'segmentation' inside pycocotools
    captured = capsys.readouterr()
    assert "warning: the results carry masks but gt has no ground-truth masks" in captured.err
    written = json.loads((tmp_path / "results.gt.eval_coco.json").read_text())
    assert set(written) == {"source", "dataset", "images", "backend", "bbox"}
    assert written["bbox"]["AP"] == pytest.approx(1.0)
    assert _run(eval_coco.main, argv + ["--iou-type", "segm"]) == 2
    assert "error: --iou-type segm needs ground-truth masks, and gt has none" in capsys.readouterr().err


def test_ground_truth_masks_are_known_per_dataset(tmp_path):
    no_masks = DetectionDataset(load_coco(tmp_path / coco_gt(tmp_path), tmp_path, "gt"))
    masks = DetectionDataset(load_coco(tmp_path / coco_gt(tmp_path, masks=True, name="m.json"), tmp_path, "m"))
    assert not has_ground_truth_masks(no_masks) and has_ground_truth_masks(masks)
    predictions = {i: {**p, "rles": [rle(*box)]} for (i, _, box), p in zip(OBJECTS, _box_predictions())}
    with pytest.raises(UserError, match="needs ground-truth masks"):
        coco_metrics(no_masks, predictions, ("bbox", "segm"))
    assert coco_metrics(masks, predictions, ("bbox", "segm"))["segm"]["AP"] == pytest.approx(1.0)


def _box_predictions():
    """The perfect results as a detector's outputs (x1 y1 x2 y2 boxes, contiguous labels = category ids here)."""
    return [{"boxes": np.array([[x, y, x + w, y + h]], dtype=np.float64), "scores": np.array([0.9]),
             "labels": np.array([c])} for _, c, (x, y, w, h) in OBJECTS]


# --- undefined numbers: n/a on screen, null in the JSON ------------------------------------------------------
def test_coco_stats_without_ground_truth_in_a_size_range_show_na_and_write_null(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps(perfect()))
    assert _run(eval_coco.main, ["--annotations", coco_gt(tmp_path), "--predictions", "results.json"]) == 0
    out = capsys.readouterr().out
    assert "-100.00" not in out
    assert "  bbox   100.00  100.00  100.00     n/a  100.00     n/a" in out  # both objects are medium-sized
    written = json.loads((tmp_path / "results.gt.eval_coco.json").read_text())["bbox"]
    assert written["APs"] is None and written["APl"] is None and written["ARs"] is None
    assert written["AP"] == pytest.approx(1.0) and written["APm"] == pytest.approx(1.0)


def test_a_class_without_ground_truth_shows_na_and_writes_null(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    gt = json.loads((tmp_path / coco_gt(tmp_path)).read_text())
    gt["categories"].append({"id": 3, "name": "bird"})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(perfect()))
    assert _run(eval_coco.main, ["--annotations", "gt.json", "--predictions", "results.json"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "  bird                      n/a" in out
    written = json.loads((tmp_path / "results.gt.eval_coco.json").read_text())["bbox"]
    assert written["per_class"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0), "bird": None}
    # the same data through eval_voc: bird's AP is undefined there too
    (tmp_path / "gt.yaml").write_text("format: coco\nannotations: gt.json\nimages: images\n")
    assert _run(eval_voc.main, ["--predictions", "results.json", "--dataset", "gt.yaml"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "  bird     n/a" in out and "  mAP   100.00" in out
    written = json.loads((tmp_path / "results.gt_val.eval_voc.json").read_text())
    assert written["per_class"] == {"cat": 1.0, "dog": 1.0, "bird": None} and written["mAP"] == 1.0


def test_voc_without_any_ground_truth_object_shows_na(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = voc_folder(tmp_path)
    for xml in (tmp_path / "VOC" / "Annotations").iterdir():  # every object difficult: no AP is defined
        xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "comp4_det_test_cat.txt").write_text("000001 0.9 11 11 60 60\n")
    (tmp_path / "results" / "comp4_det_test_dog.txt").write_text("")
    assert _run(eval_voc.main, args + ["--predictions", "results"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "  mAP     n/a" in out
    assert "over IoU .5:.95 (as detectron2 reports; not COCO's AP): n/a (AP50 n/a, AP75 n/a)" in out
    written = json.loads((tmp_path / "results.VOC_test.eval_voc.json").read_text())
    assert written["mAP"] is None and written["per_class"] == {"cat": None, "dog": None}
    assert written["voc_style_ap_50_95"] == {"AP": None, "AP50": None, "AP75": None}


# --- eval_voc --iou-threshold --------------------------------------------------------------------------------
@pytest.mark.parametrize("value, shown", [("0", "0"), ("-0.5", "-0.5"), ("1.5", "1.5"), ("50", "50"),
                                          ("nan", "nan"), ("inf", "inf")])
def test_iou_threshold_outside_zero_one_is_an_error(value, shown, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # checked before anything is read: no data needed
    assert _run(eval_voc.main, ["--predictions", "missing.json", "--dataset", "x.yaml", "--iou-threshold", value]) \
        == 2
    assert capsys.readouterr().err == (f"error: --iou-threshold {shown} is outside (0, 1]: it is the IoU a detection "
                                       f"needs to match a ground-truth box, e.g. 0.5 (VOC) or 0.7\n")


def test_iou_threshold_one_is_exact_boxes_and_exclusive_one_matches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = voc_folder(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "comp4_det_test_cat.txt").write_text("000001 0.9 11 11 60 60\n")
    (tmp_path / "results" / "comp4_det_test_dog.txt").write_text("000002 0.9 21 21 79 80\n")  # IoU 0.983
    assert _run(eval_voc.main, args + ["--predictions", "results", "--iou-threshold", "1"]) == 0
    assert json.loads((tmp_path / "results.VOC_test.eval_voc.json").read_text())["per_class"] == \
        {"cat": 1.0, "dog": 0.0}
    capsys.readouterr()
    assert _run(eval_voc.main, args + ["--predictions", "results", "--iou-threshold", "1",
                                       "--exclusive-threshold"]) == 2
    assert "error: --iou-threshold 1 with --exclusive-threshold matches nothing (IoU > 1 never holds)" in \
        capsys.readouterr().err


# --- the precision-recall plot -------------------------------------------------------------------------------
def test_a_plot_without_any_curve_warns_nothing(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib: "No artists with labels found to put in legend"
        plot_precision_recall({"cat": ([], [])}, {"cat": math.nan}, tmp_path / "pr.png", "nothing detected")
    assert (tmp_path / "pr.png").stat().st_size > 0


def test_ground_truth_without_any_class_is_named(gt):
    # was: ValueError "max() arg is an empty sequence" from the programs' tables
    nothing = DetectionDataset(dataclasses.replace(gt.data, class_names=[], category_ids=[]))
    for metrics in (voc_metrics, coco_metrics):
        with pytest.raises(UserError, match=r"gt has no classes \(an empty categories list\): nothing to evaluate"):
            metrics(nothing, {})
