"""Registry backbones as detectron2 backbones (FPN and C4) and C4 RoI heads.

Importing this module registers, in detectron2's registries:

- ``build_transfer_fpn_backbone`` (BACKBONE_REGISTRY): the backbone named by
  MODEL.TRANSFER.NAME, wrapped as a detectron2 :class:`Backbone`, under
  detectron2's own :class:`FPN` + :class:`LastLevelMaxPool`. Its inputs are
  MODEL.FPN.IN_FEATURES, named as our stages (res2..res5 for ResNets, as in
  detectron2; conv3..conv5 for VGG-16).
- ``build_transfer_c4_backbone`` (BACKBONE_REGISTRY): the C4 trunk (stem to
  the stride-16 stage) of ``Backbone.c4_split()``, returning
  MODEL.RESNETS.OUT_FEATURES (``res4``; ``conv5`` for VGG-16).
- ``TransferC4ROIHeads`` (ROI_HEADS_REGISTRY): detectron2's Res5ROIHeads with
  our backbone's per-RoI stage in place of the res5 it would build: res5 of
  our ResNet (shared by the box and mask branches, channels from the
  backbone), or fc6/fc7 of VGG-16 (boxes only; 7x7 RoIs).

One pair of builders serves every name in ``backbones.names()``: the name is a
config value, so an unknown one fails with the registry's suggestions.

Also honoured: MODEL.BACKBONE.FREEZE_AT (stem = stage 1), MODEL.RESNETS.NORM
(FrozenBN/BN/GN; the SyncBN kinds become torch's SyncBatchNorm),
MODEL.RESNETS.STRIDE_IN_1X1 (bottleneck ResNets).

Parameter names: modules keep our (torchvision) names inside, but their state
dicts use detectron2's ResNet names (``stem.conv1.norm.weight``,
``res2.0.shortcut.weight``, via ``backbones.conversions.detectron2``), so
checkpoints exported by :mod:`detectron2_plugin.exporter`, detectron2's own
ResNet checkpoints and our models' checkpoints load through
DetectionCheckpointer. VGG-16 keeps torchvision's names.
"""
import math
import warnings
from collections import OrderedDict

from torch import nn
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, ROI_HEADS_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from detectron2.modeling.roi_heads import Res5ROIHeads

from backbones.conversions.common import ConversionError
from backbones.conversions.detectron2 import from_detectron2, to_detectron2
from backbones.errors import UnknownNameError, UserError
from backbones.registry import build, get_entry, resolve_pretrained
from backbones.resnet import SPECS as RESNET_SPECS
from backbones.resnet import ResNet

from .config import OPTION_KEYS_FROM_CFG, _pretrained_value, pixel_values

FPN_BUILDER = "build_transfer_fpn_backbone"
C4_BUILDER = "build_transfer_c4_backbone"
C4_ROI_HEADS = "TransferC4ROIHeads"

# detectron2's MODEL.RESNETS.NORM -> (our norm, convert to torch's SyncBatchNorm)
NORMS = {"FrozenBN": ("frozen_bn", False), "BN": ("bn", False), "GN": ("gn", False),
         "SyncBN": ("bn", True), "nnSyncBN": ("bn", True), "naiveSyncBN": ("bn", True)}
IMAGENET_CHECKPOINTS = "detectron2://ImageNetPretrained/"


# -- state-dict names -----------------------------------------------------------------------
COUNTER = "num_batches_tracked"


def _identity(state):
    return state


def _with_counters(convert):
    """``convert`` for whole state dicts, carrying BatchNorm's num_batches_tracked along.

    The conversions leave the counters out (detectron2's FrozenBN has none);
    a BN-trained model still has them, so each is renamed like its running_mean.
    """
    def converted(state):
        out = convert(OrderedDict((k, v) for k, v in state.items() if not k.endswith(COUNTER)))
        for key, value in state.items():
            if key.endswith(COUNTER):
                (probe,) = convert({key[:-len(COUNTER)] + "running_mean": value})
                out[probe[:-len("running_mean")] + COUNTER] = value
        return out
    return converted


def _show_state_as(module: nn.Module, attr: str, to_external, to_internal):
    """``module``'s state dict shows ``module.<attr>``'s entries as ``to_external`` names them.

    Loading accepts those names (``to_internal`` maps them back) as well as the
    internal ``<attr>.`` ones, so checkpoints round-trip and foreign ones load.
    """
    inner = attr + "."

    def save(mod, state, prefix, local_metadata):
        keys = [k for k in state if k.startswith(prefix + inner)]
        sub = OrderedDict((k[len(prefix + inner):], state.pop(k)) for k in keys)
        for key, value in to_external(sub).items():
            state[prefix + key] = value

    def load(mod, state, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        keys = [k for k in state if k.startswith(prefix) and not k.startswith(prefix + inner)]
        if not keys:
            return
        sub = OrderedDict((k[len(prefix):], state.pop(k)) for k in keys)
        try:
            renamed = to_internal(sub)
        except ConversionError as err:  # names that are not detectron2's ResNet names
            error_msgs.append(f"{type(mod).__name__} at {prefix!r}: {err}")
            return
        for key, value in renamed.items():
            state[prefix + inner + key] = value

    module.register_state_dict_post_hook(save)
    module.register_load_state_dict_pre_hook(load)


def _stage_names(net, stage=None):
    """(to_external, to_internal) for ``net`` (or its ``stage``, e.g. "layer4", seen from inside)."""
    if not isinstance(net, ResNet):
        return _identity, _identity
    to_d2, from_d2 = _with_counters(to_detectron2), _with_counters(from_detectron2)
    if stage is None:
        return to_d2, from_d2
    ours, theirs = stage + ".", _d2_stage(stage) + "."

    def to_external(state):
        out = to_d2(OrderedDict((ours + k, v) for k, v in state.items()))
        return OrderedDict((k[len(theirs):], v) for k, v in out.items())

    def to_internal(state):
        out = from_d2(OrderedDict((theirs + k, v) for k, v in state.items()))
        return OrderedDict((k[len(ours):], v) for k, v in out.items())
    return to_external, to_internal


def _d2_stage(layer: str) -> str:
    return f"res{int(layer[len('layer'):]) + 1}"  # torchvision's layer1 is res2


# -- the detectron2 modules -------------------------------------------------------------------
class TransferBackbone(Backbone):
    """A registry backbone behind detectron2's Backbone contract.

    ``forward`` returns the maps named in ``out_features``; ``output_shape()``
    gives their detectron2 ShapeSpec (channels, stride) from the backbone's own
    stage table; ``size_divisibility`` is 0 (strided convs and pools accept any
    size; detectron2's FPN declares its own divisibility).
    """

    def __init__(self, net, out_features=None):
        super().__init__()
        self.body = net
        if out_features:
            try:
                net.out_features = list(out_features)
            except UserError as err:
                raise UserError(f"{err} (check MODEL.FPN.IN_FEATURES / MODEL.RESNETS.OUT_FEATURES)") from None
        _show_state_as(self, "body", *_stage_names(net))

    def forward(self, x):
        return dict(self.body(x))

    def output_shape(self):
        return {name: ShapeSpec(channels=s.channels, stride=s.stride) for name, s in self.body.output_shape().items()}

    @property
    def size_divisibility(self) -> int:
        return 0

    @property
    def out_features(self) -> list:
        return self.body.out_features

    # the attributes detectron2's own backbones carry (some heads read them)
    @property
    def _out_features(self):
        return self.body.out_features

    @property
    def _out_feature_channels(self):
        return {n: s.channels for n, s in self.body.output_shape().items()}

    @property
    def _out_feature_strides(self):
        return {n: s.stride for n, s in self.body.output_shape().items()}


class RoIStage(nn.Module):
    """The per-RoI part of a C4 split as Res5ROIHeads' ``res5``: pooled RoIs -> (N, C, h, w) maps.

    A head that returns vectors (VGG-16's fc6/fc7) gets 1x1 maps, so
    Res5ROIHeads' spatial mean passes them through unchanged.
    """

    def __init__(self, module, names=(_identity, _identity)):
        super().__init__()
        self.inner = module
        _show_state_as(self, "inner", *names)

    def forward(self, x):
        x = self.inner(x)
        return x[:, :, None, None] if x.dim() == 2 else x


@ROI_HEADS_REGISTRY.register()
class TransferC4ROIHeads(Res5ROIHeads):
    """Res5ROIHeads whose per-RoI stage comes from our backbone's ``c4_split()``.

    The backbone is built once more here for its last stage (with the same
    MODEL.TRANSFER weights); detectron2 hands RoI heads only the backbone's
    output shapes, not the backbone itself.
    """

    @classmethod
    def _build_res5_block(cls, cfg):
        return build_c4_roi_stage(cfg)


# -- builders ---------------------------------------------------------------------------------
def backbone_norm(cfg) -> tuple:
    """(our norm, use SyncBatchNorm) for MODEL.RESNETS.NORM."""
    value = cfg.MODEL.RESNETS.NORM
    if value not in NORMS:
        raise UnknownNameError("MODEL.RESNETS.NORM for a registry backbone", value, NORMS)
    return NORMS[value]


def _normalisation_error(cfg, name, origin, mean, std):
    """None if the config normalises images as weights with RGB 0-1 ``mean``/``std`` expect, else the problem."""
    want_mean, want_std = pixel_values(mean, std)
    have_mean, have_std = list(cfg.MODEL.PIXEL_MEAN), list(cfg.MODEL.PIXEL_STD)
    close = (len(have_mean) == len(want_mean) == len(have_std)
             and all(abs(a - b) < 0.01 for a, b in zip(have_mean + have_std, want_mean + want_std)))
    if cfg.INPUT.FORMAT == "RGB" and close:
        return None
    return (f"the weights of {name} from {origin} expect RGB images normalised with MODEL.PIXEL_MEAN "
            f"{want_mean} and MODEL.PIXEL_STD {want_std}, but the config has INPUT.FORMAT {cfg.INPUT.FORMAT}, "
            f"PIXEL_MEAN {have_mean}, PIXEL_STD {have_std}; call detectron2_plugin.set_input_normalization(cfg) "
            f"after merging the config (detectron2_plugin.load_config does)")


def _declared(source) -> bool:
    """A registry source (conventions declared), not a local file whose conventions are guessed."""
    return source is not None and source.input_space != "auto"


def _check_config(cfg, entry, source):
    """Contradictions between the config and the declared weights, found before anything is downloaded."""
    name = entry.name
    if source is not None and str(cfg.MODEL.WEIGHTS).startswith(IMAGENET_CHECKPOINTS):
        raise UserError(
            f"MODEL.WEIGHTS is detectron2's ImageNet checkpoint {cfg.MODEL.WEIGHTS}, which would overwrite "
            f"the MODEL.TRANSFER.PRETRAINED weights of {name}; set MODEL.WEIGHTS \"\" (or MODEL.TRANSFER.PRETRAINED "
            f"none, e.g. with a checkpoint from tools/export_detectron2.py)")
    if not _declared(source):
        return
    spec = RESNET_SPECS.get(name)
    if spec is not None and spec.block == "bottleneck" and "stride_in_1x1" in entry.options():
        needed = bool(source.options.get("stride_in_1x1", False))
        if bool(cfg.MODEL.RESNETS.STRIDE_IN_1X1) != needed:
            raise UserError(
                f"MODEL.RESNETS.STRIDE_IN_1X1 is {cfg.MODEL.RESNETS.STRIDE_IN_1X1}, but the {source.source} weights "
                f"of {name} put the stride in the {'first 1x1' if needed else '3x3'} conv; set "
                f"MODEL.RESNETS.STRIDE_IN_1X1 {needed}")
    problem = _normalisation_error(cfg, name, source.source, source.mean, source.std)
    if problem:
        raise UserError(problem)


def build_registry_backbone(cfg, freeze_at: int = 0):
    """Our backbone as MODEL.TRANSFER and MODEL.RESNETS ask; returns (backbone, use SyncBatchNorm)."""
    if "TRANSFER" not in cfg.MODEL:
        raise UserError("the config has no MODEL.TRANSFER node; start from detectron2_plugin.get_transfer_cfg() "
                        "or call add_transfer_config(cfg) before merging the file")
    name = cfg.MODEL.TRANSFER.NAME
    entry = get_entry(name)  # UnknownNameError with "Did you mean ...?"
    pretrained = _pretrained_value(cfg.MODEL.TRANSFER.PRETRAINED)
    source = resolve_pretrained(name, pretrained)
    norm, sync = backbone_norm(cfg)
    options = {str(k): v for k, v in cfg.MODEL.TRANSFER.OPTIONS.items()}
    for key in options:
        if key in OPTION_KEYS_FROM_CFG:
            raise UserError(f"MODEL.TRANSFER.OPTIONS.{key}: set {OPTION_KEYS_FROM_CFG[key]} instead")
    if "stride_in_1x1" in entry.options():
        options["stride_in_1x1"] = bool(cfg.MODEL.RESNETS.STRIDE_IN_1X1)
    _check_config(cfg, entry, source)
    net = build(name, pretrained=pretrained, norm=norm, freeze_at=freeze_at, **options)
    if source is not None and not _declared(source):  # a local file: its conventions were guessed on loading
        problem = _normalisation_error(cfg, name, str(pretrained), net.pixel_mean, net.pixel_std)
        if problem:
            warnings.warn(problem + " (if the file follows other conventions than its names suggest, ignore this)",
                          stacklevel=2)
    return net, sync


def _sync(module, sync: bool):
    return nn.SyncBatchNorm.convert_sync_batchnorm(module) if sync else module


def _check_input_shape(input_shape):
    if input_shape is not None and input_shape.channels not in (None, 3):
        raise UserError(f"registry backbones take 3-channel images; MODEL.PIXEL_MEAN has {input_shape.channels} values")


@BACKBONE_REGISTRY.register()
def build_transfer_fpn_backbone(cfg, input_shape=None):
    """detectron2's FPN (+ max-pooled top level) on the backbone MODEL.TRANSFER names."""
    _check_input_shape(input_shape)
    net, sync = build_registry_backbone(cfg, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)
    bottom_up = TransferBackbone(_sync(net.drop_classifier(), sync), out_features=cfg.MODEL.FPN.IN_FEATURES)
    in_features = bottom_up.out_features  # in stage order: high to low resolution, as FPN wants
    top_block = LastLevelMaxPool()
    # p6 pools the last FPN level (p5 for ResNets; p4 for VGG-16's conv3..conv5)
    top_block.in_feature = f"p{int(math.log2(bottom_up.output_shape()[in_features[-1]].stride))}"
    return FPN(bottom_up=bottom_up, in_features=in_features, out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
               norm=cfg.MODEL.FPN.NORM, top_block=top_block, fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


@BACKBONE_REGISTRY.register()
def build_transfer_c4_backbone(cfg, input_shape=None):
    """The C4 trunk (stem to the stride-16 stage) of the backbone MODEL.TRANSFER names.

    MODEL.BACKBONE.FREEZE_AT counts trunk stages; larger values freeze the
    whole trunk, as detectron2 does (the per-RoI stage is never frozen).
    """
    _check_input_shape(input_shape)
    net, sync = build_registry_backbone(cfg)
    trunk = net.c4_split().trunk
    backbone = TransferBackbone(trunk, out_features=cfg.MODEL.RESNETS.OUT_FEATURES)
    trunk.freeze(min(cfg.MODEL.BACKBONE.FREEZE_AT, len(trunk.stage_names)))
    return _sync(backbone, sync)


def build_c4_roi_stage(cfg):
    """(per-RoI stage module, its output channels) for TransferC4ROIHeads."""
    net, sync = build_registry_backbone(cfg)
    split = net.c4_split()
    if split.roi_output == "map":  # ResNets: res5 runs on each RoI, its maps feed the box predictor (mean) and the mask head
        stage = RoIStage(split.roi_stage, _stage_names(net, "layer4"))  # ResNet.c4_split moves layer4 (res5)
    else:  # VGG-16: fc6/fc7 on 7x7 RoIs
        if cfg.MODEL.MASK_ON:
            raise UserError(f"{cfg.MODEL.TRANSFER.NAME}'s C4 head (fully connected) has no per-RoI feature map "
                            f"for a mask branch; use {FPN_BUILDER} for Mask R-CNN")
        if cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION != split.pooler_resolution:
            raise UserError(f"{cfg.MODEL.TRANSFER.NAME}'s C4 head needs {split.pooler_resolution}x"
                            f"{split.pooler_resolution} RoIs; set MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION "
                            f"{split.pooler_resolution}")
        stage = RoIStage(split.roi_stage)
    return _sync(stage, sync), split.roi_channels

