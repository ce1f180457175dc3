"""detectron2 plugin: every registry backbone in detectron2's Faster/Mask R-CNN, FPN or C4.

    import detectron2_plugin as bd2      # registers the builders below in detectron2
    cfg = bd2.load_config("configs/detectron2/mask_rcnn_R_50_FPN_1x.yaml", ["MODEL.DEVICE", "cpu"])
    model = detectron2.modeling.build_model(cfg)

Registered: ``build_transfer_fpn_backbone`` and ``build_transfer_c4_backbone``
(MODEL.BACKBONE.NAME) and ``TransferC4ROIHeads`` (MODEL.ROI_HEADS.NAME, C4).
The backbone is MODEL.TRANSFER.NAME (any of ``backbones.names()``), its
weights MODEL.TRANSFER.PRETRAINED. See :mod:`detectron2_plugin.config`
for the keys, :mod:`detectron2_plugin.exporter` for turning our weights into
a MODEL.WEIGHTS checkpoint and :mod:`detectron2_plugin.trainer` for
detectron2's own training loop. The programs around them are
:mod:`detectron2_plugin.train` and :mod:`detectron2_plugin.export`
(``main(argv=None)``, argument parsing plus one call; ``python -m
detectron2_plugin.train`` or tools/train_detectron2.py, and likewise for export).

detectron2 publishes no wheels: install it from its repository,
``pip install 'git+https://github.com/facebookresearch/detectron2.git'``.
For the tests, :mod:`detectron2_plugin.install` (tools/fetch_detectron2.py,
run by make install) installs detectron2 0.6's Python code without building it.
Without detectron2 this package still imports (so the installer can run, and
the programs can say what is missing in one line), but its names raise
ImportError saying how to install detectron2.
"""
import warnings

try:
    import detectron2  # noqa: F401
except ImportError as err:  # detectron2 is not installed (yet)
    _missing = err
else:
    _missing = None
    with warnings.catch_warnings():
        # detectron2 0.6 scripts a few functions with torch.jit.script, which torch 2.x deprecates: not ours to act on
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
        from .config import (add_transfer_config, get_transfer_cfg, load_config, merge_config_file,
                             set_input_normalization, zoo_config_file)
        from .exporter import export_state_dict, export_weights
        from .plugin import (C4_BUILDER, C4_ROI_HEADS, FPN_BUILDER, TransferBackbone,
                             TransferC4ROIHeads, build_transfer_c4_backbone, build_transfer_fpn_backbone)

__all__ = ["C4_BUILDER", "C4_ROI_HEADS", "FPN_BUILDER", "TransferBackbone", "TransferC4ROIHeads",
           "add_transfer_config", "build_transfer_c4_backbone", "build_transfer_fpn_backbone",
           "export_state_dict", "export_weights", "get_transfer_cfg", "load_config", "merge_config_file",
           "set_input_normalization", "zoo_config_file"]


def __getattr__(name):  # reached for the names above only when detectron2 is missing
    if name in __all__ and _missing is not None:
        from .cli import MISSING_DETECTRON2
        raise ImportError(MISSING_DETECTRON2) from _missing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
