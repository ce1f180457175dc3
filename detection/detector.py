"""``build_detector``: torchvision's Faster/Mask R-CNN around any registry backbone.

    >>> from detection import build_detector
    >>> model = build_detector(backbone="resnet50", neck="fpn", mask=True, num_classes=80)

Everything the model needs to be rebuilt lives in one :class:`DetectorConfig`;
``model.config`` holds it with every default resolved (norm, frozen stages,
input normalisation), which is what checkpoints store.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.misc import FrozenBatchNorm2d

import backbones
from backbones.errors import UserError, check_choice

from .necks import NECKS

BOX_HEADS = ("mlp", "4conv1fc")  # the FPN box head (detection.necks.fpn)
HEAD_NORMS = ("bn", "gn")        # head_norm's choices besides None
COMPAT_MODES = ("torchvision", "detectron2")  # DetectorConfig.compat


@dataclass(frozen=True)
class DetectorConfig:
    backbone: str = "resnet50"
    neck: str = "fpn"                    # "fpn" or "c4" (the paper's design)
    mask: bool = False                   # Mask R-CNN when True
    num_classes: int = 80                # object classes, background excluded
    # backbone weights: a source ("torchvision", "msra", ...), a file, or "none"; None: unset (a run picks
    # its data's default, see detection.run; build_detector alone builds without weights)
    pretrained: Optional[str] = None
    norm: Optional[str] = None           # frozen_bn | bn | gn; None: frozen_bn if pretrained else gn
    freeze_at: Optional[int] = None      # None: 2 (stem + res2) if pretrained else 0
    shortcut: str = "B"                  # ResNet shortcut option A | B | C
    stride_in_1x1: Optional[bool] = None  # bottleneck stride on the 1x1 conv; None: what the weights need (MSRA: True)
    fpn_channels: int = 256
    anchor_sizes: Optional[Sequence[int]] = None  # None: 8x stride per FPN level; 32..512 for C4
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)
    box_representation_size: int = 1024  # FPN box head MLP width
    mask_head_layers: Sequence[int] = (256, 256, 256, 256)  # FPN mask head convs (Mask R-CNN's 4 x 256)
    mask_upsample_channels: int = 256    # the mask predictor's 2x deconv (Mask R-CNN's 256)
    # FPN heads beyond the FPN paper's (torchvision's *_fpn_v2 models: conv depth 2, "4conv1fc", "bn")
    rpn_conv_depth: int = 1              # 3x3 convs of the RPN head before its two 1x1 outputs
    box_head: str = "mlp"                # "mlp": two FC layers; "4conv1fc": 4 3x3 convs (256) + one FC layer
    head_norm: Optional[str] = None      # None | bn | gn: a norm after each conv of the FPN, the 4conv1fc
                                         # box head and the mask head (not the RPN head); None: conv biases
    backbone_norm_eps: Optional[float] = None  # eps of the backbone's (frozen) BatchNorms; None: 1e-5
                                         # (torchvision's fasterrcnn/maskrcnn_resnet50_fpn COCO_V1: 0.0)
    # the frozen stages' BatchNorms (norm bn) become FrozenBatchNorm2d; False: they stay BatchNorm with
    # frozen weights whose statistics still move in train mode, as in torchvision's *_fpn_v2 models
    freeze_norm: bool = True
    # image resizing inside the model (GeneralizedRCNNTransform); a list = multi-scale training
    min_size: Union[int, Sequence[int]] = 800
    max_size: int = 1333
    pixel_mean: Optional[Sequence[float]] = None  # None: the backbone weights' own normalisation
    pixel_std: Optional[Sequence[float]] = None
    # passed unchanged to torchvision's FasterRCNN (same names and defaults)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    # "torchvision": torchvision's inference; "detectron2": detectron2 0.6's GeneralizedRCNN inference
    # (unrounded anchors at nominal strides, ROIAlignV2, its resize rule, filters and mask pasting), for
    # detectron2 model-zoo weights; see detection.detectron2_compat
    compat: str = "torchvision"
    # the paper's Appendix B at test time: the regressed boxes pooled and scored again, both sets merged by
    # NMS at 0.3 and box voting (detection.box_refinement); training is unchanged
    box_refinement: bool = False
    # Appendix B's global context: the whole image pooled as one more RoI through the box head, its feature
    # concatenated to every RoI's before the class and box layers (detection.global_context); trained so
    global_context: bool = False
    # a trained detector to start from (--init; detection.init): its architecture and weights, the
    # class-dependent rows of matching class names kept ("match") or all re-initialised ("reinit")
    init: Optional[str] = None
    init_classes: str = "match"

    TORCHVISION_KEYS = ("rpn_pre_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_train",
                        "rpn_post_nms_top_n_test", "rpn_batch_size_per_image", "box_batch_size_per_image",
                        "box_score_thresh", "box_nms_thresh", "box_detections_per_img", "max_size")

    def __post_init__(self):
        # lists from YAML/JSON and tuples from code compare equal after this
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

    @classmethod
    def check_keys(cls, values: dict):
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            check_choice("model option", key, valid)

    @classmethod
    def from_dict(cls, values: dict) -> "DetectorConfig":
        cls.check_keys(values)
        return cls(**values)

    def validate(self) -> "DetectorConfig":
        """Check names and numbers before anything expensive happens."""
        check_choice("neck", self.neck, NECKS)
        check_choice("compat", self.compat, COMPAT_MODES)
        check_choice("model.init_classes", self.init_classes, ("match", "reinit"))
        if self.box_refinement and self.compat != "torchvision":
            raise UserError("box_refinement post-processes torchvision's RoI heads; it cannot be combined with "
                            f"compat: {self.compat} (detectron2's inference)")
        check_choice("backbone", self.backbone, backbones.names())
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise UserError(f"num_classes must be a positive integer (background excluded), "
                            f"got {self.num_classes!r}")
        if self.mask and not self.mask_head_layers:
            raise UserError("mask_head_layers needs at least one conv width, e.g. [256, 256, 256, 256]")
        check_choice("box_head", self.box_head, BOX_HEADS)
        if self.head_norm is not None:
            check_choice("head_norm", self.head_norm, HEAD_NORMS)
        if not isinstance(self.rpn_conv_depth, int) or self.rpn_conv_depth < 1:
            raise UserError(f"rpn_conv_depth must be an integer >= 1, got {self.rpn_conv_depth!r}")
        if self.backbone_norm_eps is not None and not self.backbone_norm_eps >= 0:
            raise UserError(f"backbone_norm_eps must be >= 0 (or null: the layers' 1e-5), "
                            f"got {self.backbone_norm_eps!r}")
        if self.neck != "fpn" and (self.box_head != "mlp" or self.head_norm or self.rpn_conv_depth != 1):
            raise UserError(f"box_head, head_norm and rpn_conv_depth are FPN head options; with neck "
                            f"{self.neck!r} leave them at their defaults (mlp, null, 1) or use neck fpn")
        return self

    def to_dict(self) -> dict:
        return plain_dict(self)

    def with_defaults(self, pretrained: str = "none") -> "DetectorConfig":
        """This config with the defaults that depend on the weights decided (the one place they are):
        ``pretrained`` for an unset ``pretrained``; then norm frozen_bn and freeze_at 2 (stem + res2) when
        fine-tuning pretrained weights, GroupNorm and nothing frozen from scratch."""
        weights = self.pretrained if self.pretrained is not None else pretrained
        tuned = backbones.is_pretrained(weights)
        return dataclasses.replace(
            self, pretrained=weights if tuned else "none", norm=self.norm or ("frozen_bn" if tuned else "gn"),
            freeze_at=(2 if tuned else 0) if self.freeze_at is None else self.freeze_at)


def plain_dict(config) -> dict:
    """A dataclass as JSON/YAML-friendly values (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def build_detector(config: Optional[DetectorConfig] = None, load_pretrained: bool = True, **options):
    """Build a Faster R-CNN (``mask=False``) or Mask R-CNN (``mask=True``).

    Pass a :class:`DetectorConfig` or its fields as keyword arguments. An unset
    ``pretrained`` builds without weights. ``load_pretrained=False`` builds the
    model ``config.pretrained`` describes without fetching those weights (they
    come from a checkpoint next); ``model.config`` still names them.
    """
    if config is None:
        cfg = DetectorConfig.from_dict(options)
    else:
        DetectorConfig.check_keys(options)
        cfg = dataclasses.replace(config, **options)
    cfg = cfg.validate().with_defaults()
    accepted = backbones.get_entry(cfg.backbone).options()
    options = {k: v for k, v in (("shortcut", cfg.shortcut), ("stride_in_1x1", cfg.stride_in_1x1))
               if k in accepted and v is not None}
    net = backbones.build(cfg.backbone, pretrained=cfg.pretrained if load_pretrained else "none", norm=cfg.norm,
                          freeze_at=cfg.freeze_at if cfg.freeze_norm else 0, **options)
    if not cfg.freeze_norm:
        net.freeze(cfg.freeze_at, freeze_norm=False)
    if cfg.backbone_norm_eps is not None:  # as torchvision's overwrite_eps, for weights trained with another eps
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d)):
                m.eps = cfg.backbone_norm_eps
    # what the weights required is recorded, so a rebuild without them (checkpoints, resume) matches
    stride_in_1x1 = net.weights_options.get("stride_in_1x1", cfg.stride_in_1x1)
    if stride_in_1x1 is None and "stride_in_1x1" in accepted:
        stride_in_1x1 = False
    cfg = dataclasses.replace(cfg, pixel_mean=tuple(cfg.pixel_mean or net.pixel_mean),
                              pixel_std=tuple(cfg.pixel_std or net.pixel_std), stride_in_1x1=stride_in_1x1)
    parts = NECKS[cfg.neck](net, cfg)
    detector = (MaskRCNN if cfg.mask else FasterRCNN)(
        num_classes=None, min_size=cfg.min_size, image_mean=list(cfg.pixel_mean), image_std=list(cfg.pixel_std),
        **{k: getattr(cfg, k) for k in DetectorConfig.TORCHVISION_KEYS}, **parts)
    t = detector.transform
    detector.transform = DetectorTransform(t.min_size, t.max_size, t.image_mean, t.image_std)
    detector.config = cfg
    if cfg.compat == "detectron2":
        from .detectron2_compat import make_detectron2_compatible
        make_detectron2_compatible(detector, cfg.neck)
    if cfg.global_context:
        from .global_context import add_global_context
        add_global_context(detector)
    if cfg.box_refinement:
        from .box_refinement import enable_box_refinement
        enable_box_refinement(detector)
    return detector


class DetectorTransform(GeneralizedRCNNTransform):
    """torchvision's transform, leaving alone the training images the data pipeline already resized.

    Multi-scale training resizes images together with their boxes and masks in
    the data pipeline (``detection.data.transforms``), whose targets then carry
    ``"resized": True``; resizing them again here would undo the drawn scale.
    Images without that mark, and every image at evaluation, are resized here.
    It takes float [0, 1] images and 8-bit ones (0..255, what the data pipeline hands over).
    """

    def forward(self, images, targets=None):
        # 8-bit images (the data pipeline's, see detection.data.dataset.image_tensor) become float [0, 1],
        # what torchvision's transform expects; float images pass unchanged
        images = [im.float().div_(255) if im.dtype == torch.uint8 else im for im in images]
        return super().forward(images, targets)

    def resize(self, image, target=None):
        if self.training and target is not None and target.get("resized", False):
            return image, target
        return super().resize(image, target)
