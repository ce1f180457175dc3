"""tools/eval_coco.py with the default --backend auto: the COCOeval that ran is printed and written to the JSON,
so a number can be traced to its evaluator, and the numbers are pycocotools' own (to 1e-9) either way."""
import sys

import pytest

from test_results_forms import pycocotools_stats, run_eval_coco, segm_results, write_gt

from detection.evaluation.coco import STAT_NAMES


@pytest.mark.parametrize("importable", [True, False])
def test_auto_backend_is_printed_and_recorded_with_the_numbers(tmp_path, monkeypatch, capsys, importable):
    if importable:
        pytest.importorskip("faster_coco_eval")
    else:
        monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # its import raises ImportError
    expected = "faster-coco-eval" if importable else "pycocotools"
    gt = write_gt(tmp_path)
    path, ours = run_eval_coco(tmp_path, gt, segm_results())
    assert ours["backend"] == expected
    assert "backend" not in ours["bbox"] and "backend" not in ours["segm"]  # once, beside source and dataset
    assert f"images of gt ({expected})" in capsys.readouterr().out
    for iou_type in ("bbox", "segm"):
        reference = pycocotools_stats(gt, path, iou_type)
        assert {k: ours[iou_type][k] for k in STAT_NAMES} == pytest.approx(reference, abs=1e-9), iou_type
