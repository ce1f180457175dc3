"""detectron2 model-zoo detectors as ``--init`` sources.

    >>> source = detectron2_source("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x")
    >>> source = detectron2_source("/data/model_final_f10217.pkl")     # a local zoo file

A zoo name is downloaded once into torch.hub's cache (``<hub>/checkpoints/detectron2/<zoo path>``,
``TORCH_HOME`` moves it) and checked by trust on first use (backbones.download: the first copy's
sha256 is recorded beside it, ``.sha256``, and every later load must match). A local ``.pkl``/``.pth``
is read with backbones.weight_files' restricted unpickler only. The weights are converted by
:mod:`detection.convert_detectron2`; the architecture infers as detectron2 does (``compat="detectron2"``,
detection.detectron2_compat), and the classes are COCO's 80 in detectron2's order.
"""
from pathlib import Path

from backbones.conversions.common import ConversionError
from backbones.download import cache_dir, fetch
from backbones.errors import UserError
from backbones.weight_files import PretrainedWeightsUnavailable, read_checkpoint_file

from ..convert_detectron2 import COCO_CLASSES, convert_detectron2_detector
from .source import InitSource

ZOO_URL = "https://dl.fbaipublicfiles.com/detectron2/"

# zoo entry -> "<id>/model_final_<hash>.pkl", copied from detectron2 0.6's detectron2/model_zoo/model_zoo.py
# (_ModelZooUrls.CONFIG_PATH_TO_URL_SUFFIX): the ResNet-50/101 FPN and C4 Faster/Mask R-CNNs we convert
_SUFFIXES = {
    "COCO-Detection/faster_rcnn_R_50_C4_1x": "137257644/model_final_721ade.pkl",
    "COCO-Detection/faster_rcnn_R_50_FPN_1x": "137257794/model_final_b275ba.pkl",
    "COCO-Detection/faster_rcnn_R_50_C4_3x": "137849393/model_final_f97cb7.pkl",
    "COCO-Detection/faster_rcnn_R_50_FPN_3x": "137849458/model_final_280758.pkl",
    "COCO-Detection/faster_rcnn_R_101_C4_3x": "138204752/model_final_298dad.pkl",
    "COCO-Detection/faster_rcnn_R_101_FPN_3x": "137851257/model_final_f6e8b1.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x": "137259246/model_final_9243eb.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x": "137260431/model_final_a54504.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x": "137849525/model_final_4ce675.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x": "137849600/model_final_f10217.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_C4_3x": "138363239/model_final_a2914c.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x": "138205316/model_final_a3ec72.pkl",
}
DETECTRON2_ZOO = tuple(_SUFFIXES)


def zoo_url(name: str) -> str:
    """``https://dl.fbaipublicfiles.com/detectron2/<config path without .yaml>/<id>/model_final_<hash>.pkl``."""
    return f"{ZOO_URL}{_zoo_name(name)}/{_SUFFIXES[_zoo_name(name)]}"


def _zoo_name(name: str) -> str:
    key = name[:-len(".yaml")] if name.endswith(".yaml") else name
    if key not in _SUFFIXES:
        raise UserError(f"unknown detectron2 model-zoo entry {name!r}; supported: {', '.join(DETECTRON2_ZOO)} "
                        f"(or a local model_final_*.pkl)")
    return key


def zoo_file(name: str, progress: bool = True) -> Path:
    """The cached zoo file of ``name``, downloaded on first use and checked by trust on first use."""
    key = _zoo_name(name)
    path = cache_dir() / "detectron2" / key / _SUFFIXES[key]
    if not path.is_file():
        try:
            return fetch(zoo_url(key), path, sha256=None, source=f"detectron2 {key}", progress=progress)
        except PretrainedWeightsUnavailable:
            raise PretrainedWeightsUnavailable(
                f"could not download the detectron2 zoo file {zoo_url(key)}: "
                f"without network access, fetch it elsewhere and put it at {path} (TORCH_HOME moves the cache) "
                f"or pass --init PATH to a local copy") from None
    return fetch(zoo_url(key), path, sha256=None, source=f"detectron2 {key}", progress=progress)


def _looks_like_file(name: str) -> bool:
    return name.endswith((".pkl", ".pth", ".pt")) or Path(name).exists()


def detectron2_source(name_or_path) -> InitSource:
    """A zoo entry (``DETECTRON2_ZOO``) or a local zoo-layout file -> :class:`InitSource`."""
    name = str(name_or_path)
    if _looks_like_file(name):
        path, origin = Path(name), f"detectron2 checkpoint {name}"
        if not path.is_file():
            raise UserError(f"detectron2 checkpoint {path} does not exist")
    else:
        key = _zoo_name(name)
        path, origin = zoo_file(key), f"detectron2 model zoo {key} ({_SUFFIXES[key]})"
    state = read_checkpoint_file(path)
    try:
        config, weights = convert_detectron2_detector(state, compat="detectron2")
    except ConversionError as err:
        raise UserError(f"{path}: {err}") from None
    if config.num_classes != len(COCO_CLASSES):
        raise UserError(f"{path} has {config.num_classes} classes, not COCO's {len(COCO_CLASSES)}: its class "
                        f"names are unknown here")
    design = (f"{config.backbone}-{config.neck.upper()} {'Mask' if config.mask else 'Faster'} R-CNN, "
              f"{config.num_classes} COCO classes, detectron2 compat mode")
    return InitSource(name=name, config=config, state_dict=weights, class_names=tuple(COCO_CLASSES),
                      description=f"{origin}: {design}")
