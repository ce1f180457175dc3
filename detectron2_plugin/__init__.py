"""detectron2 plugin: every registry backbone in detectron2's Faster/Mask R-CNN, FPN or C4.

    import detectron2_plugin as bd2      # registers the builders below in detectron2
    cfg = bd2.load_config("configs/detectron2/mask_rcnn_R_50_FPN_1x.yaml", ["MODEL.DEVICE", "cpu"])
    model = detectron2.modeling.build_model(cfg)

Registered: ``build_transfer_fpn_backbone`` and ``build_transfer_c4_backbone``
(MODEL.BACKBONE.NAME) and ``TransferC4ROIHeads`` (MODEL.ROI_HEADS.NAME, C4).
The backbone is MODEL.TRANSFER.NAME (any of ``backbones.names()``), its
weights MODEL.TRANSFER.PRETRAINED. See :mod:`detectron2_plugin.config`
for the keys, :mod:`detectron2_plugin.export` for turning our weights into
a MODEL.WEIGHTS checkpoint and :mod:`detectron2_plugin.train` for
detectron2's own training loop (tools/train_detectron2.py).

detectron2 publishes no wheels: install it from its repository,
``pip install 'git+https://github.com/facebookresearch/detectron2.git'``.
"""
try:
    import detectron2  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without detectron2
    raise ImportError("detectron2_plugin needs detectron2, which publishes no wheels: install it from its "
                      "repository, pip install 'git+https://github.com/facebookresearch/detectron2.git' "
                      "(tools/fetch_detectron2.py installs its Python code for the tests)") from err

from .config import (add_transfer_config, get_transfer_cfg, load_config, merge_config_file,  # noqa: E402
                     set_input_normalization, zoo_config_file)
from .export import export_state_dict, export_weights  # noqa: E402
from .plugin import (C4_BUILDER, C4_ROI_HEADS, FPN_BUILDER, TransferBackbone, TransferC4ROIHeads,  # noqa: E402
                     build_transfer_c4_backbone, build_transfer_fpn_backbone)

__all__ = ["C4_BUILDER", "C4_ROI_HEADS", "FPN_BUILDER", "TransferBackbone", "TransferC4ROIHeads",
           "add_transfer_config", "build_transfer_c4_backbone", "build_transfer_fpn_backbone",
           "export_state_dict", "export_weights", "get_transfer_cfg", "load_config", "merge_config_file",
           "set_input_normalization", "zoo_config_file"]
