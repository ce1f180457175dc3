"""The backbone registry: stage contract, torchvision compatibility, shortcut options, weights."""
import urllib.error

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

import backbones
from backbones.errors import UnknownNameError, UserError
from backbones.resnet import SPECS, ZeroPadShortcut

RESNETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
TORCHVISION_MODELS = RESNETS + ["vgg16"]


def test_registry_lists_every_backbone():
    assert backbones.names() == ["plain18", "plain34", "resnet101", "resnet152", "resnet18",
                                 "resnet34", "resnet50", "vgg16", "vgg19"]


def test_stage_specs_are_the_papers_table_1():
    assert {n: (s.block, s.depths) for n, s in SPECS.items() if s.residual} == {
        "resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
        "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
        "resnet152": ("bottleneck", (3, 8, 36, 3))}
    assert SPECS["plain34"].depths == SPECS["resnet34"].depths and not SPECS["plain34"].residual


@pytest.mark.parametrize("name", backbones.names())
def test_stage_outputs_match_reported_shapes(name):
    net = backbones.build(name).eval()
    net.out_features = net.stage_names
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 64, 96))
    assert list(feats) == net.stage_names
    for stage, spec in net.output_shape().items():
        assert feats[stage].shape == (1, spec.channels, 64 // spec.stride, 96 // spec.stride), stage


def test_reported_channels_and_strides():
    shapes = {n: [(s.channels, s.stride) for s in backbones.build(n).stage_shapes().values()]
              for n in ("resnet18", "resnet50", "vgg16")}
    assert shapes["resnet18"] == [(64, 4), (64, 4), (128, 8), (256, 16), (512, 32)]
    assert shapes["resnet50"] == [(64, 4), (256, 4), (512, 8), (1024, 16), (2048, 32)]
    assert shapes["vgg16"] == [(64, 1), (128, 2), (256, 4), (512, 8), (512, 16)]


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_state_dict_loads_unchanged_and_gives_identical_outputs(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)().eval()
    ours = backbones.build(name).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours.classify(x), reference(x))


def test_stage_features_equal_torchvision_intermediate_layers():
    reference = torchvision.models.resnet50().eval()
    ours = backbones.build("resnet50").eval()
    ours.load_state_dict(reference.state_dict())
    getter = torchvision.models._utils.IntermediateLayerGetter(
        reference, {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"})
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        want, got = getter(x), ours(x)
    assert all(torch.equal(want[k], got[k]) for k in want)


def _count(net, kind):
    return sum(isinstance(m, kind) for m in net.modules())


def test_shortcut_options():
    b = backbones.build("resnet34", shortcut="B")
    a = backbones.build("resnet34", shortcut="A")
    c = backbones.build("resnet34", shortcut="C")
    # B projects only where shapes grow: the first block of res3, res4, res5
    assert sum(blk.downsample is not None for blk in b.modules() if hasattr(blk, "downsample")) == 3
    assert _count(a, ZeroPadShortcut) == 3 and not any(isinstance(m, nn.Sequential) and len(m) == 2
                                                       and isinstance(m[0], nn.Conv2d) for m in a.modules())
    assert sum(blk.downsample is not None for blk in c.modules() if hasattr(blk, "downsample")) == 16
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(a) < n(b) < n(c)
    # option A adds no parameters: it equals the plain net's count
    assert n(a) == n(backbones.build("plain34"))


def test_zero_pad_shortcut_subsamples_and_pads():
    x = torch.randn(2, 4, 6, 6)
    y = ZeroPadShortcut(10, 2)(x)
    assert y.shape == (2, 10, 3, 3)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2]) and not y[:, 4:].any()


def test_plain_net_has_no_shortcut_path():
    net = backbones.build("plain18").eval()
    block = net.layer2[0]
    x = torch.randn(1, 64, 16, 16)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(block.branch(x)))
    assert all(getattr(m, "downsample", None) is None for m in net.modules())


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_copies_run_their_own_layers(name):
    import copy
    net = backbones.build(name).eval()
    twin = copy.deepcopy(net)
    for p in twin.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(net(x)[net.out_features[-1]], twin(x)[twin.out_features[-1]])


def test_freeze_at_freezes_stem_and_first_stages():
    net = backbones.build("resnet50", norm="bn", freeze_at=2)
    frozen = {n.split(".")[0] for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "layer1"}  # stem (bn1 became a FrozenBatchNorm2d) and res2
    assert isinstance(net.bn1, FrozenBatchNorm2d) and isinstance(net.layer1[0].bn1, FrozenBatchNorm2d)
    assert isinstance(net.layer2[0].bn1, nn.BatchNorm2d)
    with pytest.raises(UserError, match="freeze_at must be between 0 and 5"):
        backbones.build("resnet18", freeze_at=6)


def test_norm_choices():
    assert _count(backbones.build("resnet18", norm="gn"), nn.GroupNorm) == 20
    assert _count(backbones.build("resnet18", norm="frozen_bn"), FrozenBatchNorm2d) == 20
    with pytest.raises(UnknownNameError, match="unknown norm 'layernorm'.*frozen_bn, gn"):
        backbones.build("resnet18", norm="layernorm")


def test_unknown_names_list_the_choices():
    with pytest.raises(UnknownNameError, match="unknown backbone 'resnet51'. Did you mean 'resnet50'.*vgg16"):
        backbones.build("resnet51")
    with pytest.raises(UnknownNameError, match="unknown option for backbone resnet18 'depth'"):
        backbones.build("resnet18", depth=3)
    with pytest.raises(UnknownNameError, match="unknown shortcut option 'D'"):
        backbones.build("resnet18", shortcut="D")
    with pytest.raises(UserError, match="no published pretrained weights"):
        backbones.build("plain18", pretrained=True)


# --- pretrained weights: torchvision's weights API, cache, offline, local files ---------------

def test_torchvision_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = backbones.get_entry("resnet18").pretrained["torchvision"]
    assert source.cache_path() == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    reference = torchvision.models.resnet18()
    source.cache_path().parent.mkdir(parents=True)
    torch.save(reference.state_dict(), source.cache_path())
    net = backbones.build("resnet18", pretrained="torchvision")
    assert isinstance(net.bn1, FrozenBatchNorm2d)  # fine-tuning default
    assert torch.equal(net.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert net.pixel_mean == (0.485, 0.456, 0.406) and net.pixel_std == (0.229, 0.224, 0.225)


def test_offline_download_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(backbones.PretrainedWeightsUnavailable) as err:
        backbones.build("resnet50", pretrained="torchvision")
    message = str(err.value)
    assert "resnet50-0676ba61.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "--pretrained none" in message


def test_damaged_cached_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = backbones.get_entry("resnet18").pretrained["torchvision"]
    source.cache_path().parent.mkdir(parents=True)
    source.cache_path().write_bytes(b"\x80\x02truncated")
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="resnet18-f37072fd.pth is damaged"):
        backbones.build("resnet18", pretrained="torchvision")


def test_classifiers_of_another_class_count_are_dropped(tmp_path):
    for name, head in (("resnet18", "fc.weight"), ("vgg16", "classifier.6.weight")):
        small = backbones.build(name, num_classes=5)
        path = tmp_path / f"{name}.pth"
        torch.save(small.state_dict(), path)
        loaded = backbones.build(name, pretrained=str(path))
        assert loaded.state_dict()[head].shape[0] == 1000
        assert all(torch.equal(v, small.state_dict()[k]) for k, v in loaded.state_dict().items()
                   if not k.startswith(loaded.classifier_prefix))


def test_local_weight_file(tmp_path):
    reference = torchvision.models.resnet34()
    path = tmp_path / "r34.pth"
    torch.save({"model": reference.state_dict()}, path)
    net = backbones.build("resnet34", pretrained=str(path), norm="gn")  # GroupNorm ignores BN statistics
    assert torch.equal(net.conv1.weight, reference.conv1.weight)
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="do not fit"):
        backbones.build("resnet18", pretrained=str(path))
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="missing.pth does not exist"):
        backbones.build("resnet18", pretrained=str(tmp_path / "missing.pth"))


def test_weight_files_that_would_run_code_are_refused(tmp_path, code_running_pickle):
    path = tmp_path / "evil.pth"
    marker = code_running_pickle(path, lambda payload: {"conv1.weight": payload})
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="evil.pth is not a PyTorch weight file that "
                       "can be loaded safely"):
        backbones.build("resnet18", pretrained=str(path))
    assert not marker.exists()


def test_frozen_bn_inference_kernel_matches_torchvision():
    # our FrozenBatchNorm2d takes one fused kernel where no gradient is needed: same values as torchvision's
    from backbones.norm import FrozenBatchNorm2d as Ours
    torch.manual_seed(0)
    ours, reference = Ours(64), FrozenBatchNorm2d(64)
    for name in ("weight", "bias", "running_mean"):
        getattr(ours, name).normal_()
    ours.running_var.uniform_(0.5, 2.0)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 64, 20, 24) * 3
    with torch.no_grad():
        fused, expected = ours(x), reference(x)
    assert torch.allclose(fused, expected, rtol=1e-6, atol=1e-5) and not torch.equal(fused, x)
    # with gradients, and under bf16 autocast (input dtype differs), it is torchvision's own computation
    x.requires_grad_(True)
    assert torch.equal(ours(x), reference(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = x.detach().bfloat16()
        assert torch.equal(ours(half), reference(half)) and ours(half).dtype == reference(half).dtype
    net = backbones.build("resnet18", norm="frozen_bn")
    assert _count(net, Ours) == 20 and isinstance(ours, FrozenBatchNorm2d)


def test_zero_init_residual_starts_residual_blocks_as_identity_and_leaves_plain_nets_alone():
    import backbones
    resnet = backbones.build("resnet50", norm="bn", zero_init_residual=True)
    last = [block.bn3.weight for stage in (resnet.layer1, resnet.layer2) for block in stage]
    assert all(torch.count_nonzero(w) == 0 for w in last)
    assert torch.all(resnet.layer1[0].bn1.weight == 1)  # only each block's last norm
    plain = backbones.build("plain18", norm="bn", zero_init_residual=True)
    assert all(torch.all(block.bn2.weight == 1) for block in plain.layer1)  # a plain block has no identity
