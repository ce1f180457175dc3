"""Our backbone weights as a detectron2 checkpoint, for MODEL.WEIGHTS.

The names are exactly those of the modules the plugin builds, taken from
their state dicts (so they cannot drift): ResNets in detectron2's naming
(``backbones.conversions.detectron2.to_detectron2``), VGG-16 in torchvision's.

- ``design="fpn"``: ``backbone.bottom_up.<name>``, e.g.
  ``backbone.bottom_up.res2.0.conv1.norm.weight``; this also matches
  detectron2's own ResNet FPN backbone (build_resnet_fpn_backbone).
- ``design="c4"``: the trunk as ``backbone.<name>`` and the per-RoI stage as
  ``roi_heads.res5.<name>``, as in detectron2's Res5ROIHeads.

Files: ``.pkl`` is detectron2's model-zoo format ({"model": {name: numpy
array}, "__author__", "matching_heuristics": True}); ``.pth`` holds the same
with tensors. Either loads through DetectionCheckpointer.

The program around it is :mod:`detectron2_plugin.export` (tools/export_detectron2.py).
"""
import pickle
from collections import OrderedDict
from pathlib import Path

from backbones.atomic_files import save_torch, tensor_bytes, write_atomically
from backbones.errors import UserError, check_choice
from backbones.registry import build

from .config import pixel_values
from .plugin import RoIStage, TransferBackbone, _stage_names

DESIGNS = ("fpn", "c4")
AUTHOR = "resnet-detection-transfer"


def export_state_dict(name: str, pretrained="torchvision", design: str = "fpn", norm: str = "frozen_bn",
                      **options) -> "OrderedDict":
    """The detectron2-side state dict of backbone ``name`` with ``pretrained`` weights."""
    return _export(name, pretrained, design, norm, options)[0]


def _export(name, pretrained, design, norm, options):
    check_choice("detector design", design, DESIGNS)
    net = build(name, pretrained=pretrained, norm=norm, **options)
    return _state_dict(net, design), net


def _state_dict(net, design):
    if design == "fpn":
        return TransferBackbone(net.drop_classifier()).state_dict(prefix="backbone.bottom_up.")
    split = net.c4_split()
    state = TransferBackbone(split.trunk).state_dict(prefix="backbone.")
    if split.roi_output == "map":  # ResNets: res5 (see plugin.build_c4_roi_stage)
        stage = RoIStage(split.roi_stage, _stage_names(net, "layer4"))
    else:
        stage = RoIStage(split.roi_stage)
    state.update(stage.state_dict(prefix="roi_heads.res5."))
    return state


def save_checkpoint(state: dict, output, metadata=None) -> Path:
    """Write ``state`` as a detectron2 checkpoint (.pkl or .pth, by the file name)."""
    output = Path(output)
    if output.suffix not in (".pkl", ".pth"):
        raise UserError(f"--output must end in .pkl (detectron2's model-zoo format) or .pth, got {output}")
    tensors = {k: v.detach().cpu() for k, v in state.items()}
    data = {"__author__": AUTHOR, "matching_heuristics": True, "__transfer__": dict(metadata or {})}
    if output.suffix == ".pkl":
        data["model"] = {k: v.numpy() for k, v in tensors.items()}
        return write_atomically(output, lambda tmp: tmp.write_bytes(pickle.dumps(data, protocol=4)),
                                needed=tensor_bytes(tensors))
    data["model"] = tensors
    return save_torch(data, output)


def export_weights(name: str, output, pretrained="torchvision", design: str = "fpn", norm: str = "frozen_bn",
                   **options) -> dict:
    """Export and save; returns the config values that go with the file."""
    state, net = _export(name, pretrained, design, norm, options)
    pixel_mean, pixel_std = pixel_values(net.pixel_mean, net.pixel_std)  # of the weights as loaded (RGB)
    settings = {
        "MODEL.WEIGHTS": str(output),
        "MODEL.BACKBONE.NAME": "build_transfer_fpn_backbone" if design == "fpn" else "build_transfer_c4_backbone",
        "MODEL.TRANSFER.NAME": name,
        "MODEL.TRANSFER.PRETRAINED": "none",  # the weights come from MODEL.WEIGHTS
        "MODEL.RESNETS.NORM": {"frozen_bn": "FrozenBN", "bn": "BN", "gn": "GN"}[norm],
        "INPUT.FORMAT": "RGB",
        "MODEL.PIXEL_MEAN": pixel_mean,
        "MODEL.PIXEL_STD": pixel_std,
    }
    for key, value in getattr(net, "weights_options", {}).items():  # e.g. MSRA's stride_in_1x1
        if key == "stride_in_1x1":
            settings["MODEL.RESNETS.STRIDE_IN_1X1"] = bool(value)
        else:
            settings[f"MODEL.TRANSFER.OPTIONS.{key}"] = value
    if design == "c4":
        settings["MODEL.ROI_HEADS.NAME"] = "TransferC4ROIHeads"
    if "stride_in_1x1" in options:
        settings["MODEL.RESNETS.STRIDE_IN_1X1"] = bool(options["stride_in_1x1"])
    metadata = {"backbone": name, "pretrained": str(pretrained), "design": design, "norm": norm,
                "options": dict(options), "config": settings}
    save_checkpoint(state, output, metadata)
    return settings
