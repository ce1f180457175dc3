"""torchvision's COCO detectors as ``--init`` starting points, with their exact architecture.

    >>> source = torchvision_source("maskrcnn_resnet50_fpn_v2")          # its COCO_V1 weights
    >>> model = build_detector(source.config, load_pretrained=False)
    >>> model.load_state_dict(source.state_dict)                          # torchvision's model, our code

Each model's :class:`DetectorConfig` is what torchvision's builder sets,
whatever a run's config says: ResNet-50 FPN, ImageNet mean/std, images
resized to 800 (at most 1333), torchvision's RPN and box settings, and

- ``fasterrcnn_resnet50_fpn`` / ``maskrcnn_resnet50_fpn``: frozen BatchNorm
  with eps 0 (torchvision's ``overwrite_eps(model, 0.0)`` for these COCO_V1
  weights), the two-FC box head, conv heads without norms;
- ``*_v2`` (Li et al., "Benchmarking Detection Transfer Learning with Vision
  Transformers"): trainable BatchNorm in the backbone and after every conv of
  the FPN, the 4conv1fc box head and the mask head; an RPN head of two convs.

Both freeze the stem and res2 (torchvision's ``trainable_backbone_layers=3``);
v2 keeps BatchNorm there (``freeze_norm=False``): frozen weights, statistics
that still move in train mode, as torchvision's builder leaves them.

Weights: the model's torchvision weights enum (``COCO_V1`` by default, fetched
from torchvision's URL into the torch hub cache, its sha256 prefix checked on
download as torch.hub does), or a local copy of that file
(``torch.load(weights_only=True)``). torchvision's parameter names are ours
(``backbone.body.*`` is our ResNet), so the mapping is the identity after
torchvision's own renames of files saved by its older versions; every key is
checked. Classes: torchvision's 91 COCO slots, background first (row 0), so
label ``l`` is COCO category id ``l``; the 10 unused ids are named ``"N/A"``,
which matches no dataset class.
"""
import dataclasses
import re
import urllib.error
from pathlib import Path

import torch
from torchvision.models import detection as tv_detection

from backbones.errors import UserError, check_choice
from backbones.pretrained import IMAGENET_MEAN, IMAGENET_STD
from backbones.download import cache_dir

from ..detector import DetectorConfig, build_detector
from .source import InitSource

# name -> (torchvision weights enum, v2, mask)
_MODELS = {
    "fasterrcnn_resnet50_fpn": (tv_detection.FasterRCNN_ResNet50_FPN_Weights, False, False),
    "fasterrcnn_resnet50_fpn_v2": (tv_detection.FasterRCNN_ResNet50_FPN_V2_Weights, True, False),
    "maskrcnn_resnet50_fpn": (tv_detection.MaskRCNN_ResNet50_FPN_Weights, False, True),
    "maskrcnn_resnet50_fpn_v2": (tv_detection.MaskRCNN_ResNet50_FPN_V2_Weights, True, True),
}
TORCHVISION_MODELS = tuple(_MODELS)
DEFAULT_WEIGHTS = "COCO_V1"

# torchvision's FasterRCNN/MaskRCNN defaults, which its builders keep (they pass no such argument)
_TORCHVISION_SETTINGS = dict(
    min_size=800, max_size=1333, pixel_mean=IMAGENET_MEAN, pixel_std=IMAGENET_STD,
    rpn_pre_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_train=2000,
    rpn_post_nms_top_n_test=1000, rpn_batch_size_per_image=256, box_batch_size_per_image=512,
    box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=100,
)


def _config(name: str, weights) -> DetectorConfig:
    """torchvision's architecture for ``name`` with ``weights`` (an enum member), in our config's terms."""
    _, v2, mask = _MODELS[name]
    classes = weights.meta["categories"]
    return dataclasses.replace(
        DetectorConfig(), **_TORCHVISION_SETTINGS,
        backbone="resnet50", neck="fpn", mask=mask, num_classes=len(classes) - 1,
        pretrained="none",  # the backbone's weights come with the detector's
        norm="bn" if v2 else "frozen_bn", freeze_at=2, freeze_norm=not v2, shortcut="B", stride_in_1x1=False,
        backbone_norm_eps=None if v2 else 0.0,  # torchvision: overwrite_eps(model, 0.0) for v1's COCO_V1
        fpn_channels=256, anchor_sizes=(32, 64, 128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0),
        box_representation_size=1024, mask_head_layers=(256, 256, 256, 256),
        rpn_conv_depth=2 if v2 else 1, box_head="4conv1fc" if v2 else "mlp", head_norm="bn" if v2 else None)


def _hint(name: str) -> str:
    return f"pass --init {name}:FILE with a local copy of the file"


def _download(name: str, weights) -> dict:
    """The weights file from torchvision's URL, cached where torch.hub caches it (``TORCH_HOME``)."""
    path = cache_dir() / Path(weights.url).name
    try:
        return torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", progress=True,
                                                  check_hash=True, weights_only=True)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        raise UserError(f"could not download torchvision's {name} {weights.name} weights from {weights.url} "
                        f"({err}); without network access, fetch that file elsewhere and put it at {path} "
                        f"(set TORCH_HOME to use another cache folder), or {_hint(name)}") from None
    except Exception as err:  # hash mismatch on download, a truncated or foreign cached file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"torchvision's {name} {weights.name} weights file {path} is damaged or not the "
                        f"expected file ({first}); delete it and retry") from None


def _read_file(name: str, path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code, a truncated or foreign file
        first = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"{path} is not a PyTorch weight file that can be loaded safely ({type(err).__name__}: "
                        f"{first[:200]}); {name} needs torchvision's state dict file for it") from None
    return _check_tensors(name, state, str(path))


def _check_tensors(name: str, state, origin: str) -> dict:
    if not isinstance(state, dict) or not state or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        keys = ", ".join(map(str, list(state)[:5])) if isinstance(state, dict) else ""
        what = f"a dict with keys {keys}" if isinstance(state, dict) and state else \
            f"a {type(state).__name__}" if not isinstance(state, dict) else "an empty dict"
        raise UserError(f"{origin} holds {what}, not a state dict of tensors; {name} needs torchvision's own "
                        f"file (model.state_dict() of torchvision.models.detection.{name})")
    return state


# torchvision's own renames for files its older versions saved (the _load_from_state_dict hooks of
# FeaturePyramidNetwork, RPNHead and MaskRCNNHeads; its COCO_V1 files predate them)
_LEGACY = [
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^(rpn\.head\.conv)\.(weight|bias)$"), r"\1.0.0.\2"),
]
_MASK_FCN = re.compile(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$")


def _renamed(key: str) -> str:
    for pattern, new in _LEGACY:
        if pattern.match(key):
            return pattern.sub(new, key)
    m = _MASK_FCN.match(key)
    return f"roi_heads.mask_head.{int(m.group(1)) - 1}.0.{m.group(2)}" if m else key


_EXPECTED = {}


def _expected(name: str) -> dict:
    """Our detector's {key: shape} for ``name`` (built on the meta device: no memory, no time)."""
    if name not in _EXPECTED:
        config = _config(name, _MODELS[name][0][DEFAULT_WEIGHTS])
        with torch.device("meta"):
            model = build_detector(config, load_pretrained=False)
        _EXPECTED[name] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return _EXPECTED[name]


def _to_ours(name: str, raw: dict, origin: str) -> dict:
    """torchvision's state dict of ``name`` under our names; anything else is named and refused."""
    renamed = {_renamed(k): v for k, v in raw.items()}
    own = _expected(name)
    # BatchNorm counters: torchvision's v2 keeps them for the stem and res2, which we freeze (no counter)
    state = {k: v for k, v in renamed.items() if k in own or not k.endswith("num_batches_tracked")}
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.tensor(0, dtype=torch.long)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise UserError(f"{origin} is not torchvision's {name} state dict: it looks like "
                        f"{_looks_like(name, list(renamed), missing, unexpected)}")
    wrong = [k for k in own if tuple(state[k].shape) != own[k]]
    if wrong:
        k, rows = wrong[0], state["roi_heads.box_predictor.cls_score.weight"].shape[0]
        classes = f" (a model for {rows - 1} classes + background, not COCO's 90 slots)" if rows != 91 else ""
        raise UserError(f"{origin} does not fit torchvision's {name}: {len(wrong)} tensors have other shapes, "
                        f"e.g. {k} {list(state[k].shape)} where {name} has {list(own[k])}{classes}; "
                        f"{_fix(name)}")
    return {k: state[k] for k in own}


def _fix(name: str) -> str:
    return f"give {name} its own COCO weights file (torchvision's {_MODELS[name][0].__name__})"


def _looks_like(name: str, keys: list, missing: list, unexpected: list) -> str:
    def weights(names):
        return {k for k in names if not k.endswith("num_batches_tracked")}
    other = [n for n in TORCHVISION_MODELS if n != name and weights(_expected(n)) == weights(keys)]
    if other:
        return f"{other[0]}'s weights; use --init {other[0]}:FILE"
    if keys and all(k.startswith("backbone.body.") for k in keys):
        return (f"backbone-only weights ({len(keys)} backbone.body.* tensors, no FPN, RPN or RoI heads); pass "
                f"them as --pretrained, or {_fix(name)}")
    if any(k.startswith(("backbone.bottom_up.", "proposal_generator.")) for k in keys):
        return "a detectron2 checkpoint (backbone.bottom_up.*, proposal_generator.*); use --init FILE for it"
    if any(k.startswith("fc.") for k in keys) and any(k.startswith("layer1.") for k in keys):
        return f"an ImageNet classifier (conv1.*, layer1..4.*, fc.*); pass it as --pretrained, or {_fix(name)}"
    parts = [f"{len(found)} {what} (e.g. {', '.join(found[:3])})"
             for found, what in ((missing, "of its tensors missing"), (unexpected, "unexpected tensors")) if found]
    return f"another or an incomplete model: {'; '.join(parts)}; {_fix(name)}"


def torchvision_source(name: str, weights=None) -> InitSource:
    """torchvision's ``name`` detector with ``weights``: an enum member or its name (default ``COCO_V1``),
    or the path of a local copy of torchvision's file (its state dict, as ``torch.save`` wrote it).

    A local file is taken for a copy of the COCO_V1 file: its classes and conventions (for the v1 models,
    BatchNorm eps 0, as torchvision sets for those weights)."""
    check_choice("torchvision detector", name, TORCHVISION_MODELS)
    enum = _MODELS[name][0]
    if weights is not None and not isinstance(weights, enum) and str(weights) not in enum.__members__:
        path = Path(str(weights)).expanduser()
        if not path.is_file():
            raise UserError(f"{name}:{weights}: neither torchvision weights for {name} "
                            f"({', '.join(enum.__members__)}) nor an existing file; check the name or path")
        member = enum[DEFAULT_WEIGHTS]  # a copy of the published file: the same classes and conventions
        state = _to_ours(name, _read_file(name, path), str(path))
        origin = f"weights from {path}"
    else:
        member = weights if isinstance(weights, enum) else enum[str(weights or DEFAULT_WEIGHTS)]
        origin = f"the {member.name} weights file of {name} ({cache_dir() / Path(member.url).name})"
        state = _to_ours(name, _check_tensors(name, _download(name, member), origin), origin)
        origin = f"{member.name} weights"
    classes = tuple(member.meta["categories"][1:])  # "__background__" is row 0, not a class
    given = weights.name if isinstance(weights, enum) else weights
    return InitSource(name=name if weights is None else f"{name}:{given}", config=_config(name, member),
                      state_dict=state, class_names=classes, description=f"torchvision {name} ({origin})")


__all__ = ["TORCHVISION_MODELS", "torchvision_source"]
