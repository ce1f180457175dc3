"""Weight-name layouts: detectron2, Caffe2/MSRA (BGR) and timm <-> ours, checked by outputs."""
import pickle

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision

import backbones
from backbones.conversions import ConversionError, detect_layout
from backbones.conversions.caffe2 import from_caffe2, to_caffe2
from backbones.conversions.colour import swap_rgb_bgr
from backbones.conversions.detectron2 import from_detectron2, to_detectron2
from backbones.conversions.timm import from_timm, to_timm


def _randomised(name, **options):
    """A backbone with random weights *and* random BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    net = backbones.build(name, **options).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


def _features(net, x):
    with torch.no_grad():
        return net(x)["res5"], net.classify(x)


def _close(a, b):
    return torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


# --- detectron2 ---------------------------------------------------------------------------

# Written by hand from detectron2's ResNet module names (stem.conv1 + norm, resN.B.convK + norm,
# shortcut, linear): the reference the table in backbones.conversions.detectron2 must agree with.
DETECTRON2_NAMES = {
    "conv1.weight": "stem.conv1.weight",
    "bn1.weight": "stem.conv1.norm.weight",
    "bn1.running_var": "stem.conv1.norm.running_var",
    "layer1.0.conv1.weight": "res2.0.conv1.weight",
    "layer1.0.bn1.bias": "res2.0.conv1.norm.bias",
    "layer1.0.bn3.running_mean": "res2.0.conv3.norm.running_mean",
    "layer1.0.downsample.0.weight": "res2.0.shortcut.weight",
    "layer1.0.downsample.1.weight": "res2.0.shortcut.norm.weight",
    "layer3.5.conv2.weight": "res4.5.conv2.weight",
    "layer4.2.bn3.weight": "res5.2.conv3.norm.weight",
    "fc.weight": "linear.weight",
    "fc.bias": "linear.bias",
}


def test_detectron2_names_match_the_hand_written_reference():
    ours = _randomised("resnet50").state_dict()
    theirs = to_detectron2(ours)
    renamed = dict(zip([k for k in ours if not k.endswith("num_batches_tracked")], theirs))
    assert {k: renamed[k] for k in DETECTRON2_NAMES} == DETECTRON2_NAMES
    assert len(theirs) == len(renamed) and all(torch.equal(theirs[renamed[k]], ours[k]) for k in renamed)
    basic = to_detectron2(backbones.build("resnet18").state_dict())
    assert "res2.0.conv2.norm.weight" in basic and not any("shortcut" in k for k in basic if k.startswith("res2."))
    assert "res3.0.shortcut.norm.running_mean" in basic


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_detectron2_round_trip_is_the_identity_and_gives_identical_outputs(name):
    net = _randomised(name)
    ours = net.state_dict()
    back = from_detectron2(to_detectron2(ours))
    assert back.keys() == {k for k in ours if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(back[k], ours[k]) for k in back)
    twin = backbones.build(name).eval()  # same norm implementation: outputs must be bit-identical
    backbones.pretrained.load_into(twin, back, "round trip")
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(_features(twin, x), _features(net, x)):
        assert torch.equal(a, b)


def test_from_detectron2_extracts_the_backbone_of_fpn_and_c4_detectors():
    ours = _randomised("resnet50").state_dict()
    plain = to_detectron2(ours)
    heads = {"proposal_generator.rpn_head.conv.weight": torch.zeros(1), "pixel_mean": torch.zeros(3, 1, 1),
             "roi_heads.box_predictor.cls_score.weight": torch.zeros(81, 1024)}
    fpn = {**{"backbone.bottom_up." + k: v for k, v in plain.items() if not k.startswith("linear")},
           "backbone.fpn_lateral2.weight": torch.zeros(1), "backbone.fpn_output5.bias": torch.zeros(1), **heads}
    c4 = {**{("roi_heads." if k.startswith("res5") else "backbone.") + k: v for k, v in plain.items()
             if not k.startswith("linear")}, **heads}
    want = {k: v for k, v in ours.items() if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
    for checkpoint in (fpn, c4):
        got = from_detectron2(checkpoint)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def test_detectron2_names_of_other_models_are_refused():
    with pytest.raises(ConversionError, match="features.0.weight"):
        to_detectron2(backbones.build("vgg16").state_dict())  # VGG has no detectron2 layout
    with pytest.raises(ConversionError, match="res2.0.conv2_offset.weight"):
        from_detectron2({"stem.conv1.weight": torch.zeros(1), "res2.0.conv2_offset.weight": torch.zeros(1)})


def test_against_detectron2_itself():
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.STRIDE_IN_1X1 = 50, False
    cfg.MODEL.RESNETS.OUT_FEATURES, cfg.MODEL.BACKBONE.FREEZE_AT = ["res2", "res3", "res4", "res5"], 0
    reference = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    ours = _randomised("resnet50", num_classes=0)
    reference.load_state_dict(to_detectron2(ours.state_dict()), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _close(reference(x)["res5"], ours(x)["res5"])


# --- Caffe2 / MSRA ------------------------------------------------------------------------

def _msra_blobs(seed=0):
    """Random MSRA-style ResNet-50 blobs: Caffe2 names, AffineChannel norms, conv1_b, solver state."""
    rng = np.random.default_rng(seed)
    net = backbones.build("resnet50", stride_in_1x1=True)
    blobs = {}
    for name, value in to_caffe2(net.state_dict()).items():
        if name.endswith("_w") and value.dim() == 4:
            fan_in = value[0].numel()
            blobs[name] = rng.normal(0, np.sqrt(1 / fan_in), value.shape).astype(np.float32)
        elif name.endswith("_bn_s"):
            blobs[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        else:
            blobs[name] = rng.normal(0, 0.1, value.shape).astype(np.float32)
    blobs["conv1_b"] = np.full(64, 1e-9, np.float32)  # in MSRA's file; Detectron ignores it
    blobs["res2_0_branch2a_w_momentum"] = np.zeros_like(blobs["res2_0_branch2a_w"])
    return blobs


def _caffe_resnet50(blobs, x):
    """MSRA's ResNet-50 straight from the blobs: BGR 0-255 minus mean in, stride in the first 1x1."""
    w = {k: torch.from_numpy(v) for k, v in blobs.items()}

    def affine(x, name):  # Caffe2's AffineChannel
        return x * w[name + "_bn_s"].view(1, -1, 1, 1) + w[name + "_bn_b"].view(1, -1, 1, 1)

    def conv_affine(x, name, stride=1, padding=0):
        return affine(F.conv2d(x, w[name + "_w"], stride=stride, padding=padding), name)
    x = affine(F.conv2d(x, w["conv1_w"], stride=2, padding=3), "res_conv1")
    x = F.max_pool2d(F.relu(x), 3, 2, 1)
    for stage, depth in zip(range(2, 6), (3, 4, 6, 3)):
        for b in range(depth):
            p, stride = f"res{stage}_{b}", 2 if stage > 2 and b == 0 else 1
            y = F.relu(conv_affine(x, p + "_branch2a", stride))
            y = F.relu(conv_affine(y, p + "_branch2b", 1, 1))
            y = conv_affine(y, p + "_branch2c")
            x = F.relu(y + (conv_affine(x, p + "_branch1", stride) if b == 0 else x))
    logits = x.mean((2, 3)) @ w["fc1000_w"].T + w["fc1000_b"]
    return x, logits


def test_msra_weights_on_rgb_equal_the_caffe_model_on_bgr(tmp_path):
    blobs = _msra_blobs()
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:
        pickle.dump(blobs, f, protocol=4)
    net = backbones.build("resnet50", pretrained=f"msra:{path}").eval()
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer2[0].conv2.stride == (1, 1)  # stride_in_1x1
    assert net.weights_options == {"stride_in_1x1": True}

    rgb = torch.rand(2, 3, 64, 64)  # what our detector feeds: RGB in [0, 1]
    mean, std = torch.tensor(net.pixel_mean).view(1, 3, 1, 1), torch.tensor(net.pixel_std).view(1, 3, 1, 1)
    caffe_input = rgb.flip(1) * 255 - torch.tensor([103.530, 116.280, 123.675]).view(1, 3, 1, 1)
    with torch.no_grad():
        want_res5, want_logits = _caffe_resnet50(blobs, caffe_input)
        got_res5, got_logits = _features(net, (rgb - mean) / std)
    assert _close(got_res5, want_res5) and _close(got_logits, want_logits)


def test_msra_weights_match_detectron2s_own_caffe2_loading(tmp_path):
    from detectron2.checkpoint.c2_model_loading import align_and_update_state_dicts
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone
    cfg = get_cfg()  # detectron2's defaults are MSRA's: STRIDE_IN_1X1 True, FrozenBN
    cfg.MODEL.RESNETS.OUT_FEATURES, cfg.MODEL.BACKBONE.FREEZE_AT = ["res5"], 0
    reference = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    blobs = _msra_blobs()
    tensors = {k: torch.from_numpy(v) for k, v in blobs.items()}
    state = align_and_update_state_dicts(reference.state_dict(), tensors, c2_conversion=True)
    assert {k for k in reference.state_dict() if not k.endswith(("running_mean", "running_var"))} <= state.keys()
    reference.load_state_dict(state, strict=False)  # FrozenBN fills in mean 0, variance 1
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:
        pickle.dump(blobs, f, protocol=4)
    net = backbones.build("resnet50", pretrained=f"msra:{path}").eval()
    rgb = torch.rand(1, 3, 64, 64)
    mean, std = torch.tensor(net.pixel_mean).view(1, 3, 1, 1), torch.tensor(net.pixel_std).view(1, 3, 1, 1)
    bgr = rgb.flip(1) * 255 - torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        # detectron2 gives affine norms variance 1, not 1 - eps: a 1/sqrt(1 + 1e-5) scale per norm
        got, want = net((rgb - mean) / std)["res5"], reference(bgr)["res5"]
    assert torch.allclose(got, want, rtol=2e-3, atol=2e-3 * float(want.abs().max()))


def test_caffe2_round_trip_folds_batchnorm_exactly():
    net = _randomised("resnet50")
    blobs = to_caffe2(net.state_dict())
    assert {"conv1_w", "res_conv1_bn_s", "res2_0_branch2a_w", "res2_0_branch2a_bn_b", "res2_0_branch1_w",
            "res5_2_branch2c_bn_s", "fc1000_w"} <= blobs.keys()
    assert not any(k.endswith(("_rm", "_riv")) for k in blobs)  # folded into the affine pair
    twin = backbones.build("resnet50", norm="frozen_bn").eval()
    backbones.pretrained.load_into(twin, from_caffe2(blobs), "round trip")
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(_features(twin, x), _features(net, x)):
        assert _close(a, b)


def test_affine_only_norms_compute_exactly_scale_and_shift():
    blobs = {"conv1_w": torch.randn(64, 3, 7, 7), "res_conv1_bn_s": torch.rand(64) + 0.5,
             "res_conv1_bn_b": torch.randn(64)}
    state = from_caffe2(blobs)
    norm = torchvision.ops.misc.FrozenBatchNorm2d(64)
    norm.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("bn1.")})
    x = torch.randn(2, 64, 5, 5)
    scale, shift = blobs["res_conv1_bn_s"].view(1, -1, 1, 1), blobs["res_conv1_bn_b"].view(1, -1, 1, 1)
    assert torch.equal(norm(x), x * scale + shift)


def test_swapping_colour_twice_is_the_identity():
    state = backbones.build("resnet18").state_dict()
    swapped = swap_rgb_bgr(state)
    assert torch.equal(swapped["conv1.weight"], state["conv1.weight"][:, [2, 1, 0]])
    assert torch.equal(swap_rgb_bgr(swapped)["conv1.weight"], state["conv1.weight"])
    assert all(torch.equal(swapped[k], state[k]) for k in state if k != "conv1.weight")
    vgg = backbones.build("vgg16").state_dict()  # the first conv is found by its 3 input channels
    assert torch.equal(swap_rgb_bgr(vgg)["features.0.weight"], vgg["features.0.weight"].flip(1))


# --- timm and layout detection --------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_timm_weights_give_timms_outputs(name):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False).eval()
    ours = backbones.build(name, norm="frozen_bn").eval()
    backbones.pretrained.load_into(ours, from_timm(reference.state_dict()), "timm")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours.classify(x), reference(x))
    assert to_timm(ours.state_dict()).keys() == {k for k in reference.state_dict()
                                                 if not k.endswith("num_batches_tracked")}


def test_timm_variants_are_named():
    with pytest.raises(ConversionError, match="deep stem"):
        from_timm({"conv1.0.weight": torch.zeros(1)})


def test_layouts_are_told_from_names():
    state = backbones.build("resnet18").state_dict()
    assert detect_layout(state) == "torchvision"
    assert detect_layout(to_detectron2(state)) == "detectron2"
    assert detect_layout({"backbone.bottom_up." + k: v for k, v in to_detectron2(state).items()}) == "detectron2"
    assert detect_layout(to_caffe2(state)) == "caffe2"
    assert detect_layout(backbones.build("vgg16").state_dict()) == "torchvision"
