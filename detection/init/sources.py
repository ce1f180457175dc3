"""``--init SOURCE``: which starting point a name or file is.

- a torchvision COCO detector: ``maskrcnn_resnet50_fpn_v2`` (its COCO_V1 weights), ``NAME:WEIGHTS``
  for another weights enum entry, or ``NAME:FILE`` for a local copy of torchvision's file;
- a detectron2 model-zoo entry: ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x``, or a zoo file
  (``model_final_*.pkl``, or a .pth in the same layout);
- a checkpoint of ours (``model_final.pth``).

Files are read with the project's safe loaders only (``weights_only=True`` or
a restricted unpickler); a file that is no detector is described (backbone
weights, a classifier) so the user knows which option takes it.
"""
from pathlib import Path

import torch

from backbones.errors import UserError

from ..detector import DetectorConfig
from ..engine.checkpoint import FORMAT as CHECKPOINT_FORMAT
from .source import InitSource


def _torchvision():
    from .torchvision_models import TORCHVISION_MODELS, torchvision_source
    return TORCHVISION_MODELS, torchvision_source


def _detectron2():
    from .detectron2_zoo import DETECTRON2_ZOO, detectron2_source
    return DETECTRON2_ZOO, detectron2_source


def source_names() -> list:
    """Every named starting point (files are accepted besides)."""
    return list(_torchvision()[0]) + list(_detectron2()[0])


def resolve_init(source: str) -> InitSource:
    """The :class:`InitSource` that ``source`` names (see the module docstring)."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file():
        return _from_file(path)
    tv_names, tv_source = _torchvision()
    name, _, rest = text.partition(":")
    if name in tv_names:
        return tv_source(name, rest or None)
    d2_names, d2_source = _detectron2()
    if text.removesuffix(".yaml") in d2_names:
        return d2_source(text.removesuffix(".yaml"))
    if path.suffix in (".pth", ".pkl", ".pt"):
        raise UserError(f"--init {text}: no such file")
    raise UserError(f"--init {text!r} is neither a file nor a known detector; use a checkpoint of ours, a "
                    f"torchvision COCO model ({', '.join(tv_names)}; NAME:WEIGHTS or NAME:FILE), or a detectron2 "
                    f"zoo entry ({', '.join(d2_names)})")


def _from_file(path: Path) -> InitSource:
    if path.suffix == ".pkl":
        return _detectron2()[1](str(path))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"--init {path} cannot be loaded safely ({type(err).__name__}); expected a checkpoint "
                        f"of ours, a detectron2 zoo file or NAME:FILE for torchvision's") from None
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return checkpoint_source(path, payload)
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict) and \
            any(k.startswith(("roi_heads.", "proposal_generator.")) for k in payload["model"]):
        return _detectron2()[1](str(path))
    raise UserError(f"--init {path} is not a detector checkpoint: {describe(payload)}")


def describe(payload) -> str:
    """What a weights file looks like, and which option takes it."""
    if not isinstance(payload, dict):
        return f"it holds a {type(payload).__name__}"
    state = payload.get("model") if isinstance(payload.get("model"), dict) else \
        payload.get("state_dict") if isinstance(payload.get("state_dict"), dict) else payload
    keys = [k for k in state if isinstance(k, str)]
    if any(k.startswith(("rpn.", "roi_heads.")) for k in keys):
        return ("torchvision detector weights (rpn.*, roi_heads.*); name the model they belong to: "
                "--init MODEL:FILE, e.g. fasterrcnn_resnet50_fpn:FILE")
    if any(k.startswith("fc.") for k in keys) or "classifier.6.weight" in keys:
        return "an image classifier (it has a classification layer); pass it as --pretrained (backbone weights)"
    if any(k.startswith(("conv1.", "layer1.", "backbone.", "features.", "res2.", "stem.")) for k in keys):
        return "backbone weights only; pass them as --pretrained"
    return f"{len(keys)} tensors none of which a detector or backbone names (e.g. {', '.join(keys[:3])})"


def checkpoint_source(path: Path, payload: dict) -> InitSource:
    """A detector checkpoint of ours: its architecture, weights and classes."""
    config = DetectorConfig.from_dict(payload["config"])
    return InitSource(str(path), config, payload["model"], tuple(payload["class_names"]),
                      f"checkpoint {path} ({config.backbone}-{config.neck} "
                      f"{'Mask' if config.mask else 'Faster'} R-CNN, {len(payload['class_names'])} classes, "
                      f"iteration {payload.get('iteration')})")
