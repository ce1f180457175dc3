"""detectron2 model-zoo Faster/Mask R-CNN R50/R101 FPN and C4 checkpoints -> our detector checkpoints.

    python -m detection.convert_detectron2 model_final_280758.pkl r50_fpn_3x.pth
    python tools/eval_coco.py --checkpoint r50_fpn_3x.pth        # coco_2017_val by default

(``--init COCO-Detection/faster_rcnn_R_50_FPN_3x`` or ``--init model_final_*.pkl`` starts fine-tuning
from the same conversion: detection.init.detectron2_zoo.) The zoo's ``model_final_*.pkl``
(``{"model": {name: ndarray}}``, read with the restricted unpickler of backbones.weight_files) becomes
``build_detector(backbone="resnet50"|"resnet101", neck="fpn"|"c4", mask=..., num_classes=80,
stride_in_1x1=True, norm="frozen_bn", compat="detectron2")`` with detectron2's caffe mean/std in RGB
[0, 1] units (C4 also with detectron2's C4 ``RPN.PRE_NMS_TOPK_TEST`` 6000), and every tensor is mapped:

=====================================================  ==============================================
detectron2                                             ours (torchvision names)
=====================================================  ==============================================
backbone.bottom_up.* (FPN), backbone.* (C4)            backbone.body.* (FPN), backbone.* (C4)
                                                       (backbones.conversions.detectron2, then conv1's
                                                       input channels reversed BGR -> RGB, as the zoo
                                                       sources do)
roi_heads.res5.* (C4: res5 run per RoI)                roi_heads.box_head.0.* (and, Mask R-CNN,
                                                       roi_heads.mask_head.*: the same res5 module)
backbone.fpn_lateral{2,3,4,5}                          backbone.fpn.inner_blocks.{0,1,2,3}.0
backbone.fpn_output{2,3,4,5}                           backbone.fpn.layer_blocks.{0,1,2,3}.0
proposal_generator.rpn_head.conv                       rpn.head.conv.0.0
proposal_generator.rpn_head.objectness_logits          rpn.head.cls_logits  (C4's 15 anchors reordered:
proposal_generator.rpn_head.anchor_deltas              rpn.head.bbox_pred   detectron2 size-major,
                                                                            torchvision ratio-major)
roi_heads.box_head.fc1 / fc2                           roi_heads.box_head.fc6 / fc7
roi_heads.box_predictor.cls_score (81: classes, bg)    roi_heads.box_predictor.cls_score (81: bg
                                                       first: the last row moves to the front)
roi_heads.box_predictor.bbox_pred (80*4)               roi_heads.box_predictor.bbox_pred (81*4: 4
                                                       zero rows for the background, never read)
roi_heads.mask_head.mask_fcn{1,2,3,4} (FPN)            roi_heads.mask_head.{0,1,2,3}.0
roi_heads.mask_head.deconv                             roi_heads.mask_predictor.conv5_mask
roi_heads.mask_head.predictor (80)                     roi_heads.mask_predictor.mask_fcn_logits (81:
                                                       a zero row for the background first)
=====================================================  ==============================================

The RPN and heads lay out their outputs alike (anchor-major deltas, anchors
location-major then per-location, (x, y) box coordinates), so apart from the
class rows and C4's anchor order above the weights are copied unchanged.
Anything else is refused with what it is (cascade, keypoint, GN/conv heads,
RetinaNet, DC5, Panoptic FPN, class-agnostic boxes, backbone-only weights):
for those, use the backbone part alone (``pretrained="detectron2_R50_FPN_3x:PATH"``).

**compat="detectron2"** (the converter's default; ``--compat torchvision`` for
torchvision's components as they are) makes the model infer as detectron2 0.6's
GeneralizedRCNN does: every difference listed below is undone by a replacement
of the torchvision component (detection.detectron2_compat): unrounded anchors at
the nominal strides (p6 at 64), ROIAlignV2 (aligned, adaptive sampling) with
detectron2's level assignment, its resize rule and PIL's 8-bit bilinear
resampling reproduced exactly (same pixels as ``Image.resize``: Pillow's
fixed-point weights, horizontal pass first, each pass rounded), no padding for
C4, its proposal and detection filters, box scaling/clipping and mask pasting.
Measured (tests/test_init_detectron2.py): detectron2's own models built from the
zoo configs with seeded random weights, saved as zoo ``.pkl`` files, run on
COCO photographs (640x427, 427x640, 640x294) at test size 320/533, detectron2
fed as its DefaultPredictor (BGR uint8, ResizeShortestEdge), ours the RGB
image: 100% of detectron2's detections matched (same class, box IoU >= 0.99,
score within 1e-3) for R50-FPN Faster (300/300), R50-FPN Mask (300/300, IoU
of the pasted masks at 0.5: mean 1.0000, min 0.9995), R50-C4 Faster (200/200,
300 proposals on both sides to keep it fast; with the zoo config's 1000:
600/600 on 6 photos) and R50-C4 Mask (100/100, mask IoU min 0.9998). Without
the exact 8-bit resize (torch's antialiased bilinear on floats, pixels off
by 1-2 grey levels in 3-8% of them) only 74% matched: random heads are
that sensitive. What remains, not seen in these runs:
torchvision's RPN ranks proposals in its NMS by sigmoid probabilities and
detectron2 by logits, which differ only when probabilities round to 1.0
(logits above ~17); ``masks`` stay probabilities (detectron2's boolean masks
are ``masks >= 0.5``); the mode reads the float input as 8-bit (as an image
from disk is); training keeps torchvision's losses, samplers and resizing.
GPU inference was not compared (no GPU here).

With ``compat="torchvision"`` only the weights convert exactly. The model around them is torchvision's,
which differs from detectron2's as listed below. No zoo file or COCO image
could be fetched where this was written, so no AP difference is given; the
effects were measured on detectron2's R50-FPN with random weights (as in
tests/test_detectron2_detector_conversion.py) and a 512x600 photo resized to
800x938 (matplotlib's grace_hopper.jpg), detectron2's 1000 proposals and 100
detections vs ours, "matched" = a counterpart with IoU > 0.9 (and the same
class). Random heads may be more sensitive than trained ones.

- Same: backbone + FPN features, RPN objectness and deltas, box head scores
  and deltas, mask logits (to float rounding, ~1e-6 relative); box coder
  weights (1,1,1,1) for the RPN and (10,10,5,5) for the head, delta clamp
  log(1000/16); RPN NMS 0.7 per level, pre-NMS top 1000 per level, post-NMS
  top 1000 per image (detectron2's POST_NMS_TOPK_TEST is per image too); RoI
  level floor(4 + log2(sqrt(area) / 224)) in 2..5; score threshold 0.05,
  class-wise NMS 0.5, 100 detections; shortest side 800, longest at most
  1333; padding to a multiple of 32. With the anchor, RoIAlign and p6
  differences below undone (the test does the first two; at its 128 px the
  third does not arise), proposals and detections are the same.
- Anchors: torchvision rounds its cell anchors to integers, detectron2 does
  not (both: sizes 32..512, one per level; ratios h/w 0.5, 1, 2; the same
  order). The 0.5/2.0 anchors move by up to 0.49 px (32 px, ratio 0.5:
  +-22.63 x +-11.31 -> +-23 x +-11; IoU with detectron2's >= 0.957).
  Measured with this the only difference left: 99.1% of proposals and 91%
  of detections matched.
- RoIAlign: detectron2's FPN heads use ROIAlignV2 (``aligned=True``, the
  half-pixel shift) with adaptive sampling (``POOLER_SAMPLING_RATIO 0``); our
  neck uses torchvision's ``MultiScaleRoIAlign`` (``aligned=False``,
  ``sampling_ratio=2``) and exposes neither, so every RoI is pooled half a
  feature pixel off. Measured with this the only difference left: 62% of
  detections matched (59% with all differences, the model as built): the
  largest of the differences.
- Stride of the extra ``pool`` (p6) level: torchvision takes each level's
  stride as padded image size // feature size; p6 is p5 subsampled by 2, so
  when p5 has an odd size (an 800-pixel side: 25 -> 13) the p6 stride is
  800 // 13 = 61 instead of 64, and row/column r of the p6 anchors (512 px,
  the largest objects) sits 3r px off: up to 36 px, IoU with detectron2's
  anchor down to 0.82 (0.75 when both sides are 800). COCO's usual
  800-pixel short side hits this. Its effect could not be measured on
  random weights (none of their proposals came from p6).
- Resizing: detectron2 resizes the uint8 image with PIL and rounds the new
  size (480x640 -> 800x1067), torchvision interpolates the float image and
  rounds down (800x1066); measured: mean |difference| 1.9 grey levels (of
  255), 99th percentile 17. Boxes are mapped back to the original either way.
- Mask pasting: torchvision's ``paste_masks_in_image`` (1 px padded mask
  resized to the integer box) vs detectron2's grid sampling at the exact box:
  measured mask IoU between the two pastes of smooth 28x28 masks 0.89 for
  16 px boxes, 0.94 at 32 px, 0.97 at 64 px, >= 0.99 from 128 px.
- Tiny-box filters: torchvision drops proposals narrower than 1e-3 px and
  detections narrower than 1e-2 px, detectron2 only empty ones.
- C4 (not measured in torchvision mode): torchvision pads every image to a
  multiple of 32, detectron2's C4 backbone pads nothing (zero columns change
  res4 at the border and add anchors); its stride estimate padded size //
  res4 size gives 15 instead of 16 for some sizes; C4's RPN needs
  ``rpn_pre_nms_top_n_test`` 6000 (set by the conversion).
- Resizing order: torchvision normalises and then interpolates the float
  image; detectron2 interpolates 8-bit pixels (rounded) and then normalises.

Fine-tuning a converted model uses torchvision's losses and samplers, not
detectron2's (e.g. smooth-L1 with beta 1/9 where detectron2 uses L1).
"""
import argparse
import re
from pathlib import Path

import numpy as np
import torch

import backbones
from backbones.conversions.colour import swap_rgb_bgr
from backbones.conversions.common import ConversionError
from backbones.conversions.detectron2 import from_detectron2
from backbones.errors import UserError
from backbones.weight_files import read_checkpoint_file

from .detector import DetectorConfig, build_detector
from .necks.c4 import C4_ANCHOR_SIZES
from .engine.checkpoint import save_checkpoint

# The conventions backbones.sources declares for every detectron2 zoo model (all share them):
# BGR input, caffe mean/std (here in RGB [0, 1] units), stride_in_1x1=True.
ZOO = backbones.get_entry("resnet50").pretrained["detectron2_R50_FPN_3x"]

# COCO's 80 classes in detectron2's contiguous order, which is the order of COCO's category ids
# (and so what detection.data.coco_format gives for COCO's own annotation files).
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush")
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))

# detectron2's ResNet depth from the number of bottleneck blocks in res4 (3, 4, n, 3)
DEPTHS = {6: "resnet50", 23: "resnet101", 36: "resnet152"}


def _head_names(num_mask_convs: int, c4: bool, mask: bool) -> dict:
    """detectron2 module name -> ours, for the tensors copied unchanged (the backbone aside)."""
    names = {}
    if not c4:
        for i, level in enumerate(range(2, 6)):  # torchvision's FPN counts its inputs from res2
            names[f"backbone.fpn_lateral{level}"] = f"backbone.fpn.inner_blocks.{i}.0"
            names[f"backbone.fpn_output{level}"] = f"backbone.fpn.layer_blocks.{i}.0"
        names["roi_heads.box_head.fc1"] = "roi_heads.box_head.fc6"
        names["roi_heads.box_head.fc2"] = "roi_heads.box_head.fc7"
    names["proposal_generator.rpn_head.conv"] = "rpn.head.conv.0.0"
    for i in range(num_mask_convs):
        names[f"roi_heads.mask_head.mask_fcn{i + 1}"] = f"roi_heads.mask_head.{i}.0"
    if mask:
        names["roi_heads.mask_head.deconv"] = "roi_heads.mask_predictor.conv5_mask"
    return names


def _background_last_to_first(value):
    """Class logits: detectron2 puts the background last, torchvision first."""
    return torch.cat([value[-1:], value[:-1]])


def _zero_background(value, rows: int):
    """Per-class outputs detectron2 has for objects only: torchvision wants ``rows`` for the background
    first. Zeros: torchvision never reads the background's boxes or mask."""
    return torch.cat([value.new_zeros((rows,) + value.shape[1:]), value])


def _anchor_order(num_sizes: int, num_ratios: int):
    """Our anchor k (torchvision: ratio-major, k = r * sizes + s) -> detectron2's (size-major, s * ratios + r)."""
    return [s * num_ratios + r for r in range(num_ratios) for s in range(num_sizes)]


def _rpn_outputs(state, num_sizes: int, num_ratios: int) -> dict:
    """The RPN's 1x1 outputs with their anchors in torchvision's order (the same when one size per level)."""
    order = torch.tensor(_anchor_order(num_sizes, num_ratios))
    deltas = (order[:, None] * 4 + torch.arange(4)).flatten()  # 4 deltas per anchor, anchor-major
    out = {}
    for param in ("weight", "bias"):
        logits = state[f"proposal_generator.rpn_head.objectness_logits.{param}"]
        boxes = state[f"proposal_generator.rpn_head.anchor_deltas.{param}"]
        if logits.shape[0] != len(order) or boxes.shape[0] != 4 * len(order):
            raise ConversionError(f"the RPN predicts {logits.shape[0]} anchors per location, not {num_sizes} "
                                  f"sizes x {num_ratios} aspect ratios")
        out[f"rpn.head.cls_logits.{param}"] = logits[order]
        out[f"rpn.head.bbox_pred.{param}"] = boxes[deltas]
    return out


def _as_tensors(d2_state: dict) -> dict:
    # np.array copies: arrays from a pickle may be read-only, which torch does not support
    return {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v))
            for k, v in d2_state.items() if not k.endswith("num_batches_tracked")}


# detectron2 designs that do not convert, recognised by a tensor name: (pattern, what it is)
UNSUPPORTED = (
    (r"roi_heads\.box_(head|predictor)\.\d+\.", "a Cascade R-CNN (several box heads)"),
    (r"roi_heads\.keypoint_head\.", "a Keypoint R-CNN (keypoint head)"),
    (r"roi_heads\.(box|mask)_head\.(conv|mask_fcn)\d+\.norm\.", "heads with GroupNorm/BN (e.g. the GN or "
                                                                  "SyncBN configs)"),
    (r"roi_heads\.box_head\.conv\d+\.", "a conv box head (e.g. 4conv1fc)"),
    (r"^head\.(cls_score|bbox_pred)\.", "a RetinaNet"),
    (r"^sem_seg_head\.", "a Panoptic FPN (semantic segmentation head)"),
    (r"^backbone\.res5\.", "a DC5 model (dilated res5 in the backbone)"),
    (r"backbone\.bottom_up\.res\d\.\d+\.conv2\.offset", "deformable convolutions"),
)


def architecture_problem(names) -> str:
    """What a detectron2 state dict is when it is not a ResNet-FPN/C4 Faster/Mask R-CNN we convert, else ''."""
    names = list(names)
    for pattern, what in UNSUPPORTED:
        if any(re.search(pattern, n) for n in names):
            return what
    if not any(n.startswith(("proposal_generator.", "roi_heads.")) for n in names):
        if any(n.startswith(("stem.", "res2.", "backbone.")) for n in names):
            return "backbone-only weights (no RPN or RoI heads)"
        return "not a detectron2 detector (no backbone, RPN or RoI heads)"
    if not any(n.startswith("proposal_generator.") for n in names):
        return "a Fast R-CNN without RPN (precomputed proposals)"
    if not any(n.startswith("roi_heads.") for n in names):
        return "an RPN-only model (no RoI heads)"
    if any(n.startswith("roi_heads.res5.") for n in names) and any(n.startswith("backbone.fpn_") for n in names):
        return "a mix of C4 (roi_heads.res5) and FPN (backbone.fpn_*) tensors"
    return ""


def convert_detectron2_detector(d2_state: dict, mask=None, compat: str = "detectron2"):
    """A detectron2 ResNet FPN or C4 Faster/Mask R-CNN state dict -> ``(DetectorConfig, our state_dict)``.

    ``d2_state``: the names and tensors (or numpy arrays) of the zoo's
    ``model_final_*.pkl`` (its ``"model"`` dict) or of ``GeneralizedRCNN.state_dict()``.
    ``mask``: ``None`` converts the mask head when there is one; ``False``
    leaves it out (a Faster R-CNN from a Mask R-CNN checkpoint).
    ``compat``: the config's ``compat``; ``"detectron2"`` (the default) infers as detectron2 does
    (detection.detectron2_compat), ``"torchvision"`` with torchvision's components as they are.
    """
    state = _as_tensors(d2_state)
    problem = architecture_problem(state)
    if problem:
        raise ConversionError(f"this detectron2 checkpoint is {problem}: only ResNet FPN/C4 Faster/Mask R-CNN "
                              f"checkpoints convert whole (the backbone alone: "
                              f"pretrained='detectron2_R50_FPN_3x:PATH')")
    _check_pixel_normalisation(state)
    has_mask = any(k.startswith("roi_heads.mask_head.") for k in state)
    if mask and not has_mask:
        raise ConversionError("mask=True, but this checkpoint has no roi_heads.mask_head (it is a Faster R-CNN)")
    mask = has_mask if mask is None else bool(mask)
    if not mask:
        state = {k: v for k, v in state.items() if not k.startswith("roi_heads.mask_head.")}

    c4 = any(k.startswith("roi_heads.res5.") for k in state)
    if c4:  # the ResNet is the backbone itself (stem..res4) plus res5 run per RoI
        body = {k: v for k, v in state.items()
                if k.startswith("roi_heads.res5.") or (k.startswith("backbone.") and ".fpn_" not in k)}
    else:
        body = {k: v for k, v in state.items() if k.startswith("backbone.bottom_up.")}
    res4 = {m.group(1) for k in body if (m := re.match(r"backbone\.(?:bottom_up\.)?res4\.(\d+)\.conv3\.", k))}
    if len(res4) not in DEPTHS:
        raise ConversionError(f"not a detectron2 ResNet-50/101/152 {'C4' if c4 else 'FPN'} backbone (res4 has "
                              f"{len(res4)} bottleneck blocks; expected 6, 23 or 36)")
    resnet = swap_rgb_bgr(from_detectron2(body)) if ZOO.input_space == "BGR" else from_detectron2(body)
    ours = {}
    for k, v in resnet.items():
        if not c4:
            ours[f"backbone.body.{k}"] = v
        elif k.startswith("layer4."):  # res5: C4's box head (and the mask branch's, sharing it)
            ours[f"roi_heads.box_head.0.{k[len('layer4.'):]}"] = v
            if mask:
                ours[f"roi_heads.mask_head.{k[len('layer4.'):]}"] = v
        else:
            ours[f"backbone.{k}"] = v

    num_mask_convs = sum(1 for k in state if re.fullmatch(r"roi_heads\.mask_head\.mask_fcn\d+\.weight", k))
    renames = _head_names(num_mask_convs, c4, mask)
    used = set(body)
    for name, value in state.items():
        module, _, param = name.rpartition(".")
        if module in renames:
            ours[f"{renames[module]}.{param}"] = value
            used.add(name)
    aspect_ratios = DetectorConfig.aspect_ratios
    anchor_sizes = C4_ANCHOR_SIZES if c4 else (None,)
    ours.update(_rpn_outputs(state, len(anchor_sizes), len(aspect_ratios)))
    used |= {f"proposal_generator.rpn_head.{m}.{p}" for m in ("objectness_logits", "anchor_deltas")
             for p in ("weight", "bias")}

    cls_score = state.get("roi_heads.box_predictor.cls_score.weight")
    if cls_score is None:
        raise ConversionError("no roi_heads.box_predictor.cls_score: not a Faster/Mask R-CNN checkpoint")
    num_classes = cls_score.shape[0] - 1
    # torchvision's predictors are class-specific only: 4 box deltas and 1 mask per class
    per_class = {"roi_heads.box_predictor.bbox_pred": 4, "roi_heads.mask_head.predictor": 1 if mask else 0}
    for name, rows in per_class.items():
        found = state.get(f"{name}.weight")
        if rows and (found is None or found.shape[0] != rows * num_classes):
            raise ConversionError(f"{name} has {None if found is None else found.shape[0]} outputs, not {rows} per "
                                  f"class ({rows * num_classes}): only class-specific heads convert")
    for param in ("weight", "bias"):
        scores, deltas = (f"roi_heads.box_predictor.{n}.{param}" for n in ("cls_score", "bbox_pred"))
        ours[scores] = _background_last_to_first(state[scores])
        ours[deltas] = _zero_background(state[deltas], 4)
        used |= {scores, deltas}
        if mask:
            logits = f"roi_heads.mask_head.predictor.{param}"
            ours[f"roi_heads.mask_predictor.mask_fcn_logits.{param}"] = _zero_background(state[logits], 1)
            used.add(logits)

    left = sorted(k for k in state if k not in used and k not in ("pixel_mean", "pixel_std"))
    if left:
        raise ConversionError(
            f"{len(left)} tensors have no counterpart in our ResNet {'C4' if c4 else 'FPN'} Faster/Mask R-CNN "
            f"(e.g. {left[:3]}): only detectron2's ResNet FPN/C4 Faster/Mask R-CNN converts whole; for other "
            f"designs use the backbone part (pretrained='detectron2_R50_FPN_3x:PATH')")

    common = dict(backbone=DEPTHS[len(res4)], mask=mask, num_classes=num_classes, pretrained="none",
                  norm="frozen_bn", freeze_at=2,  # detectron2's FrozenBN and FREEZE_AT 2, should it be fine-tuned
                  stride_in_1x1=ZOO.options["stride_in_1x1"], pixel_mean=ZOO.mean, pixel_std=ZOO.std,
                  compat=compat)
    if c4:  # detectron2's Base-RCNN-C4: RPN.PRE_NMS_TOPK_TEST 6000 (its default; FPN's 1000 per level)
        config = DetectorConfig(neck="c4", anchor_sizes=C4_ANCHOR_SIZES, rpn_pre_nms_top_n_test=6000, **common)
    else:
        config = DetectorConfig(
            neck="fpn", fpn_channels=state["backbone.fpn_output5.weight"].shape[0],
            box_representation_size=state["roi_heads.box_head.fc2.weight"].shape[0],
            mask_head_layers=tuple(state[f"roi_heads.mask_head.mask_fcn{i + 1}.weight"].shape[0]
                                   for i in range(num_mask_convs)) if mask else DetectorConfig.mask_head_layers,
            **common)
    return config, ours


def _check_pixel_normalisation(state):
    """Old checkpoints keep detectron2's pixel_mean/std buffers: they must be the zoo's (BGR, 0-255) ones."""
    for key, rgb01 in (("pixel_mean", ZOO.mean), ("pixel_std", ZOO.std)):
        zoo = torch.tensor([255 * v for v in reversed(rgb01)], dtype=torch.float64)
        if key in state and not torch.allclose(state[key].flatten().double(), zoo, atol=1e-3):
            raise ConversionError(f"this checkpoint's {key.upper()} is {state[key].flatten().tolist()}, not the "
                                  f"model zoo's BGR {zoo.tolist()}: its input conventions are unknown here")


def build_converted(d2_state: dict, mask=None, compat: str = "detectron2"):
    """Our detector with the checkpoint's weights (``strict`` load: every tensor accounted for)."""
    config, state = convert_detectron2_detector(d2_state, mask, compat)
    model = build_detector(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # e.g. a file without FrozenBN statistics, or another ResNet variant
        lines = str(err).splitlines()  # torch: "Error(s) in loading ...", then one line per problem
        raise ConversionError(f"the converted weights do not fit {config.backbone}-{config.neck.upper()}: "
                              f"{lines[1].strip() if len(lines) > 1 else err}") from None
    return model.eval()


def write_checkpoint(source, output, mask=None, class_names=COCO_CLASSES, category_ids=COCO_CATEGORY_IDS,
                     train_dataset="coco_2017_train", compat="detectron2"):
    """Convert ``source`` (a zoo ``.pkl`` path, or a state dict) into our checkpoint at ``output``.

    The zoo's models are trained on COCO 2017 train: ``tools/eval_coco.py
    --checkpoint OUTPUT`` then evaluates on coco_2017_val unless told otherwise.
    Returns the checkpoint's path and the detector's :class:`DetectorConfig`.
    """
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise UserError(f"detectron2 checkpoint {source} does not exist")
    d2_state = read_checkpoint_file(source) if isinstance(source, (str, Path)) else source
    model = build_converted(d2_state, mask, compat)
    if len(class_names) != model.config.num_classes or len(category_ids) != model.config.num_classes:
        raise ConversionError(f"the checkpoint has {model.config.num_classes} classes; pass that many "
                              f"class_names and category_ids")
    origin = str(source) if isinstance(source, (str, Path)) else "a detectron2 state dict"
    path = save_checkpoint(output, model, class_names, category_ids, iteration=0,
                           train_config={"data": {"train": train_dataset}, "converted_from": origin})
    return path, model.config


def main(argv=None):
    p = argparse.ArgumentParser(description="Convert a detectron2 model-zoo R50/R101 FPN/C4 Faster/Mask R-CNN "
                                            "checkpoint (model_final_*.pkl) into our detector checkpoint.")
    p.add_argument("source", help="detectron2 checkpoint: model_final_*.pkl (or a .pth state dict)")
    p.add_argument("output", help="our checkpoint to write (.pth)")
    p.add_argument("--no-mask", dest="mask", action="store_const", const=False, default=None,
                   help="leave a Mask R-CNN's mask head out (a Faster R-CNN)")
    p.add_argument("--compat", choices=("detectron2", "torchvision"), default="detectron2",
                   help="infer as detectron2 does (default) or with torchvision's components as they are")
    args = p.parse_args(argv)
    path, config = write_checkpoint(args.source, args.output, mask=args.mask, compat=args.compat)
    print(f"wrote {path}: {config.backbone}-{config.neck.upper()} {'Mask' if config.mask else 'Faster'} R-CNN, "
          f"{config.num_classes} COCO classes")
    print(f"evaluate with: python tools/eval_coco.py --checkpoint {path}")


if __name__ == "__main__":
    from .cli import run
    run(main)
