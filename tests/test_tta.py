"""Test-time augmentation (detection.tta): the wrapper against the model itself, flips, NMS and box voting by
hand, masks, settings, and eval_voc/eval_coco --tta beside the plain evaluation's files."""
import json

import pytest
import torch
from torch import nn
from torchvision.ops import batched_nms

from backbones.errors import UserError
from detection import build_detector
from detection.tta import TTAConfig, TestTimeAugmentation, checkpoint_tta, default_tta, merge_detections, \
    unflip_boxes

SHAPES = ("circle", "square", "triangle", "star", "hexagon")
TINY = dict(backbone="resnet18", neck="fpn", num_classes=3, min_size=64, max_size=96, pretrained="none",
            rpn_post_nms_top_n_test=50, box_representation_size=64, mask_head_layers=[16])


def _images():
    torch.manual_seed(1)
    return [torch.rand(3, 60, 80), torch.rand(3, 70, 50)]


@pytest.fixture(scope="module")
def mask_model():
    torch.manual_seed(0)
    return build_detector(mask=True, **TINY).eval()


@torch.no_grad()
def test_one_scale_without_flip_is_the_model_itself(mask_model):
    images = _images()
    expected = mask_model(images)
    tta = TestTimeAugmentation(mask_model, TTAConfig(scales=(64,), flip=False, merge="nms"))
    assert tta.config is mask_model.config and tta.tta.scales == (64,) and not tta.training
    got = tta(images)
    for e, g, image in zip(expected, got, images):
        assert len(e["boxes"]) > 20  # random weights: many detections
        torch.testing.assert_close(g["boxes"], e["boxes"], atol=1e-5, rtol=0)
        torch.testing.assert_close(g["scores"], e["scores"], atol=1e-5, rtol=0)
        assert torch.equal(g["labels"], e["labels"])
        # masks are recomputed for the (same) boxes mapped back into the resized image
        assert g["masks"].shape == e["masks"].shape == (len(e["boxes"]), 1, *image.shape[-2:])
        torch.testing.assert_close(g["masks"], e["masks"], atol=1e-4, rtol=0)
    assert mask_model.transform.min_size == (64,) and mask_model.transform.max_size == 96
    assert mask_model.roi_heads.mask_roi_pool is not None


@torch.no_grad()
def test_detectron2_compat_models_too():
    """compat: detectron2 resizes and pastes masks its own way; the wrapper uses the model's."""
    torch.manual_seed(0)
    model = build_detector(mask=True, compat="detectron2", **TINY).eval()
    images = _images()[:1]
    expected = model(images)[0]
    got = TestTimeAugmentation(model, TTAConfig(scales=(64,), flip=False, merge="nms"))(images)[0]
    assert len(expected["boxes"]) > 20
    torch.testing.assert_close(got["boxes"], expected["boxes"], atol=1e-5, rtol=0)
    assert torch.equal(got["labels"], expected["labels"])
    torch.testing.assert_close(got["masks"], expected["masks"], atol=1e-4, rtol=0)


class _BrightBoxDetector(nn.Module):
    """A stand-in detector: one box, label 1, score 0.9, around the pixels above 0.5 of each image (continuous
    xyxy: the last column's right edge); it records the images it saw."""

    def __init__(self):
        super().__init__()
        self.transform = type("T", (), {"min_size": (100,), "max_size": 100})()
        self.backbone = nn.Identity()
        self.roi_heads = type("H", (), {"score_thresh": 0.05, "detections_per_img": 100, "mask_roi_pool": None,
                                        "has_mask": lambda self: False})()
        self.seen = []

    def forward(self, images):
        self.seen += [im.clone() for im in images]
        out = []
        for im in images:
            ys, xs = torch.where(im[0] > 0.5)
            box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
            out.append({"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])})
        return out


def test_flipped_detections_are_mapped_back_exactly():
    image = torch.zeros(3, 40, 100)
    image[:, 5:25, 10:30] = 1  # columns 10..29: xyxy (10, 5, 30, 25); flipped: columns 70..89
    model = _BrightBoxDetector().eval()
    for merge in ("nms", "vote"):
        model.seen.clear()
        out = TestTimeAugmentation(model, TTAConfig(scales=(100,), flip=True, merge=merge))([image])[0]
        assert torch.equal(model.seen[1], image.flip(-1)) and len(model.seen) == 2
        assert out["boxes"].tolist() == [[10.0, 5.0, 30.0, 25.0]]
        assert out["scores"].tolist() == [pytest.approx(0.9)] and out["labels"].tolist() == [1]
    # what the flipped pass found, by hand
    assert unflip_boxes(torch.tensor([[70.0, 5.0, 90.0, 25.0]]), 100).tolist() == [[10.0, 5.0, 30.0, 25.0]]


def test_box_voting_by_hand():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [50, 50, 60, 60], [0, 0, 10, 10]],
                         dtype=torch.float32)
    scores = torch.tensor([0.9, 0.6, 0.8, 0.3, 0.5])
    labels = torch.tensor([1, 1, 1, 1, 2])
    # IoU(A, B) = 90/110 >= 0.5: B votes for A; IoU(A, E) = 50/150 and IoU(B, E) = 60/140: E stands alone;
    # the class-2 box at A's place does not vote for A
    got, got_scores, got_labels = merge_detections(boxes, scores, labels, "vote", 0.5)
    a_voted = [(0.9 * 0 + 0.6 * 1) / 1.5, 0.0, (0.9 * 10 + 0.6 * 11) / 1.5, 10.0]  # [0.4, 0, 10.4, 10]
    torch.testing.assert_close(got, torch.tensor([a_voted, [5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]]))
    assert got_scores.tolist() == pytest.approx([0.9, 0.8, 0.5, 0.3]) and got_labels.tolist() == [1, 1, 2, 1]
    # NMS alone keeps the same boxes, unmoved
    kept, _, _ = merge_detections(boxes, scores, labels, "nms", 0.5)
    assert kept.tolist() == [[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]]
    # the model's score threshold and detection limit apply to the merged result
    got, got_scores, _ = merge_detections(boxes, scores, labels, "vote", 0.5, score_thresh=0.4, max_detections=2)
    assert got_scores.tolist() == pytest.approx([0.9, 0.8]) and got[0].tolist() == pytest.approx(a_voted)


@torch.no_grad()
def test_nms_merge_is_batched_nms_over_every_augmentation():
    torch.manual_seed(0)
    model = build_detector(mask=False, **TINY).eval()
    images = _images()
    got = TestTimeAugmentation(model, TTAConfig(scales=(56, 72), flip=True, merge="nms", iou=0.6))(images)
    pooled = [[] for _ in images]
    for scale, max_size in ((56, 84), (72, 108)):  # max_size 96 scaled by scale / 64
        model.transform.min_size, model.transform.max_size = (scale,), max_size
        for flipped in (False, True):
            for found, out, im in zip(pooled, model([im.flip(-1) if flipped else im for im in images]), images):
                boxes = out["boxes"].clone()
                if flipped:
                    boxes[:, 0], boxes[:, 2] = im.shape[-1] - out["boxes"][:, 2], im.shape[-1] - out["boxes"][:, 0]
                found.append((boxes, out["scores"], out["labels"]))
    model.transform.min_size, model.transform.max_size = (64,), 96
    for found, g in zip(pooled, got):
        boxes, scores, labels = (torch.cat(x) for x in zip(*found))
        keep = batched_nms(boxes, scores, labels, 0.6)[:100]
        assert len(boxes) > len(keep) > 20
        torch.testing.assert_close(g["boxes"], boxes[keep], atol=1e-5, rtol=0)
        torch.testing.assert_close(g["scores"], scores[keep], atol=1e-6, rtol=0)
        assert torch.equal(g["labels"], labels[keep])


@torch.no_grad()
def test_masks_in_original_size_and_settings_restored_after_an_error(mask_model):
    images = _images()
    out = TestTimeAugmentation(mask_model, TTAConfig(scales=(48, 80), flip=False))(images)
    for o, im in zip(out, images):
        assert o["masks"].shape == (len(o["boxes"]), 1, *im.shape[-2:]) and len(o["boxes"]) == 100
        assert 0 <= float(o["masks"].min()) and float(o["masks"].max()) <= 1 and float(o["masks"].max()) > 0.5
        assert (o["boxes"][:, 2] <= im.shape[-1] + 1e-4).all() and (o["boxes"][:, 3] <= im.shape[-2] + 1e-4).all()
    heads = mask_model.roi_heads
    heads.score_thresh = 1.0  # nothing detected: empty masks of the image's size
    try:
        out = TestTimeAugmentation(mask_model, TTAConfig(scales=(64,)))(images)
    finally:
        heads.score_thresh = 0.05
    assert [tuple(o["masks"].shape) for o in out] == [(0, 1, 60, 80), (0, 1, 70, 50)]

    def fail(*args):
        raise RuntimeError("out of memory")
    backbone, mask_model.backbone.forward = mask_model.backbone.forward, fail
    try:
        with pytest.raises(RuntimeError):
            TestTimeAugmentation(mask_model, TTAConfig(scales=(128,)))(images)
    finally:
        mask_model.backbone.forward = backbone
    assert mask_model.transform.min_size == (64,) and mask_model.transform.max_size == 96
    assert heads.mask_roi_pool is not None
    with pytest.raises(UserError, match="for inference"):
        TestTimeAugmentation(mask_model.train(), TTAConfig(scales=(64,)))(images)
    mask_model.eval()


@pytest.mark.parametrize("values, message", [
    ({"scales": []}, "test.tta.scales=[] (--tta-scales): must be a non-empty list"),
    ({"scales": [800, -1]}, "test.tta.scales=[800, -1] (--tta-scales): -1 is not a size"),
    ({"scales": [800.5]}, "800.5 is not a size"),
    ({"scales": 800}, "test.tta.scales=800 (--tta-scales): must be a non-empty list"),
    ({"scales": [800], "merge": "mean"}, "test.tta.merge='mean' (--tta-merge): must be nms (per-class NMS) or vote"),
    ({"scales": [800], "iou": 0}, "test.tta.iou=0 (--tta-iou): must be in (0, 1]"),
    ({"scales": [800], "iou": 1.5}, "test.tta.iou=1.5 (--tta-iou): must be in (0, 1]"),
    ({"scales": [800], "flip": "yes"}, "test.tta.flip='yes' (--no-tta-flip): must be true or false"),
    ({"scale": [800]}, "unknown key in test.tta 'scale'. Did you mean 'scales'?"),
    ({"merge": "nms"}, "test.tta needs scales"),
])
def test_bad_settings_name_the_key(values, message):
    with pytest.raises(UserError) as err:
        TTAConfig.from_dict(values)
    assert message in str(err.value)


def test_settings_from_the_config_file_the_checkpoint_and_flags(tmp_path):
    from detection.config import load_config
    from detection.detector import DetectorConfig
    assert TTAConfig.from_dict({"scales": [800], "iou": 1}).iou == 1  # 1: only identical boxes merge
    path = tmp_path / "cfg.yaml"
    path.write_text("test: {tta: {scales: [160, 192, 224], flip: true, merge: vote}}\n")
    config = load_config(path)
    assert config.to_dict()["test"] == {"tta": {"scales": [160, 192, 224], "flip": True, "merge": "vote"}}
    path.write_text("test: {tta: {scales: [160, 0]}}\n")
    with pytest.raises(UserError, match=r"cfg.yaml: test.tta.scales=\[160, 0\] \(--tta-scales\): 0 is not a size"):
        load_config(path)

    model = DetectorConfig(min_size=(160, 192), max_size=333)
    assert default_tta(model) == TTAConfig(scales=(154, 192, 230), flip=True, merge="vote", iou=0.5)
    assert checkpoint_tta({"data": {}}, model, True) == default_tta(model)
    assert checkpoint_tta({"data": {}}, model, None) is None and checkpoint_tta(None, model, False) is None
    saved = {"test": {"tta": {"merge": "nms", "flip": False}}}
    assert checkpoint_tta(saved, model, True) == TTAConfig(scales=(154, 192, 230), flip=False, merge="nms")
    assert checkpoint_tta(saved, model, {"scales": [100]}) == TTAConfig(scales=(100,), flip=False, merge="nms")
    with pytest.raises(UserError, match="the checkpoint's test.tta.iou=2"):
        checkpoint_tta({"test": {"tta": {"iou": 2}}}, model, True)


def _tool(name, *args):
    import importlib
    importlib.import_module(f"detection.cli.{name}").main([str(a) for a in args])


def test_eval_tools_with_tta_write_their_own_files(small_shapes, tmp_path, capsys):
    from detection.engine.checkpoint import save_checkpoint
    torch.manual_seed(0)
    model = build_detector(mask=False, **{**TINY, "num_classes": len(SHAPES), "max_size": 64})
    # the checkpoint's own test-time augmentation: one scale, its test size, no flip: the model itself
    ckpt = save_checkpoint(tmp_path / "model.pth", model, SHAPES, range(1, 6), iteration=1, train_config={
        "data": {"train": "shapes"}, "test": {"tta": {"scales": [64], "flip": False, "merge": "nms"}}})
    _tool("eval_voc", "--checkpoint", ckpt, "--device", "cpu")
    plain = {p.name: p.read_bytes() for p in tmp_path.glob("model.shapes_val.*") if p.is_file()}
    assert set(plain) == {"model.shapes_val.predictions.json", "model.shapes_val.eval_voc.json",
                          "model.shapes_val.pr_voc.png"}
    _tool("eval_voc", "--checkpoint", ckpt, "--device", "cpu", "--tta")
    printed = capsys.readouterr().out
    assert "shorter side 64, merged per class by NMS at IoU 0.5" in printed
    assert {p.name: p.read_bytes() for p in tmp_path.glob("model.shapes_val.*") if p.is_file()
            and ".tta." not in p.name} == plain
    tta = tmp_path / "model.shapes_val.tta.predictions.json"
    assert json.loads(tta.read_text()) == json.loads(plain["model.shapes_val.predictions.json"])
    voc = json.loads((tmp_path / "model.shapes_val.tta.eval_voc.json").read_text())
    assert voc["source"] == str(tta) and voc["mAP"] == json.loads(plain["model.shapes_val.eval_voc.json"])["mAP"]
    assert (tmp_path / "model.shapes_val.tta.pr_voc.png").is_file()
    assert len(list((tmp_path / "model.shapes_val.tta.voc_results").glob("comp4_det_*.txt"))) == 5
    # flags over the checkpoint's settings (flip: false stays): two scales, box voting
    _tool("eval_coco", "--checkpoint", ckpt, "--device", "cpu", "--tta-scales", 48, 64, "--tta-merge", "vote")
    assert "shorter side 48, 64, merged per class by box voting at IoU 0.5" in capsys.readouterr().out
    coco = json.loads((tmp_path / "model.shapes_val.tta.eval_coco.json").read_text())
    assert 0 <= coco["bbox"]["AP"] <= 1 and not (tmp_path / "model.shapes_val.eval_coco.json").exists()
    assert json.loads(tta.read_text()) != json.loads(plain["model.shapes_val.predictions.json"])
