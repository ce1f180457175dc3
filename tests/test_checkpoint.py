"""Checkpoints rebuild the same detector; foreign or unsafe files are refused by name."""
import pytest
import torch

from backbones.errors import UserError
from detection import build_detector
from detection.engine.checkpoint import load_detector, save_checkpoint

SMALL = dict(num_classes=2, min_size=64, max_size=96, rpn_post_nms_top_n_test=20, box_representation_size=32)


@pytest.mark.parametrize("neck, mask", [("fpn", True), ("c4", False)])
def test_round_trip_gives_identical_predictions(tmp_path, neck, mask):
    torch.manual_seed(0)
    model = build_detector(backbone="resnet18", neck=neck, mask=mask, box_score_thresh=0.0, **SMALL).eval()
    path = save_checkpoint(tmp_path / "m.pth", model, ["a", "b"], [3, 7], iteration=5)
    assert not (tmp_path / "m.pth.tmp").exists()
    loaded, payload = load_detector(path)
    assert payload["class_names"] == ["a", "b"] and payload["category_ids"] == [3, 7]
    assert payload["iteration"] == 5 and loaded.config == model.config
    image = [torch.rand(3, 64, 80)]
    with torch.no_grad():
        a, b = model(image)[0], loaded(image)[0]
    assert len(a["boxes"]) > 0 and all(torch.equal(a[k], b[k]) for k in a)


def test_missing_and_foreign_checkpoints_are_named(tmp_path):
    with pytest.raises(UserError, match="checkpoint .*nope.pth does not exist"):
        load_detector(tmp_path / "nope.pth")
    plain = tmp_path / "plain.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, plain)
    with pytest.raises(UserError, match="plain.pth is not a detector checkpoint of this toolkit"):
        load_detector(plain)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(UserError, match="notes.pth is not a checkpoint that can be loaded safely"):
        load_detector(text)


def test_checkpoints_that_would_run_code_are_refused(tmp_path, code_running_pickle):
    path = tmp_path / "evil.pth"
    marker = code_running_pickle(path, lambda payload: {"format": "x", "payload": payload})
    with pytest.raises(UserError, match="evil.pth is not a checkpoint that can be loaded safely"):
        load_detector(path)
    assert not marker.exists()
