"""Weight-name layouts and conversion to ours (torchvision's names).

One module per layout, each with a function from and to our names:
``detectron2`` (``from_detectron2``/``to_detectron2``), ``caffe2``
(``from_caffe2``/``to_caffe2``) and ``timm`` (``from_timm``/``to_timm``).
``colour`` handles BGR weights. Here: telling a file's layout from its names.
"""
from . import caffe2, detectron2, timm
from .common import ConversionError

LAYOUTS = ("torchvision", "timm", "detectron2", "caffe2")
_FROM = {"torchvision": dict, "timm": timm.from_timm, "detectron2": detectron2.from_detectron2,
         "caffe2": caffe2.from_caffe2}


def detect_layout(state_dict: dict) -> str:
    """``caffe2``, ``detectron2`` or ``torchvision`` (which timm's ResNets share) from the names."""
    if caffe2.is_caffe2(state_dict):
        return "caffe2"
    if detectron2.is_detectron2(state_dict):
        return "detectron2"
    return "torchvision"  # anything else is checked name by name when loaded


def to_ours(state_dict: dict, layout: str) -> dict:
    """Rename a state dict of the given layout to our names."""
    if layout not in _FROM:
        raise ConversionError(f"unknown weight layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return _FROM[layout](state_dict)


__all__ = ["ConversionError", "LAYOUTS", "detect_layout", "to_ours"]
