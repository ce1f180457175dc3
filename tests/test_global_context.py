"""The paper's global context in the box head (Appendix B; detection/global_context.py)."""
import pytest
import torch

from detection import build_detector
from detection.global_context import ContextPredictor, ContextRoIPool, _Split

SMALL = dict(backbone="resnet18", num_classes=3, min_size=128, max_size=128, rpn_pre_nms_top_n_train=100,
             rpn_post_nms_top_n_train=30, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=30,
             box_batch_size_per_image=16, box_representation_size=64, mask_head_layers=(16,))


def test_each_roi_feature_is_followed_by_its_own_images_context():
    split = _Split()
    split.counts = [2, 1]
    predictor = ContextPredictor(2, 2, split)
    with torch.no_grad():
        predictor.predictor.cls_score.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0]]))
        predictor.predictor.cls_score.bias.zero_()
    x = torch.tensor([[1.0, 2], [3, 4], [10, 20], [5, 6], [30, 40]])  # image 1: 2 RoIs + context; image 2: 1 + 1
    logits, deltas = predictor(x)
    assert logits.tolist() == [[1, 10], [3, 10], [5, 30]] and deltas.shape == (3, 8)


def test_the_pooler_adds_each_images_whole_box_as_its_last_roi():
    seen = {}

    def pool(features, boxes, shapes):
        seen["boxes"] = boxes
        return torch.cat(boxes)

    split = _Split()
    out = ContextRoIPool(pool, split)({}, [torch.tensor([[1.0, 2, 3, 4]]), torch.zeros(0, 4)], [(50, 60), (70, 80)])
    assert split.counts == [1, 0]
    assert [b.tolist() for b in seen["boxes"]] == [[[1, 2, 3, 4], [0, 0, 60, 50]], [[0, 0, 80, 70]]]
    assert out.shape == (3, 4)


@pytest.mark.parametrize("neck", ["fpn", "c4"])
def test_trained_end_to_end_and_combined_with_box_refinement(neck):
    torch.manual_seed(0)
    model = build_detector(neck=neck, mask=True, global_context=True, box_refinement=True, **SMALL)
    predictor = model.roi_heads.box_predictor.predictor
    width = 64 if neck == "fpn" else 512  # the box head's output: FPN's MLP, or res5 of ResNet-18
    assert predictor.cls_score.in_features == 2 * width and predictor.cls_score.out_features == 4
    images = [torch.rand(3, 128, 128), torch.rand(3, 112, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([2]),
                "masks": torch.ones(1, *im.shape[1:], dtype=torch.uint8)} for im in images]
    model.train()
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert predictor.cls_score.weight.grad[:, width:].abs().sum() > 0  # the context half is trained
    model.eval()
    with torch.no_grad():
        out = model(images)
    for o, im in zip(out, images):
        assert o["masks"].shape == (len(o["boxes"]), 1, *im.shape[1:])
