"""The detectron2 plugin against detectron2's real Python code.

In CI (and after ``make install``) detectron2 is not built from its repository:
tools/fetch_detectron2.py unpacks detectron2 0.6's Python package (and its
model-zoo configs) from PyPI's pb1-detectron2==0.6 source distribution, which
has no C++ sources, and puts an empty placeholder module in place of the
compiled ``detectron2._C``. So only detectron2's pure-PyTorch paths run here:
RoIAlign and NMS come from torchvision, and deformable convolution, rotated
boxes, the C++ COCO evaluator and everything CUDA are not exercised. The
script also replaces a few aliases newer Pillow/NumPy removed (listed in it).

Each file in configs/detectron2/ is loaded through the plugin's loader (which
resolves its model-zoo ``_BASE_`` in detectron2's bundled configs), shrunk to
64-pixel images and random weights, built into detectron2's GeneralizedRCNN,
trained one SGD step and run once in inference on the CPU.
"""
import math
import pickle
import warnings
from pathlib import Path

import detectron2  # make install installs it (tools/fetch_detectron2.py): a missing detectron2 fails here
import pytest
import torch
import yaml

with warnings.catch_warnings():  # detectron2 0.6 uses torch.jit.script, deprecated in torch 2.x
    warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import GeneralizedRCNN, build_backbone, build_model
    from detectron2.structures import BitMasks, Boxes, Instances
    from detectron2.utils.events import EventStorage

    import detectron2_plugin as bd2
from torch import nn  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

import backbones  # noqa: E402
from backbones.errors import UnknownNameError, UserError  # noqa: E402
from detectron2_plugin.export import main as export_main  # noqa: E402
from detectron2_plugin.plugin import build_c4_roi_stage  # noqa: E402
from detectron2_plugin.train import main as train_main  # noqa: E402

# detectron2 0.6's own: meshgrid without indexing=, logger.warn
pytestmark = [pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning"),
              pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")]

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "detectron2").glob("*.yaml"))
IMAGENET_MEAN_255 = [123.675, 116.28, 103.53]
IMAGENET_STD_255 = [58.395, 57.12, 57.375]
# small and fast: 64-pixel images, few proposals and RoIs, random weights, CPU
SHRINK = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.TRANSFER.PRETRAINED", "none",
          "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64",
          "INPUT.MAX_SIZE_TEST", "64", "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "200", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "50",
          "MODEL.RPN.PRE_NMS_TOPK_TEST", "100", "MODEL.RPN.POST_NMS_TOPK_TEST", "10",
          "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "8", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
          "TEST.DETECTIONS_PER_IMAGE", "10"]


def cfg_for(config="faster_rcnn_R_50_C4_1x.yaml", *opts):
    return bd2.load_config(ROOT / "configs" / "detectron2" / config, SHRINK + list(opts))


def fpn_cfg(name="resnet18", *opts):
    return cfg_for("mask_rcnn_R_50_FPN_1x.yaml", "MODEL.TRANSFER.NAME", name, "MODEL.MASK_ON", "False", *opts)


def c4_cfg(name="resnet18", *opts):
    return cfg_for("faster_rcnn_R_50_C4_1x.yaml", "MODEL.TRANSFER.NAME", name, *opts)


def batch(mask: bool, size=(64, 64)):
    h, w = size
    out = []
    for _ in range(2):
        inst = Instances((h, w))
        inst.gt_boxes = Boxes(torch.tensor([[4.0, 6.0, 40.0, 42.0], [30.0, 10.0, 60.0, 58.0]]))
        inst.gt_classes = torch.tensor([0, 2])
        if mask:
            masks = torch.zeros(2, h, w, dtype=torch.bool)
            masks[0, 6:42, 4:40] = True
            masks[1, 10:58, 30:60] = True
            inst.gt_masks = BitMasks(masks)
        out.append({"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8), "height": h, "width": w,
                    "instances": inst})
    return out


# -- every shipped config: build, one training step, one inference ------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_one_step_and_infers(config):
    cfg = bd2.load_config(config, SHRINK)
    assert cfg.MODEL.BACKBONE.NAME in (bd2.FPN_BUILDER, bd2.C4_BUILDER)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, GeneralizedRCNN)
    bottom_up = model.backbone.bottom_up if cfg.MODEL.BACKBONE.NAME == bd2.FPN_BUILDER else model.backbone
    assert isinstance(bottom_up, bd2.TransferBackbone)
    spec = backbones.resnet.SPECS.get(cfg.MODEL.TRANSFER.NAME)  # the registry's network, e.g. plain34's table row
    assert isinstance(bottom_up.body, backbones.Backbone) and (spec is None or bottom_up.body.spec == spec)
    if cfg.MODEL.BACKBONE.NAME == bd2.C4_BUILDER:
        assert isinstance(model.roi_heads, bd2.TransferC4ROIHeads)

    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.SGD(trainable, lr=1e-3)
    model.train()
    with EventStorage(0):
        losses = model(batch(cfg.MODEL.MASK_ON))
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    assert ("loss_mask" in losses) == cfg.MODEL.MASK_ON
    assert any(not torch.equal(a, p) for a, p in zip(before, trainable))

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8), "height": 96, "width": 128}])
    instances = output["instances"]  # rescaled to the requested output size
    assert isinstance(instances, Instances) and instances.image_size == (96, 128)
    assert {"pred_boxes", "scores", "pred_classes"} <= set(instances.get_fields())
    assert ("pred_masks" in instances.get_fields()) == cfg.MODEL.MASK_ON


def test_configs_inherit_zoo_configs_and_normalise_for_their_weights():
    names = {p.name for p in CONFIGS}
    assert {"faster_rcnn_R_101_FPN_3x.yaml", "mask_rcnn_R_50_FPN_1x.yaml", "faster_rcnn_R_50_C4_1x.yaml",
            "faster_rcnn_plain34_FPN_1x.yaml", "faster_rcnn_vgg16_C4_1x.yaml"} <= names
    cfg = bd2.load_config(ROOT / "configs" / "detectron2" / "faster_rcnn_R_101_FPN_3x.yaml")
    # from detectron2's zoo file (and its Base-RCNN-FPN.yaml) ...
    assert cfg.SOLVER.MAX_ITER == 270000 and cfg.MODEL.RPN.IN_FEATURES == ["p2", "p3", "p4", "p5", "p6"]
    # ... with our backbone swapped in, and torchvision's normalisation
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.TRANSFER.NAME) == (bd2.FPN_BUILDER, "resnet101")
    assert cfg.MODEL.TRANSFER.PRETRAINED == "torchvision" and cfg.MODEL.WEIGHTS == ""
    assert cfg.INPUT.FORMAT == "RGB"
    assert cfg.MODEL.PIXEL_MEAN == pytest.approx(IMAGENET_MEAN_255)
    assert cfg.MODEL.PIXEL_STD == pytest.approx(IMAGENET_STD_255)


# -- detectron2's Backbone contract ---------------------------------------------------------------
def test_fpn_backbone_contract():
    cfg = fpn_cfg("resnet18")
    fpn = build_backbone(cfg)
    bottom_up = fpn.bottom_up
    assert bottom_up.out_features == ["res2", "res3", "res4", "res5"]
    shapes = bottom_up.output_shape()
    assert all(isinstance(s, detectron2.layers.ShapeSpec) for s in shapes.values())
    assert {k: (s.channels, s.stride) for k, s in shapes.items()} == {
        "res2": (64, 4), "res3": (128, 8), "res4": (256, 16), "res5": (512, 32)}
    assert bottom_up.size_divisibility == 0 and fpn.size_divisibility == 32
    assert {k: (s.channels, s.stride) for k, s in fpn.output_shape().items()} == {
        f"p{i}": (256, 2 ** i) for i in range(2, 7)}
    x = torch.randn(1, 3, 64, 96)
    for name, feature in fpn(x).items():
        stride = fpn.output_shape()[name].stride
        assert feature.shape == (1, 256, math.ceil(64 / stride), math.ceil(96 / stride))


def test_vgg16_fpn_uses_its_own_stage_names():
    cfg = fpn_cfg("vgg16", "MODEL.FPN.IN_FEATURES", '["conv3", "conv4", "conv5"]')
    fpn = build_backbone(cfg)
    assert fpn.bottom_up.out_features == ["conv3", "conv4", "conv5"]
    assert fpn.size_divisibility == 16  # conv5_3 is at stride 16 (pool5 dropped)
    assert {k: s.stride for k, s in fpn.output_shape().items()} == {"p2": 4, "p3": 8, "p4": 16, "p5": 32}
    assert set(fpn(torch.randn(1, 3, 64, 64))) == {"p2", "p3", "p4", "p5"}
    with pytest.raises(UserError, match="MODEL.FPN.IN_FEATURES"):  # names must be the backbone's stages
        build_backbone(fpn_cfg("resnet18", "MODEL.FPN.IN_FEATURES", '["conv4", "conv5"]'))


def test_c4_backbone_and_roi_heads_contract():
    cfg = c4_cfg("resnet18")
    model = build_model(cfg)
    assert model.backbone.out_features == ["res4"]
    assert {k: (s.channels, s.stride) for k, s in model.backbone.output_shape().items()} == {"res4": (256, 16)}
    assert model.backbone.size_divisibility == 0
    # res5 of our resnet18 (512 channels), not the 2048-channel one Res5ROIHeads would build
    assert model.roi_heads.res5(torch.randn(3, 256, 14, 14)).shape == (3, 512, 7, 7)
    assert model.roi_heads.box_predictor.cls_score.in_features == 512
    # VGG-16's fully connected C4 head (built alone: the whole model would build VGG-16 twice)
    with pytest.raises(UserError, match="mask branch"):
        build_c4_roi_stage(cfg_for("faster_rcnn_vgg16_C4_1x.yaml", "MODEL.MASK_ON", "True"))
    with pytest.raises(UserError, match="POOLER_RESOLUTION 7"):
        build_c4_roi_stage(cfg_for("faster_rcnn_vgg16_C4_1x.yaml", "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "14"))


# -- freeze_at, norm, stride_in_1x1 ------------------------------------------------------------------
def test_freeze_at_follows_detectron2():
    fpn = build_backbone(fpn_cfg("resnet18", "MODEL.BACKBONE.FREEZE_AT", "2", "MODEL.RESNETS.NORM", "BN"))
    body = fpn.bottom_up.body
    for frozen in (body.conv1, body.bn1, body.layer1):
        assert not any(p.requires_grad for p in frozen.parameters())
    assert isinstance(body.bn1, FrozenBatchNorm2d) and isinstance(body.layer1[0].bn1, FrozenBatchNorm2d)
    assert all(p.requires_grad for p in body.layer2.parameters())
    assert type(body.layer2[0].bn1) is nn.BatchNorm2d

    # C4: FREEZE_AT counts trunk stages; 5 freezes the whole trunk, never the per-RoI res5
    model = build_model(c4_cfg("resnet18", "MODEL.BACKBONE.FREEZE_AT", "5"))
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.roi_heads.res5.parameters())


def test_norm_setting():
    gn = build_backbone(fpn_cfg("resnet18", "MODEL.RESNETS.NORM", "GN", "MODEL.BACKBONE.FREEZE_AT", "0"))
    assert isinstance(gn.bottom_up.body.bn1, nn.GroupNorm)
    sync = build_backbone(fpn_cfg("resnet18", "MODEL.RESNETS.NORM", "SyncBN", "MODEL.BACKBONE.FREEZE_AT", "0"))
    assert isinstance(sync.bottom_up.body.layer3[0].bn1, nn.SyncBatchNorm)
    with pytest.raises(UnknownNameError, match="MODEL.RESNETS.NORM"):
        build_backbone(fpn_cfg("resnet18", "MODEL.RESNETS.NORM", "LN"))


def test_stride_in_1x1():
    def res3_strides(value):
        body = build_backbone(fpn_cfg("resnet50", "MODEL.RESNETS.STRIDE_IN_1X1", value)).bottom_up.body
        return body.layer2[0].conv1.stride, body.layer2[0].conv2.stride
    assert res3_strides("True") == ((2, 2), (1, 1))
    assert res3_strides("False") == ((1, 1), (2, 2))
    # torchvision's weights stride in the 3x3: refused before anything is downloaded
    with pytest.raises(UserError, match="STRIDE_IN_1X1 False"):
        build_backbone(fpn_cfg("resnet50", "MODEL.TRANSFER.PRETRAINED", "torchvision",
                               "MODEL.RESNETS.STRIDE_IN_1X1", "True"))


# -- config mistakes ------------------------------------------------------------------------------------
def test_unknown_backbone_name_suggests_registry_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet50'"):
        cfg_for("mask_rcnn_R_50_FPN_1x.yaml", "MODEL.TRANSFER.NAME", "resnet05")
    cfg = fpn_cfg()
    cfg.MODEL.TRANSFER.NAME = "resnt101"  # set after loading: the builder says the same
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet101'"):
        build_model(cfg)


def test_normalisation_follows_the_weights():
    msra = cfg_for("faster_rcnn_R_50_C4_1x.yaml", "MODEL.TRANSFER.PRETRAINED", "msra")
    # MSRA's Caffe weights: detectron2's usual values, in RGB order (the registry makes BGR weights read RGB)
    assert msra.INPUT.FORMAT == "RGB" and msra.MODEL.PIXEL_MEAN == pytest.approx([123.675, 116.28, 103.53])
    assert msra.MODEL.PIXEL_STD == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(UserError, match="STRIDE_IN_1X1 True"):  # before anything is downloaded
        build_backbone(msra)
    # without weights the config's own values stay (the zoo's BGR defaults here)
    scratch = cfg_for("faster_rcnn_R_50_C4_1x.yaml")
    assert scratch.INPUT.FORMAT == "BGR" and scratch.MODEL.PIXEL_STD == [1.0, 1.0, 1.0]


def test_mismatched_normalisation_and_weights_are_refused():
    cfg = fpn_cfg("resnet18", "MODEL.TRANSFER.PRETRAINED", "torchvision")
    cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = "BGR", [103.53, 116.28, 123.675], [1.0, 1.0, 1.0]
    with pytest.raises(UserError, match="set_input_normalization"):
        build_backbone(cfg)
    cfg = fpn_cfg("resnet18", "MODEL.TRANSFER.PRETRAINED", "torchvision",
                  "MODEL.WEIGHTS", "detectron2://ImageNetPretrained/MSRA/R-50.pkl")
    with pytest.raises(UserError, match="MODEL.WEIGHTS"):
        build_backbone(cfg)


# -- a user's own config ---------------------------------------------------------------------------------
def test_users_own_config_with_our_keys(tmp_path):
    own = tmp_path / "my_faster_rcnn.yaml"
    own.write_text("_BASE_: COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml\n"
                   "MODEL:\n  WEIGHTS: ''\n  BACKBONE: {NAME: build_transfer_fpn_backbone}\n"
                   "  TRANSFER: {NAME: resnet34, PRETRAINED: none}\nSOLVER: {BASE_LR: 0.01}\n")
    child = tmp_path / "child.yaml"  # a local base of a local base of the zoo file
    child.write_text("_BASE_: my_faster_rcnn.yaml\nSOLVER: {MAX_ITER: 10}\n")
    cfg = bd2.load_config(child, ["MODEL.DEVICE", "cpu"])
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS) == (0.01, 10, (60000, 80000))
    assert isinstance(build_backbone(cfg).bottom_up.body, backbones.resnet.ResNet)

    # plain detectron2 style: get_cfg(), our keys, merge the zoo file, set the normalisation
    cfg = get_cfg()
    bd2.add_transfer_config(cfg)
    cfg.merge_from_file(bd2.zoo_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.merge_from_list(["MODEL.WEIGHTS", "", "MODEL.BACKBONE.NAME", bd2.FPN_BUILDER,
                         "MODEL.TRANSFER.NAME", "resnet34", "MODEL.TRANSFER.PRETRAINED", "torchvision",
                         "MODEL.DEVICE", "cpu"])
    bd2.set_input_normalization(cfg)
    assert cfg.INPUT.FORMAT == "RGB" and cfg.MODEL.PIXEL_MEAN == pytest.approx(IMAGENET_MEAN_255)
    cfg.MODEL.TRANSFER.PRETRAINED = "none"  # no download in the tests
    assert build_backbone(cfg).bottom_up.out_features == ["res2", "res3", "res4", "res5"]

    (tmp_path / "typo.yaml").write_text("_BASE_: COCO-Detection/faster_rcnn_R_50_FPN_1X.yaml\n")
    with pytest.raises(UserError, match="Did you mean 'COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml'"):
        bd2.load_config(tmp_path / "typo.yaml")
    (tmp_path / "bad_key.yaml").write_text("_BASE_: my_faster_rcnn.yaml\nMODEL: {TRANSFER: {NAMES: resnet50}}\n")
    with pytest.raises(UserError, match="NAMES"):
        bd2.load_config(tmp_path / "bad_key.yaml")


# -- weights: detectron2 names, export, DetectionCheckpointer ---------------------------------------------------
@pytest.fixture(scope="module")
def r18_weights(tmp_path_factory):
    """A resnet18 'pretrained' file with non-trivial weights and BN statistics."""
    torch.manual_seed(1)
    net = backbones.build("resnet18")
    state = {k: (torch.randn_like(v) if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    state = {k: (v.abs() + 0.5 if k.endswith("running_var") else v) for k, v in state.items()}
    path = tmp_path_factory.mktemp("weights") / "r18.pth"
    torch.save(state, path)
    return path, state


def _ours(state, prefix=""):
    return {k: v for k, v in state.items() if k.startswith(prefix) and not k.endswith("num_batches_tracked")}


def test_state_dicts_use_detectron2_resnet_names(tmp_path):
    model = build_model(fpn_cfg("resnet18"))
    keys = set(model.state_dict())
    assert {"backbone.bottom_up.stem.conv1.weight", "backbone.bottom_up.stem.conv1.norm.running_var",
            "backbone.bottom_up.res2.0.conv1.norm.weight", "backbone.bottom_up.res3.0.shortcut.weight",
            "backbone.bottom_up.res3.0.shortcut.norm.bias"} <= keys
    assert not any(".body." in k or "layer1" in k for k in keys)
    # detectron2's own checkpointing round-trips through those names
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("model_test")
    other = build_model(fpn_cfg("resnet18"))
    DetectionCheckpointer(other).load(str(tmp_path / "model_test.pth"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key

    # trainable BN keeps its counters, under detectron2's names; strict loading round-trips
    bn = build_backbone(fpn_cfg("resnet18", "MODEL.RESNETS.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0"))
    assert "bottom_up.res3.0.conv1.norm.num_batches_tracked" in bn.state_dict()
    bn.load_state_dict(build_backbone(fpn_cfg("resnet18", "MODEL.RESNETS.NORM", "BN")).state_dict())

    c4 = build_model(c4_cfg("resnet18"))
    keys = set(c4.state_dict())
    assert {"backbone.stem.conv1.weight", "backbone.res4.1.conv2.norm.weight",
            "roi_heads.res5.0.conv1.norm.weight", "roi_heads.res5.0.shortcut.weight"} <= keys


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_exported_fpn_weights_load_as_model_weights(r18_weights, tmp_path, suffix):
    path, state = r18_weights
    out = tmp_path / f"r18{suffix}"
    settings = bd2.export_weights("resnet18", out, pretrained=str(path))
    assert settings["MODEL.TRANSFER.PRETRAINED"] == "none" and settings["INPUT.FORMAT"] == "RGB"
    if suffix == ".pkl":
        data = pickle.loads(out.read_bytes())
        assert data["matching_heuristics"] is True and data["__author__"]
        assert "backbone.bottom_up.res2.0.conv1.norm.running_mean" in data["model"]

    model = build_model(fpn_cfg("resnet18", "MODEL.WEIGHTS", str(out)))
    expected_keys = {k for k in model.state_dict() if k.startswith("backbone.bottom_up.")}
    exported = pickle.loads(out.read_bytes())["model"] if suffix == ".pkl" else torch.load(out)["model"]
    assert set(exported) == expected_keys  # nothing missing, nothing extra
    DetectionCheckpointer(model).load(str(out))
    loaded = model.backbone.bottom_up.body.state_dict()
    for key, value in _ours(state).items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key


def test_exported_weights_fit_detectron2s_own_resnet(r18_weights, tmp_path):
    """The exported names are detectron2's: its stock R18-FPN loads them (no heuristics needed)."""
    path, state = r18_weights
    out = bd2.export_weights("resnet18", tmp_path / "r18.pkl", pretrained=str(path))["MODEL.WEIGHTS"]
    cfg = bd2.load_config(bd2.zoo_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"), [
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", out, "MODEL.RESNETS.DEPTH", "18",
        "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.RESNETS.STRIDE_IN_1X1", "False"])
    model = build_model(cfg)
    assert set(pickle.loads(Path(out).read_bytes())["model"]) == {
        k for k in model.state_dict() if k.startswith("backbone.bottom_up.")}
    DetectionCheckpointer(model).load(out)
    shortcut_norm = model.backbone.bottom_up.res3[0].shortcut.norm
    assert torch.equal(shortcut_norm.running_var, state["layer2.0.downsample.1.running_var"])
    assert torch.equal(model.backbone.bottom_up.stem.conv1.weight, state["conv1.weight"])


def test_exported_c4_weights_load_trunk_and_res5(r18_weights, tmp_path):
    path, state = r18_weights
    out = tmp_path / "r18_c4.pkl"
    settings = bd2.export_weights("resnet18", out, pretrained=str(path), design="c4")
    assert settings["MODEL.ROI_HEADS.NAME"] == "TransferC4ROIHeads"
    model = build_model(c4_cfg("resnet18", "MODEL.WEIGHTS", str(out)))
    expected = {k for k in model.state_dict() if k.startswith(("backbone.", "roi_heads.res5."))}
    assert set(pickle.loads(out.read_bytes())["model"]) == expected
    DetectionCheckpointer(model).load(str(out))
    trunk = model.backbone.body.state_dict()
    res5 = model.roi_heads.res5.inner.state_dict()
    for key, value in _ours(state).items():
        if key.startswith("layer4."):
            assert torch.equal(res5[key[len("layer4."):]], value), key
        elif not key.startswith("fc."):
            assert torch.equal(trunk[key], value), key


# -- the programs (tools/export_detectron2.py, tools/train_detectron2.py) -------------------------------------
def _run(main, *args):
    return main([str(a) for a in args])


def test_export_tool(r18_weights, tmp_path, capsys):
    path, _ = r18_weights
    out = tmp_path / "r18.pkl"
    _run(export_main, "--backbone", "resnet18", "--pretrained", path, "--output", out)
    assert out.is_file() and "MODEL.TRANSFER.PRETRAINED none" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        _run(export_main, "--backbone", "resnet18", "--pretrained", path, "--output", out, "--design", "c5")
    assert exit_info.value.code == 2 and "unknown detector design 'c5'" in capsys.readouterr().err


@pytest.fixture
def tiny_coco(tmp_path):
    """Three 64x64 images in COCO format, one box (and polygon) each."""
    import json

    import numpy as np
    from PIL import Image
    images, annotations = [], []
    for i in range(3):
        pixels = np.full((64, 64, 3), 30 * i, dtype=np.uint8)
        pixels[10:40, 12:44] = (200, 50, 50)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": 64, "width": 64})
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [12, 10, 32, 30],
                            "area": 960, "iscrowd": 0, "segmentation": [[12, 10, 44, 10, 44, 40, 12, 40]]})
    (tmp_path / "tiny.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}))
    return tmp_path


@pytest.mark.slow
def test_train_tool_runs_detectron2s_trainer(tiny_coco, tmp_path):
    out = tmp_path / "run"
    opts = SHRINK + ["MODEL.TRANSFER.NAME", "resnet18", "MODEL.ROI_HEADS.NUM_CLASSES", "1",
                     "DATASETS.TRAIN", '("tiny",)', "DATASETS.TEST", '("tiny",)', "DATALOADER.NUM_WORKERS", "0",
                     "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "2", "SOLVER.WARMUP_ITERS", "1",
                     "OUTPUT_DIR", out]
    _run(train_main, "--config-file", ROOT / "configs" / "detectron2" / "mask_rcnn_R_50_FPN_1x.yaml",
         "--coco-dataset", "tiny", tiny_coco / "tiny.json", tiny_coco, *opts)
    assert (out / "model_final.pth").is_file() and (out / "metrics.json").is_file()
    assert (out / "inference" / "coco_instances_results.json").is_file()  # the evaluation ran (pycocotools)
    saved = yaml.safe_load((out / "config.yaml").read_text())  # the config detectron2 ran with
    assert saved["MODEL"]["BACKBONE"]["NAME"] == bd2.FPN_BUILDER and saved["MODEL"]["TRANSFER"]["NAME"] == "resnet18"


def test_placeholder_extension_explains_itself():
    from detectron2 import _C
    if not getattr(_C, "PLACEHOLDER", False):
        pytest.skip("checks the placeholder detectron2._C of tools/fetch_detectron2.py; this detectron2 is built "
                    "from its repository (compiled _C)")
    with pytest.raises(AttributeError, match="placeholder"):
        _C.box_iou_rotated  # noqa: B018
