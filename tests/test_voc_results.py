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


def test_missing_class_file_means_no_detections_and_is_warned_about(tmp_path, capsys):
    write_voc_results(tmp_path, _predictions(), CLASSES, "val")
    results_path(tmp_path, "val", "dog").unlink()
    back = read_voc_results(tmp_path, "val", CLASSES, ["000001", "000002", "000003"])
    assert all((p["labels"] == 1).all() for p in back.values())
    assert capsys.readouterr().err == (f"warning: {tmp_path} has no comp4_det_val_dog.txt: class dog is evaluated "
                                       f"as having no detections\n")


def test_a_folder_without_any_results_file_of_the_split_is_an_error_listing_it(tmp_path):
    # was: every class "without a file", mAP 0.00 and exit 0
    for k in range(7):
        (tmp_path / f"comp3_det_test_class{k}.txt").write_text("000001 0.9 1 1 10 10\n")
    with pytest.raises(UserError) as raised:
        read_voc_results(tmp_path, "test", CLASSES, ["000001"])
    assert str(raised.value) == (
        f"{tmp_path} holds no devkit results files comp4_det_test_<class>.txt (one per class, e.g. "
        f"comp4_det_test_cat.txt); it holds 7 files: comp3_det_test_class0.txt, comp3_det_test_class1.txt, "
        f"comp3_det_test_class2.txt, comp3_det_test_class3.txt, comp3_det_test_class4.txt, ...")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"holds no devkit results files comp4_det_test_<class>.txt .*; it is empty"):
        read_voc_results(empty, "test", CLASSES, ["000001"])


def test_results_files_of_another_split_name_it(tmp_path):
    write_voc_results(tmp_path, _predictions(), CLASSES, "val")
    with pytest.raises(UserError, match=r"it holds 2 files: comp4_det_val_cat.txt, comp4_det_val_dog.txt "
                                        r"\(files of split 'val'\? pass --split val\)"):
        read_voc_results(tmp_path, "test", CLASSES, ["000001", "000002", "000003"])


def test_a_file_of_a_class_the_dataset_lacks_is_warned_about_and_skipped(tmp_path, capsys):
    preds = _predictions()
    write_voc_results(tmp_path, preds, CLASSES, "test")
    (tmp_path / "comp4_det_test_person.txt").write_text("000001 0.9 1 1 10 10\n")
    (tmp_path / "comp4_det_test_cat_2.txt").write_text("")  # a class named cat_2: also not ours
    back = read_voc_results(tmp_path, "test", CLASSES, list(preds))
    assert sum(len(p["scores"]) for p in back.values()) == sum(len(p["scores"]) for p in preds.values())
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {tmp_path / 'comp4_det_test_cat_2.txt'}: cat_2 is not one of the classes (cat, dog); "
        f"its detections are not evaluated",
        f"warning: {tmp_path / 'comp4_det_test_person.txt'}: person is not one of the classes (cat, dog); "
        f"its detections are not evaluated"]


def test_a_byte_order_mark_is_not_part_of_the_first_image_id(tmp_path):
    # was: image '\ufeff000002' is not in the dataset
    path = results_path(tmp_path, "test", "cat")
    path.write_text("\ufeff000002 0.9 1 1 10 10\r\n000001 0.5 2 2 12 12\r\n", encoding="utf-8")
    back = read_voc_results(tmp_path, "test", ["cat"], ["000001", "000002"])
    assert back["000002"]["scores"].tolist() == [0.9] and back["000001"]["scores"].tolist() == [0.5]
    assert back["000002"]["boxes"].tolist() == [[0.0, 0.0, 10.0, 10.0]]


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    # was: UnicodeDecodeError traceback
    results_path(tmp_path, "test", "cat").write_text("000001 0.9 1 1 10 10\n", encoding="utf-16")
    with pytest.raises(UserError, match=r"comp4_det_test_cat.txt is not UTF-8 text \(it looks like UTF-16, as "
                                        r"PowerShell's '>' writes\); save it as UTF-8"):
        read_voc_results(tmp_path, "test", ["cat"], ["000001"])
    results_path(tmp_path, "test", "cat").write_bytes(b"000001 0.9 1 1 10 10 \xe9\n")
    with pytest.raises(UserError, match=r"comp4_det_test_cat.txt is not UTF-8 text \(invalid continuation byte "
                                        r"at byte 21\); save it as UTF-8"):
        read_voc_results(tmp_path, "test", ["cat"], ["000001"])


@pytest.mark.parametrize("line, message", [
    ("000001 0.5 1 1 10\n", r"comp4_det_test_cat.txt:2: expected 'image_id score x1 y1 x2 y2'"),
    ("999999 0.5 1 1 10 10\n", r"comp4_det_test_cat.txt:2: image '999999' is not in split test "
                               r"\(2 images, such as '000001', '000002'\)"),
    ("000001 high 1 1 10 10\n", r"comp4_det_test_cat.txt:2: score and box must be numbers"),
    ("000001 0.5 nan 1 10 10\n", r"comp4_det_test_cat.txt:2: NaN or infinite value"),
    ("000001 0.5 20 1 10 10\n", r"comp4_det_test_cat.txt:2: inverted box"),
])
def test_bad_lines_are_named(tmp_path, line, message):
    results_path(tmp_path, "test", "cat").write_text("000002 0.9 1 1 10 10\n" + line)
    with pytest.raises(UserError, match=message):
        read_voc_results(tmp_path, "test", CLASSES, ["000001", "000002"])
