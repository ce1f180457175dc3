"""build_detector: torchvision's Faster/Mask R-CNN composed around registry backbones."""
import pytest
import torch
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign

from backbones.errors import UnknownNameError, UserError
from detection import DetectorConfig, build_detector

# small settings so every combination runs in seconds on a CPU
SMALL = dict(num_classes=3, min_size=96, max_size=128, rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=50,
             rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=30, box_batch_size_per_image=32,
             box_representation_size=64)


def _batch():
    images = [torch.rand(3, 96, 112), torch.rand(3, 80, 96)]
    targets = []
    for img in images:
        h, w = img.shape[1:]
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        masks[0, 10:50, 20:60] = 1
        masks[1, 30:70, 40:90] = 1
        targets.append({"boxes": torch.tensor([[20., 10, 60, 50], [40, 30, 90, 70]]),
                        "labels": torch.tensor([1, 3]), "masks": masks})
    return images, targets


@pytest.mark.parametrize("neck", ["fpn", "c4"])
@pytest.mark.parametrize("mask", [False, True])
def test_train_and_eval_forward(neck, mask):
    torch.manual_seed(0)
    model = build_detector(backbone="resnet18", neck=neck, mask=mask, **SMALL)
    assert isinstance(model, MaskRCNN if mask else FasterRCNN)
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    expected = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} | (
        {"loss_mask"} if mask else set())
    assert set(losses) == expected and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # every trainable parameter (backbone, RPN, and for C4 the res5 box head) gets a gradient
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for o, img in zip(out, images):
        assert o["boxes"].shape[1] == 4 and o["scores"].shape == o["labels"].shape
        if mask:
            assert o["masks"].shape[1:] == (1, *img.shape[1:])


def test_8bit_images_give_what_their_float_copies_give():
    """The data pipeline hands over 8-bit images (a quarter of the bytes through DataLoader workers); the
    transform scales them to [0, 1] itself: same losses and detections as the float image, exactly."""
    torch.manual_seed(0)
    model = build_detector(backbone="resnet18", mask=True, **SMALL)
    images, targets = _batch()
    eight_bit = [(im * 255).round().to(torch.uint8) for im in images]
    as_float = [im.float() / 255 for im in eight_bit]
    model.train()
    torch.manual_seed(1)
    losses = model(eight_bit, targets)
    torch.manual_seed(1)
    assert losses == model(as_float, targets)
    model.eval()
    with torch.no_grad():
        out, expected = model(eight_bit), model(as_float)
    for a, b in zip(out, expected):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(im.dtype == torch.uint8 for im in eight_bit)  # the caller's images are left as they were


@pytest.mark.parametrize("neck", ["fpn", "c4"])
def test_mask_upsample_channels_sets_the_predictor_deconv_width(neck):
    model = build_detector(backbone="resnet18", neck=neck, mask=True, mask_upsample_channels=48, **SMALL)
    deconv, logits = model.roi_heads.mask_predictor.conv5_mask, model.roi_heads.mask_predictor.mask_fcn_logits
    assert (deconv.out_channels, logits.in_channels, logits.out_channels) == (48, 48, 4)
    default = build_detector(backbone="resnet18", neck=neck, mask=True, **SMALL)
    assert default.roi_heads.mask_predictor.conv5_mask.out_channels == 256  # Mask R-CNN's


@pytest.mark.parametrize("backbone", ["resnet50", "vgg16", "plain34"])
@pytest.mark.parametrize("neck", ["fpn", "c4"])
def test_every_backbone_family_builds_both_necks(backbone, neck):
    model = build_detector(backbone=backbone, neck=neck, mask=True, **SMALL)
    images, targets = _batch()
    losses = model(images[:1], targets[:1])
    assert len(losses) == 5 and torch.isfinite(sum(losses.values()))
    assert model.roi_heads.box_predictor.cls_score.out_features == SMALL["num_classes"] + 1


def test_fpn_is_built_from_the_backbones_reported_shapes():
    model = build_detector(backbone="resnet50", neck="fpn", **SMALL)
    fpn = model.backbone.fpn
    assert isinstance(fpn, FeaturePyramidNetwork)
    assert [b[0].in_channels for b in fpn.inner_blocks] == [256, 512, 1024, 2048]
    assert model.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))
    assert model.roi_heads.box_roi_pool.featmap_names == ["res2", "res3", "res4", "res5"]
    vgg = build_detector(backbone="vgg16", neck="fpn", **SMALL).backbone.fpn
    assert [b[0].in_channels for b in vgg.inner_blocks] == [256, 512, 512]


def test_c4_is_the_papers_design():
    model = build_detector(backbone="resnet50", neck="c4", mask=True, **SMALL)
    # shared trunk ends at res4 (stride 16); res5 runs per RoI
    assert model.backbone.stage_names[-1] == "res4" and model.backbone.out_channels == 1024
    assert not hasattr(model.backbone, "layer4")
    pool = model.roi_heads.box_roi_pool
    assert isinstance(pool, MultiScaleRoIAlign) and pool.featmap_names == ["res4"] and pool.output_size == (14, 14)
    res5 = model.roi_heads.box_head[0]
    assert res5[0].conv3.out_channels == 2048 and model.roi_heads.mask_head is res5  # shared weights
    assert model.roi_heads.box_predictor.cls_score.in_features == 2048
    vgg = build_detector(backbone="vgg16", neck="c4", **SMALL)
    assert vgg.backbone.stage_names[-1] == "conv5" and vgg.roi_heads.box_roi_pool.output_size == (7, 7)


def test_fine_tuning_and_scratch_defaults(tmp_path, monkeypatch):
    import torchvision
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from backbones import get_entry
    path = get_entry("resnet18").pretrained["torchvision"].cache_path()
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    tuned = build_detector(backbone="resnet18", pretrained="torchvision", **SMALL)
    assert (tuned.config.norm, tuned.config.freeze_at) == ("frozen_bn", 2)
    frozen = {n.split(".")[2] for n, p in tuned.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "layer1"}
    assert tuned.transform.image_mean == [0.485, 0.456, 0.406]
    scratch = build_detector(backbone="resnet18", **SMALL)
    assert (scratch.config.norm, scratch.config.freeze_at, scratch.config.pretrained) == ("gn", 0, "none")
    assert all(p.requires_grad for p in scratch.parameters())


def test_bad_options_list_the_choices():
    with pytest.raises(UnknownNameError, match="unknown neck 'c5'.*c4, fpn"):
        build_detector(backbone="resnet18", neck="c5", **SMALL)
    with pytest.raises(UnknownNameError, match="unknown backbone 'resnet19'"):
        build_detector(backbone="resnet19", **SMALL)
    with pytest.raises(UnknownNameError, match="unknown model option 'num_class'. Did you mean 'num_classes'"):
        build_detector(backbone="resnet18", num_class=3)
    with pytest.raises(UserError, match="num_classes must be a positive integer"):
        build_detector(backbone="resnet18", **{**SMALL, "num_classes": 0})


def test_config_round_trip_rebuilds_the_same_architecture():
    model = build_detector(backbone="resnet18", neck="c4", mask=True, **SMALL)
    again = build_detector(DetectorConfig.from_dict(model.config.to_dict()))
    assert again.config == model.config
    assert list(again.state_dict()) == list(model.state_dict())
