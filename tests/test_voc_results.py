"""VOC devkit results files (comp4_det_<split>_<class>.txt): write, read back, bad lines."""
import numpy as np
import pytest

from backbones.errors import UserError
from detection.evaluation.voc import evaluate_voc, to_voc_boxes
from detection.evaluation.voc_results import read_voc_results, results_path, write_voc_results

CLASSES = ["cat", "dog"]


def _predictions():
    rng = np.random.default_rng(0)
    preds = {}
    for image_id in ("000001", "000002", "000003"):
        n = 4
        xy = rng.uniform(0, 50, (n, 2)).round(2)
        preds[image_id] = {"boxes": np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2)).round(2)], axis=1),
                           "scores": rng.random(n).round(6), "labels": rng.integers(1, 3, n)}
    preds["000003"] = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, np.int64)}
    return preds


def test_round_trip_and_same_ap(tmp_path):
    preds = _predictions()
    paths = write_voc_results(tmp_path, preds, CLASSES, "test")
    assert paths == [tmp_path / "comp4_det_test_cat.txt", tmp_path / "comp4_det_test_dog.txt"]
    first = paths[0].read_text().splitlines()[0].split()
    assert first[0] in preds and len(first) == 6
    back = read_voc_results(tmp_path, "test", CLASSES, list(preds))
    for image_id, pred in preds.items():
        order = np.lexsort((pred["scores"], pred["labels"]))  # files group detections by class
        got = back[image_id]
        order_back = np.lexsort((got["scores"], got["labels"]))
        assert np.allclose(got["boxes"][order_back], pred["boxes"][order], atol=1e-9)
        assert np.array_equal(got["labels"][order_back], pred["labels"][order])
    truth = {i: {"boxes": to_voc_boxes(p["boxes"][:2]), "labels": p["labels"][:2]} for i, p in preds.items()}
    in_memory = {i: {**p, "boxes": to_voc_boxes(p["boxes"])} for i, p in preds.items()}
    from_files = {i: {**p, "boxes": to_voc_boxes(p["boxes"])} for i, p in back.items()}
    assert evaluate_voc(from_files, truth, CLASSES)["mAP"] == pytest.approx(
        evaluate_voc(in_memory, truth, CLASSES)["mAP"], abs=1e-12)


def test_missing_class_file_means_no_detections(tmp_path):
    write_voc_results(tmp_path, _predictions(), CLASSES, "val")
    results_path(tmp_path, "val", "dog").unlink()
    back = read_voc_results(tmp_path, "val", CLASSES, ["000001", "000002", "000003"])
    assert all((p["labels"] == 1).all() for p in back.values())


@pytest.mark.parametrize("line, message", [
    ("000001 0.5 1 1 10\n", r"comp4_det_test_cat.txt:2: expected 'image_id score x1 y1 x2 y2'"),
    ("999999 0.5 1 1 10 10\n", r"comp4_det_test_cat.txt:2: image '999999' is not in the dataset"),
    ("000001 high 1 1 10 10\n", r"comp4_det_test_cat.txt:2: score and box must be numbers"),
    ("000001 0.5 nan 1 10 10\n", r"comp4_det_test_cat.txt:2: NaN or infinite value"),
    ("000001 0.5 20 1 10 10\n", r"comp4_det_test_cat.txt:2: inverted box"),
])
def test_bad_lines_are_named(tmp_path, line, message):
    results_path(tmp_path, "test", "cat").write_text("000002 0.9 1 1 10 10\n" + line)
    with pytest.raises(UserError, match=message):
        read_voc_results(tmp_path, "test", CLASSES, ["000001", "000002"])
