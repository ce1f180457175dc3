"""Ensembles of prediction files (detection/ensemble.py, tools/ensemble.py): per-class NMS + box voting."""
import json
import re

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from backbones.errors import UserError
from detection.cli import ensemble as ensemble_cli
from detection.cli import eval_coco
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.ensemble import ensemble_predictions


def _tool_error(argv, capsys) -> str:
    """The one-line error the tool prints (exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        ensemble_cli.main([str(a) for a in argv])
    assert stop.value.code == 2
    return capsys.readouterr().err


def _pred(boxes, scores, labels, rles=None):
    out = {"boxes": np.array(boxes, np.float64).reshape(-1, 4), "scores": np.array(scores, np.float64),
           "labels": np.array(labels, np.int64)}
    if rles is not None:
        out["rles"] = rles
    return out


def test_voting_moves_the_kept_box_to_the_score_weighted_mean_of_its_class():
    a = {1: _pred([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [1, 1])}
    b = {1: _pred([[1, 1, 11, 11], [0, 0, 10, 10]], [0.3, 0.7], [1, 2])}  # IoU 0.68 with a's first; other class
    merged = ensemble_predictions([a, b], "vote", iou=0.5)[1]
    order = np.argsort(-merged["scores"])
    boxes, scores, labels = merged["boxes"][order], merged["scores"][order], merged["labels"][order]
    np.testing.assert_allclose(boxes[0], (0.9 * np.array([0, 0, 10, 10]) + 0.3 * np.array([1, 1, 11, 11])) / 1.2)
    assert scores[0] == 0.9 and labels[0] == 1  # the kept detection's score: the highest of its cluster
    # the class-2 box overlaps exactly but is another class: kept, unmoved; the far class-1 box too
    np.testing.assert_array_equal(boxes[1:], [[50, 50, 60, 60], [0, 0, 10, 10]])
    assert scores[1:].tolist() == [0.8, 0.7] and labels[1:].tolist() == [1, 2]


def test_nms_keeps_the_top_box_unchanged_and_drops_the_overlapping_one():
    a = {1: _pred([[0, 0, 10, 10]], [0.6], [1])}
    b = {1: _pred([[1, 1, 11, 11]], [0.9], [1]), 2: _pred([[5, 5, 9, 9]], [0.4], [3])}
    merged = ensemble_predictions([a, b], "nms", iou=0.5)
    np.testing.assert_array_equal(merged[1]["boxes"], [[1, 1, 11, 11]])
    assert merged[1]["scores"].tolist() == [0.9]
    assert merged[2]["labels"].tolist() == [3]  # an image one model has no detections on is kept as the other's


def test_a_kept_detection_keeps_its_own_mask_and_max_detections_caps_the_image():
    a = {1: _pred([[0, 0, 10, 10], [20, 20, 30, 30]], [0.5, 0.4], [1, 1], rles=["a0", "a1"])}
    b = {1: _pred([[1, 1, 11, 11]], [0.8], [1], rles=["b0"])}
    merged = ensemble_predictions([a, b], "vote", iou=0.5)[1]
    assert merged["rles"] == ["b0", "a1"]
    assert ensemble_predictions([a, b], "vote", iou=0.5, max_detections=1)[1]["rles"] == ["b0"]
    del b[1]["rles"]  # one model without masks: the ensemble has none
    assert "rles" not in ensemble_predictions([a, b])[1]


def test_fewer_than_two_models_is_an_error():
    with pytest.raises(UserError, match="at least two models, got 1"):
        ensemble_predictions([{1: _pred([[0, 0, 1, 1]], [1.0], [1])}])


def _results_file(path, dataset, jitter, seed):
    """Ground truth as detections, boxes jittered by up to ``jitter`` px, with their masks."""
    rng = np.random.default_rng(seed)
    results = []
    for image_id in dataset.image_ids:
        target = dataset.annotations(image_id)
        for box, label, m in zip(target["boxes"], target["labels"], target["masks"]):
            x1, y1, x2, y2 = (np.asarray(box, np.float64) + rng.uniform(-jitter, jitter, 4)).tolist()
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            results.append({"image_id": image_id, "category_id": dataset.category_ids[int(label) - 1],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(rng.uniform(0.5, 1.0)),
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
    path.write_text(json.dumps(results))
    return path


def test_the_tool_writes_a_results_file_eval_coco_scores(small_shapes, tmp_path, capsys):
    dataset = DetectionDataset(load_dataset("shapes_val"), with_masks=True)
    files = [str(_results_file(tmp_path / f"m{i}.json", dataset, 3.0, i)) for i in range(3)]
    out = tmp_path / "ensemble.json"
    ensemble_cli.main([*files, "--dataset", "shapes_val", "--output", str(out)])
    printed = capsys.readouterr().out
    objects = sum(len(dataset.annotations(i)["labels"]) for i in dataset.image_ids)
    assert f"ensemble of 3 models on 8 images of shapes_val (vote, IoU 0.5): " \
           f"{objects} + {objects} + {objects} detections -> {objects}" in printed
    merged = json.loads(out.read_text())
    assert len(merged) == objects and all("segmentation" in r for r in merged)
    scores = {}
    for name in ("m0", "ensemble"):
        source = tmp_path / f"{name}.json"
        eval_coco.main(["--predictions", str(source), "--dataset", "shapes_val",
                        "--output-json", str(tmp_path / f"{name}.eval.json")])
        scores[name] = json.loads((tmp_path / f"{name}.eval.json").read_text())["bbox"]["AP"]
    # three independently jittered copies averaged: boxes closer to the truth than one copy's
    assert scores["ensemble"] > scores["m0"]
    assert "exists; pass --overwrite" in _tool_error([*files, "--dataset", "shapes_val", "--output", out], capsys)


@pytest.mark.parametrize("argv, message", [
    (["--iou", "0"], r"--iou 0 is outside \(0, 1\]"),
    (["--iou", "nan"], r"--iou nan is outside \(0, 1\]"),
    (["--max-detections", "0"], "--max-detections 0: must be at least 1"),
])
def test_bad_settings_are_named(small_shapes, tmp_path, capsys, argv, message):
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    assert re.search(message, _tool_error([*files, "--dataset", "shapes_val", "--output", tmp_path / "o.json",
                                           *argv], capsys))


def test_bad_inputs_are_named_and_nothing_is_written(small_shapes, tmp_path, capsys):
    dataset = DetectionDataset(load_dataset("shapes_val"), with_masks=True)
    good = _results_file(tmp_path / "good.json", dataset, 1.0, 0)
    out = tmp_path / "o.json"
    assert "two or more prediction files, got 1" in _tool_error([good, "--dataset", "shapes_val", "--output", out],
                                                                 capsys)
    assert "missing.json does not exist" in _tool_error(
        [good, tmp_path / "missing.json", "--dataset", "shapes_val", "--output", out], capsys)
    assert "is one of the prediction files" in _tool_error([good, good, "--dataset", "shapes_val", "--output", good],
                                                           capsys)
    assert not out.exists()
