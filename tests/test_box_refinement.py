"""The paper's test-time box refinement (Appendix B; detection/box_refinement.py)."""
import math

import pytest
import torch

from backbones.errors import UserError
from detection import build_detector
from detection.box_refinement import BoxRefinementRoIHeads

SMALL = dict(backbone="resnet18", num_classes=3, min_size=128, max_size=128, rpn_pre_nms_top_n_test=100,
             rpn_post_nms_top_n_test=30, box_representation_size=64, mask_head_layers=(16,))


def _known_regression(model, dx):
    """Every RoI: class 1 at logit 10 (others 0), its box moved right by ``dx`` of its width."""
    predictor = model.roi_heads.box_predictor
    with torch.no_grad():
        for layer in (predictor.cls_score, predictor.bbox_pred):
            layer.weight.zero_()
            layer.bias.zero_()
        predictor.cls_score.bias[1] = 10.0
        predictor.bbox_pred.bias[4] = dx * model.roi_heads.box_coder.weights[0]  # class 1's dx, encoded
    return model


@pytest.mark.parametrize("neck", ["fpn", "c4"])
def test_refinement_pools_the_regressed_box_again_and_votes_both(neck):
    torch.manual_seed(0)
    plain = _known_regression(build_detector(neck=neck, **SMALL).eval(), 0.1)
    refined = _known_regression(build_detector(neck=neck, box_refinement=True, **SMALL).eval(), 0.1)
    refined.load_state_dict(plain.state_dict())
    assert isinstance(refined.roi_heads, BoxRefinementRoIHeads)
    image = torch.rand(1, 3, 128, 128)
    proposals, shapes = [torch.tensor([[20.0, 20.0, 60.0, 60.0]])], [(128, 128)]
    with torch.no_grad():
        features = plain.backbone(plain.transform.normalize(image[0])[None])
        once, _ = plain.roi_heads(features, proposals, shapes)
        both, _ = refined.roi_heads(features, proposals, shapes)
    # one pass moves the box by 0.1 of its width (4 px); the second pass, pooled at that box, moves it 4 px
    # more; both score the same, so voting lands halfway
    torch.testing.assert_close(once[0]["boxes"], torch.tensor([[24.0, 20.0, 64.0, 60.0]]))
    torch.testing.assert_close(both[0]["boxes"], torch.tensor([[26.0, 20.0, 66.0, 60.0]]))
    assert both[0]["labels"].tolist() == [1]
    assert math.isclose(both[0]["scores"].item(), math.exp(10) / (math.exp(10) + 3), rel_tol=1e-6)


def test_refinement_changes_inference_only_and_masks_follow_the_merged_boxes():
    torch.manual_seed(0)
    plain = build_detector(mask=True, **SMALL)
    refined = build_detector(mask=True, box_refinement=True, **SMALL)
    refined.load_state_dict(plain.state_dict())
    images = [torch.rand(3, 128, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([2]),
                "masks": torch.ones(1, 128, 128, dtype=torch.uint8)}]
    for model in (plain, refined):
        model.train()
    torch.manual_seed(1)
    expected = plain(images, targets)
    torch.manual_seed(1)
    assert refined(images, targets) == expected  # training: the same losses
    refined.eval()
    with torch.no_grad():
        out = refined(images)[0]
    assert out["masks"].shape == (len(out["boxes"]), 1, 128, 128)
    assert len(out["boxes"]) <= SMALL.get("box_detections_per_img", 100)


def test_refinement_with_detectron2_inference_is_refused():
    with pytest.raises(UserError, match="box_refinement .* cannot be combined with compat: detectron2"):
        build_detector(box_refinement=True, compat="detectron2", **SMALL)


def test_eval_tools_refine_a_checkpoint_trained_without_it_into_their_own_files(small_shapes, tmp_path, capsys):
    import json

    from detection.cli import eval_coco, eval_voc
    from detection.engine.checkpoint import save_checkpoint
    torch.manual_seed(0)
    classes = ("circle", "square", "triangle", "star", "hexagon")
    model = build_detector(**{**SMALL, "num_classes": len(classes), "min_size": 64, "max_size": 64,
                              "pretrained": "none"})
    ckpt = str(save_checkpoint(tmp_path / "model.pth", model, classes, range(1, 6), iteration=1,
                               train_config={"data": {"train": "shapes"}}))
    eval_coco.main(["--checkpoint", ckpt, "--device", "cpu"])
    plain = {p.name: p.read_bytes() for p in tmp_path.glob("model.shapes_val.*") if p.is_file()}
    eval_coco.main(["--checkpoint", ckpt, "--device", "cpu", "--box-refinement"])
    eval_voc.main(["--checkpoint", ckpt, "--device", "cpu", "--box-refinement"])
    assert {p.name: p.read_bytes() for p in tmp_path.glob("model.shapes_val.*")
            if p.is_file() and ".refined." not in p.name} == plain  # the plain evaluation's files untouched
    refined = json.loads((tmp_path / "model.shapes_val.refined.predictions.json").read_text())
    assert refined != json.loads(plain["model.shapes_val.predictions.json"])
    assert json.loads((tmp_path / "model.shapes_val.refined.eval_coco.json").read_text())["source"].endswith(
        "model.shapes_val.refined.predictions.json")
    assert (tmp_path / "model.shapes_val.refined.eval_voc.json").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        eval_coco.main(["--predictions", str(tmp_path / "model.shapes_val.predictions.json"), "--dataset",
                        "shapes_val", "--box-refinement"])
    assert "--box-refinement runs the model: give --checkpoint" in capsys.readouterr().err


def test_eval_refinement_of_a_detectron2_inference_checkpoint_is_refused(small_shapes, tmp_path, capsys):
    from detection.cli import eval_coco
    from detection.engine.checkpoint import save_checkpoint
    classes = ("circle", "square", "triangle", "star", "hexagon")
    model = build_detector(**{**SMALL, "num_classes": len(classes), "pretrained": "none", "compat": "detectron2"})
    ckpt = str(save_checkpoint(tmp_path / "model.pth", model, classes, range(1, 6), iteration=1,
                               train_config={"data": {"train": "shapes"}}))
    with pytest.raises(SystemExit):
        eval_coco.main(["--checkpoint", ckpt, "--device", "cpu", "--box-refinement"])
    assert "box_refinement post-processes torchvision's RoI heads; it cannot be combined with compat: " \
           "detectron2" in capsys.readouterr().err
    assert not list(tmp_path.glob("model.shapes_val.*"))  # nothing written
