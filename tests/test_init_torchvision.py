"""torchvision's COCO detectors as --init starting points (detection.init.torchvision_models).

Parity: torchvision's own model, built by its own builder as it is with its COCO_V1 weights (the weights
replaced by seeded random ones, made non-trivial so that there are detections), and ours, built from
``torchvision_source(name, weights=FILE)`` on the file torchvision's ``state_dict()`` gives, detect the
same boxes, scores, labels and masks on real photographs (tests/data, see its README).
"""
import dataclasses
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import _api as tv_api
from torchvision.models import detection as tvd
from torchvision.ops.misc import FrozenBatchNorm2d

from backbones.errors import UserError
from detection.detector import DetectorConfig, build_detector
from detection.init.source import InitSource
from detection.init.torchvision_models import TORCHVISION_MODELS, torchvision_source

DATA = Path(__file__).parent / "data"
IMAGES = ["coco_000000128372_320x214.jpg", "coco_000000343934_320x240.jpg"]
# Scores to 1e-4, mask probabilities to 2e-4, boxes to 1e-3 px on these 320-512 px inputs (3e-6 of the
# image): our frozen BN runs inference as one fused batch-norm kernel where torchvision multiplies and adds,
# which rounds differently in the last bits, and box regression scales that by the box size (measured:
# boxes 5e-4 px, scores 1.3e-5, masks 1.0e-4)
TOL = {"boxes": 1e-3, "scores": 1e-4, "masks": 2e-4}
SMALL = dict(min_size=320, max_size=512)  # the photographs' own size: fast on 2 CPU cores
PROPOSALS, DETECTIONS = 100, 30  # per image at test time (torchvision's 1000, 100): v2's conv box head is slow on CPU


def _make_fast(*models, resize=True):
    """The same smaller sizes and counts for both models (the settings themselves are compared before)."""
    for model in models:
        if resize:
            model.transform.min_size, model.transform.max_size = (SMALL["min_size"],), SMALL["max_size"]
        model.rpn._post_nms_top_n = dict(model.rpn._post_nms_top_n, testing=PROPOSALS)
        model.roi_heads.detections_per_img = DETECTIONS


@pytest.fixture(scope="module")
def images():
    return [torch.from_numpy(np.asarray(Image.open(DATA / name).convert("RGB")).copy()).permute(2, 0, 1)
            .float().div(255) for name in IMAGES]


def _randomise(model, images, seed):
    """Seeded random weights that make a working detector: BatchNorm statistics measured on the images
    (so activations stay in range), heads drawn wide enough that some classes pass the score threshold."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.momentum = None  # running statistics = the average over the calibration batches
                m.reset_running_stats()
        model.eval()
        model.backbone.train()  # measure the backbone's (and v2's FPN) BatchNorm statistics on the photographs
        model.transform.min_size, model.transform.max_size = (SMALL["min_size"],), SMALL["max_size"]
        batch, _ = model.transform(images)
        model.backbone(batch.tensors)
        model.eval()
        heads = model.roi_heads
        nn.init.normal_(model.rpn.head.cls_logits.weight, std=0.1, generator=g)
        nn.init.normal_(heads.box_predictor.cls_score.weight, std=0.02, generator=g)
        nn.init.normal_(heads.box_predictor.cls_score.bias, std=2.0, generator=g)
        nn.init.normal_(heads.box_predictor.bbox_pred.weight, std=0.01, generator=g)
        if heads.has_mask():
            nn.init.normal_(heads.mask_predictor.mask_fcn_logits.weight, std=0.1, generator=g)


def _torchvision_file(name, images, path, seed=0):
    """torchvision's model with random weights, saved as torchvision's file layout (its state_dict())."""
    torch.manual_seed(seed)
    model = getattr(tvd, name)(weights=None, weights_backbone=None, num_classes=91)
    _randomise(model, images, seed)
    state = model.state_dict()
    torch.save(state, path)
    return path, state


def _torchvision_with_weights(name, state, monkeypatch):
    """torchvision's own builder with its COCO_V1 weights (FrozenBatchNorm, eps 0 for v1 ...), given
    ``state`` instead of downloading them."""
    with monkeypatch.context() as patch:
        patch.setattr(tv_api.WeightsEnum, "get_state_dict", lambda self, *args, **kwargs: state)
        return getattr(tvd, name)(weights="COCO_V1").eval()


def _max_diff(ours, theirs, key):
    a, b = ours[key].float(), theirs[key].float()
    assert a.shape == b.shape, key
    return (a - b).abs().max().item() if a.numel() else 0.0


def _compare(name, ours, theirs, images):
    with torch.no_grad():
        got, want = ours(images), theirs(images)
    worst = {}
    for g, w in zip(got, want):
        assert len(g["boxes"]) == len(w["boxes"]) > 0
        assert torch.equal(g["labels"], w["labels"])
        for key in ("boxes", "scores") + (("masks",) if "masks" in w else ()):
            worst[key] = max(worst.get(key, 0.0), _max_diff(g, w, key))
    print(f"{name}: {[len(w['boxes']) for w in want]} detections, max differences {worst}")
    assert all(v <= TOL[k] for k, v in worst.items()), worst
    return worst


def _module_types(model, prefix):
    return {n: type(m) for n, m in model.named_modules() if n.startswith(prefix)}


# v1 boxes and v2 masks by default; the other two (same code paths) with the slow tests
@pytest.mark.parametrize("name", [n if n in ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2")
                                  else pytest.param(n, marks=pytest.mark.slow) for n in TORCHVISION_MODELS])
def test_same_detections_as_torchvision(name, images, tmp_path, monkeypatch):
    path, state = _torchvision_file(name, images, tmp_path / f"{name}.pth")
    theirs = _torchvision_with_weights(name, state, monkeypatch)
    source = torchvision_source(name, weights=str(path))
    assert isinstance(source, InitSource)
    assert source.config.num_classes == len(source.class_names) == 90
    ours = build_detector(source.config, load_pretrained=False).eval()
    ours.load_state_dict(source.state_dict)  # strict: every key

    # the same architecture: heads and FPN module by module, the backbone's norms (kind and eps)
    for prefix in ("backbone.fpn", "rpn", "roi_heads"):
        assert _module_types(ours, prefix) == _module_types(theirs, prefix), prefix
    # (ours is a subclass of torchvision's FrozenBatchNorm2d with a fused inference kernel)
    norms = {n: (isinstance(m, FrozenBatchNorm2d), m.eps) for n, m in theirs.backbone.body.named_modules()
             if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))}
    ours_norms = {n: (isinstance(m, FrozenBatchNorm2d), m.eps) for n, m in ours.backbone.body.named_modules()
                  if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))}
    assert ours_norms == norms
    trainable = {n for n, p in theirs.backbone.body.named_parameters() if p.requires_grad}
    assert {n for n, p in ours.backbone.body.named_parameters() if p.requires_grad} == trainable
    # the same settings: input normalisation and sizes, RPN and box post-processing
    for attr in ("min_size", "max_size", "image_mean", "image_std", "size_divisible"):
        assert getattr(ours.transform, attr) == getattr(theirs.transform, attr), attr
    for part, attrs in ((lambda m: m.rpn, ("_pre_nms_top_n", "_post_nms_top_n", "nms_thresh", "score_thresh",
                                            "min_size")),
                        (lambda m: m.roi_heads, ("score_thresh", "nms_thresh", "detections_per_img")),
                        (lambda m: m.roi_heads.box_coder, ("weights", "bbox_xform_clip"))):
        for attr in attrs:
            assert getattr(part(ours), attr) == getattr(part(theirs), attr), attr

    _make_fast(ours, theirs)
    _compare(name, ours, theirs, images)


@pytest.mark.slow
def test_same_detections_at_torchvision_sizes(images, tmp_path, monkeypatch):
    """At 800 (at most 1333), the sizes the source's config keeps, for the most complex of the four."""
    name = "maskrcnn_resnet50_fpn_v2"
    path, state = _torchvision_file(name, images, tmp_path / f"{name}.pth", seed=1)
    theirs = _torchvision_with_weights(name, state, monkeypatch)
    source = torchvision_source(name, weights=str(path))
    ours = build_detector(source.config, load_pretrained=False).eval()
    ours.load_state_dict(source.state_dict)
    assert ours.transform.min_size == (800,) and ours.transform.max_size == 1333
    _make_fast(ours, theirs, resize=False)
    _compare(name, ours, theirs, images[:1])


def _fake_file(path, shapes, **changes):
    """A tiny file with torchvision's keys and shapes: every tensor a zero broadcast to its shape (one
    stored number each), enough for everything but the forward pass."""
    state = {k: torch.zeros(()).expand(shape) if shape else torch.tensor(0) for k, shape in shapes.items()}
    state.update(changes)
    torch.save(state, path)
    return path


def _shapes(name):
    from detection.init import torchvision_models
    return torchvision_models._expected(name)


def test_default_weights_come_from_the_torch_hub_cache(tmp_path, monkeypatch):
    name = "maskrcnn_resnet50_fpn_v2"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = tvd.MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url
    cached = tmp_path / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    _fake_file(cached, _shapes(name))
    source = torchvision_source(name)
    assert source.name == name and "COCO_V1" in source.description
    assert set(source.state_dict) == set(_shapes(name))
    assert source.class_names == tuple(tvd.MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"][1:])
    # the same with the enum's name or member
    assert torchvision_source(name, "COCO_V1").config == source.config
    assert torchvision_source(name, tvd.MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1).config == source.config


def test_offline_download_names_the_url_and_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    url = tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url
    with pytest.raises(UserError) as err:
        torchvision_source("fasterrcnn_resnet50_fpn")
    message = str(err.value)
    assert url in message and str(tmp_path / "hub" / "checkpoints" / Path(url).name) in message
    assert "--init fasterrcnn_resnet50_fpn:FILE" in message and "\n" not in message


def test_class_names_are_torchvision_coco_slots():
    from detection.init import torchvision_models
    categories = tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    config = torchvision_models._config("maskrcnn_resnet50_fpn", tvd.MaskRCNN_ResNet50_FPN_Weights.COCO_V1)
    assert config.num_classes == 90 and config.mask and config.backbone_norm_eps == 0.0
    assert categories[0] == "__background__" and categories.count("N/A") == 10
    # label l is class_names[l - 1], which is COCO's category id l (person 1, toothbrush 90)
    names = categories[1:]
    assert names[0] == "person" and names[89] == "toothbrush" and names[11] == "N/A"  # id 12 is unused


def test_the_configs_keep_todays_defaults_and_are_validated():
    default = DetectorConfig()
    assert (default.rpn_conv_depth, default.box_head, default.head_norm, default.backbone_norm_eps,
            default.freeze_norm) == (1, "mlp", None, None, True)
    for bad in (dict(box_head="conv"), dict(head_norm="frozen_bn"), dict(rpn_conv_depth=0),
                dict(backbone_norm_eps=-1.0), dict(neck="c4", box_head="4conv1fc"), dict(neck="c4", head_norm="bn")):
        with pytest.raises(UserError):
            DetectorConfig(**bad).validate()


def test_group_norm_heads_build_and_run():
    """head_norm gn: GroupNorm after the FPN, 4conv1fc and mask head convs (a small model, one pass)."""
    model = build_detector(backbone="resnet18", mask=True, num_classes=3, fpn_channels=64, min_size=96,
                           max_size=128, box_head="4conv1fc", head_norm="gn", rpn_conv_depth=2,
                           box_representation_size=64, mask_head_layers=(64, 64)).eval()
    assert isinstance(model.backbone.fpn.inner_blocks[0][1], nn.GroupNorm)
    assert isinstance(model.roi_heads.box_head[0][1], nn.GroupNorm)
    assert isinstance(model.roi_heads.mask_head[0][1], nn.GroupNorm)
    assert len(model.rpn.head.conv) == 2
    with torch.no_grad():
        model([torch.rand(3, 96, 128)])


def test_older_torchvision_names_are_renamed():
    """Files saved by older torchvision (its COCO_V1 ones) name some convs without the Conv2dNormActivation
    level; torchvision renames them when loading, and so do we."""
    from detection.init import torchvision_models
    name = "maskrcnn_resnet50_fpn"
    old = {}
    for k, shape in _shapes(name).items():
        k = k.replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        for block in ("inner_blocks", "layer_blocks"):
            for i in range(4):
                k = k.replace(f"backbone.fpn.{block}.{i}.0.", f"backbone.fpn.{block}.{i}.")
        for i in range(4):
            k = k.replace(f"roi_heads.mask_head.{i}.0.", f"roi_heads.mask_head.mask_fcn{i + 1}.")
        old[k] = torch.zeros(()).expand(shape)
    assert "rpn.head.conv.weight" in old and "roi_heads.mask_head.mask_fcn4.bias" in old
    assert set(torchvision_models._to_ours(name, old, "old file")) == set(_shapes(name))


# --- bad input: each a UserError whose one line names the fix ------------------------------------------

def _error(*args, **kwargs):
    with pytest.raises(UserError) as err:
        torchvision_source(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_model_lists_the_valid_ones():
    message = _error("fasterrcnn_resnet101_fpn")
    assert all(name in message for name in TORCHVISION_MODELS)


def test_unknown_weights_name_lists_the_valid_ones():
    message = _error("maskrcnn_resnet50_fpn", weights="COCO_V2")
    assert "COCO_V1" in message and "nor an existing file" in message


@pytest.mark.parametrize("content, expected", [
    ("backbone", "backbone-only weights"),
    ("classifier", "ImageNet classifier"),
    ("other_model", "fasterrcnn_resnet50_fpn's weights; use --init fasterrcnn_resnet50_fpn:FILE"),
    ("mask_of_faster", "maskrcnn_resnet50_fpn's weights"),
    ("checkpoint", "not a state dict of tensors"),
    ("classes", "a model for 2 classes + background"),
    ("missing", "1 of its tensors missing (e.g. roi_heads.box_predictor.bbox_pred.bias)"),
    ("detectron2", "a detectron2 checkpoint"),
])
def test_a_file_that_is_not_the_models_weights_is_described(content, expected, tmp_path):
    name = "fasterrcnn_resnet50_fpn_v2" if content == "other_model" else "fasterrcnn_resnet50_fpn"
    path = tmp_path / "weights.pth"
    full = _shapes("fasterrcnn_resnet50_fpn")
    if content == "backbone":
        _fake_file(path, {k: v for k, v in full.items() if k.startswith("backbone.body.")})
    elif content == "classifier":
        _fake_file(path, {k.replace("backbone.body.", ""): v for k, v in full.items()
                          if k.startswith("backbone.body.")}, **{"fc.weight": torch.zeros(1000, 2048)})
    elif content == "other_model":
        _fake_file(path, full)
    elif content == "mask_of_faster":
        _fake_file(path, _shapes("maskrcnn_resnet50_fpn"))
    elif content == "checkpoint":
        torch.save({"model": {"a": torch.zeros(1)}, "iteration": 3}, path)
    elif content == "classes":
        _fake_file(path, full, **{"roi_heads.box_predictor.cls_score.weight": torch.zeros(3, 1024),
                                  "roi_heads.box_predictor.cls_score.bias": torch.zeros(3)})
    elif content == "missing":
        _fake_file(path, {k: v for k, v in full.items() if k != "roi_heads.box_predictor.bbox_pred.bias"})
    else:
        _fake_file(path, {"backbone.bottom_up.stem.conv1.weight": (64, 3, 7, 7),
                          "proposal_generator.rpn_head.conv.weight": (256, 256, 3, 3)})
    message = _error(name, weights=str(path))
    assert expected in message and str(path) in message


def test_a_file_that_runs_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(Evil(), protocol=2))
    assert "not a PyTorch weight file that can be loaded safely" in _error("maskrcnn_resnet50_fpn", weights=str(path))


def test_right_after_init_coco_classes_keep_torchvisions_outputs(images, tmp_path, monkeypatch):
    """A dog/person/unicorn dataset started from fasterrcnn_resnet50_fpn: dog and person give the logits and box
    deltas of torchvision's COCO model for COCO's dog (id 18) and person (id 1), unicorn starts fresh."""
    from detection.init.surgery import transplant
    path, state = _torchvision_file("fasterrcnn_resnet50_fpn", images, tmp_path / "tv.pth")
    theirs = _torchvision_with_weights("fasterrcnn_resnet50_fpn", state, monkeypatch)
    source = torchvision_source("fasterrcnn_resnet50_fpn", str(path))
    classes = ("dog", "Person", "unicorn")
    torch.manual_seed(3)
    ours = build_detector(dataclasses.replace(source.config, num_classes=3), load_pretrained=False)
    report = transplant(ours, source.state_dict, source.class_names, classes)
    assert report.classes == [("dog", "dog"), ("Person", "person"), ("unicorn", None)]

    def class_outputs(model):
        model.eval()
        _make_fast(model)
        with torch.no_grad():
            batch, _ = model.transform(images[:1])
            features = model.backbone(batch.tensors)
            proposals, _ = model.rpn(batch, features)
            heads = model.roi_heads
            x = heads.box_head(heads.box_roi_pool(features, [proposals[0][:50]], batch.image_sizes))
            logits, deltas = heads.box_predictor(x)
        return logits, deltas.reshape(len(deltas), -1, 4)
    (our_logits, our_deltas), (tv_logits, tv_deltas) = class_outputs(ours), class_outputs(theirs)
    # a 4-row and a 91-row linear layer sum in different orders, and our frozen BN runs inference as one fused
    # kernel: equal to float rounding (measured 5e-5 on logits of magnitude ~1-10), not bit for bit
    torch.testing.assert_close(our_logits[:, [0, 1, 2]], tv_logits[:, [0, 18, 1]], rtol=0, atol=1e-4)
    torch.testing.assert_close(our_deltas[:, [0, 1, 2]], tv_deltas[:, [0, 18, 1]], rtol=0, atol=1e-4)
    assert (our_logits[:, 3] - tv_logits[:, 2]).abs().max() > 1e-2  # unicorn is no source class's copy
