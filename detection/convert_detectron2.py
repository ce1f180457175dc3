"""detectron2 model-zoo Faster/Mask R-CNN R50/R101-FPN checkpoints -> our detector checkpoints.

    python -m detection.convert_detectron2 model_final_280758.pkl r50_fpn_3x.pth
    python tools/eval_coco.py --checkpoint r50_fpn_3x.pth        # coco_2017_val by default

The zoo's ``model_final_*.pkl`` (``{"model": {name: ndarray}}``, read with the
restricted unpickler of backbones.weight_files) becomes
``build_detector(backbone="resnet50"|"resnet101", neck="fpn", mask=...,
num_classes=80, stride_in_1x1=True, norm="frozen_bn")`` with detectron2's
caffe mean/std in RGB [0, 1] units, and every tensor is mapped:

=====================================================  ==============================================
detectron2                                             ours (torchvision names)
=====================================================  ==============================================
backbone.bottom_up.*                                   backbone.body.* (backbones.conversions
                                                       .detectron2, then conv1's input channels
                                                       reversed BGR -> RGB, as the zoo sources do)
backbone.fpn_lateral{2,3,4,5}                          backbone.fpn.inner_blocks.{0,1,2,3}.0
backbone.fpn_output{2,3,4,5}                           backbone.fpn.layer_blocks.{0,1,2,3}.0
proposal_generator.rpn_head.conv                       rpn.head.conv.0.0
proposal_generator.rpn_head.objectness_logits          rpn.head.cls_logits
proposal_generator.rpn_head.anchor_deltas              rpn.head.bbox_pred
roi_heads.box_head.fc1 / fc2                           roi_heads.box_head.fc6 / fc7
roi_heads.box_predictor.cls_score (81: classes, bg)    roi_heads.box_predictor.cls_score (81: bg
                                                       first: the last row moves to the front)
roi_heads.box_predictor.bbox_pred (80*4)               roi_heads.box_predictor.bbox_pred (81*4: 4
                                                       zero rows for the background, never read)
roi_heads.mask_head.mask_fcn{1,2,3,4}                  roi_heads.mask_head.{0,1,2,3}.0
roi_heads.mask_head.deconv                             roi_heads.mask_predictor.conv5_mask
roi_heads.mask_head.predictor (80)                     roi_heads.mask_predictor.mask_fcn_logits (81:
                                                       a zero row for the background first)
=====================================================  ==============================================

The RPN and heads lay out their outputs alike (anchor-major deltas, anchors
location-major then per-location, (x, y) box coordinates), so apart from the
class rows above the weights are copied unchanged. Anything else in the file
(C4 or cascade heads, GN heads, keypoints, class-agnostic boxes) is refused:
use the backbone part alone (``pretrained="detectron2_R50_FPN_3x:PATH"``).

Only the weights convert exactly. The model around them is torchvision's,
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


def _head_names(num_mask_convs: int) -> dict:
    """detectron2 module name -> ours, for the tensors copied unchanged."""
    names = {}
    for i, level in enumerate(range(2, 6)):  # torchvision's FPN counts its inputs from res2
        names[f"backbone.fpn_lateral{level}"] = f"backbone.fpn.inner_blocks.{i}.0"
        names[f"backbone.fpn_output{level}"] = f"backbone.fpn.layer_blocks.{i}.0"
    names.update({
        "proposal_generator.rpn_head.conv": "rpn.head.conv.0.0",
        "proposal_generator.rpn_head.objectness_logits": "rpn.head.cls_logits",
        "proposal_generator.rpn_head.anchor_deltas": "rpn.head.bbox_pred",
        "roi_heads.box_head.fc1": "roi_heads.box_head.fc6",
        "roi_heads.box_head.fc2": "roi_heads.box_head.fc7",
    })
    for i in range(num_mask_convs):
        names[f"roi_heads.mask_head.mask_fcn{i + 1}"] = f"roi_heads.mask_head.{i}.0"
    if num_mask_convs:
        names["roi_heads.mask_head.deconv"] = "roi_heads.mask_predictor.conv5_mask"
    return names


def _background_last_to_first(value):
    """Class logits: detectron2 puts the background last, torchvision first."""
    return torch.cat([value[-1:], value[:-1]])


def _zero_background(value, rows: int):
    """Per-class outputs detectron2 has for objects only: torchvision wants ``rows`` for the background
    first. Zeros: torchvision never reads the background's boxes or mask."""
    return torch.cat([value.new_zeros((rows,) + value.shape[1:]), value])


def _as_tensors(d2_state: dict) -> dict:
    # np.array copies: arrays from a pickle may be read-only, which torch does not support
    return {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v))
            for k, v in d2_state.items() if not k.endswith("num_batches_tracked")}


def convert_detectron2_detector(d2_state: dict, mask=None):
    """A detectron2 FPN Faster/Mask R-CNN state dict -> ``(DetectorConfig, our state_dict)``.

    ``d2_state``: the names and tensors (or numpy arrays) of the zoo's
    ``model_final_*.pkl`` (its ``"model"`` dict) or of ``GeneralizedRCNN.state_dict()``.
    ``mask``: ``None`` converts the mask head when there is one; ``False``
    leaves it out (a Faster R-CNN from a Mask R-CNN checkpoint).
    """
    state = _as_tensors(d2_state)
    _check_pixel_normalisation(state)
    has_mask = any(k.startswith("roi_heads.mask_head.") for k in state)
    if mask and not has_mask:
        raise ConversionError("mask=True, but this checkpoint has no roi_heads.mask_head (it is a Faster R-CNN)")
    mask = has_mask if mask is None else bool(mask)
    if not mask:
        state = {k: v for k, v in state.items() if not k.startswith("roi_heads.mask_head.")}

    body = {k: v for k, v in state.items() if k.startswith("backbone.bottom_up.")}
    res4 = {m.group(1) for k in body if (m := re.match(r"backbone\.bottom_up\.res4\.(\d+)\.conv3\.", k))}
    if len(res4) not in DEPTHS:
        raise ConversionError(f"not a detectron2 ResNet-50/101/152 FPN backbone (res4 has {len(res4)} "
                              f"bottleneck blocks; expected 6, 23 or 36)")
    ours = swap_rgb_bgr(from_detectron2(body)) if ZOO.input_space == "BGR" else from_detectron2(body)
    ours = {f"backbone.body.{k}": v for k, v in ours.items()}

    num_mask_convs = sum(1 for k in state if re.fullmatch(r"roi_heads\.mask_head\.mask_fcn\d+\.weight", k))
    renames = _head_names(num_mask_convs)
    used = set(body)
    for name, value in state.items():
        module, _, param = name.rpartition(".")
        if module in renames:
            ours[f"{renames[module]}.{param}"] = value
            used.add(name)

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
            f"{len(left)} tensors have no counterpart in our FPN Faster/Mask R-CNN (e.g. {left[:3]}): only "
            f"detectron2's ResNet-FPN Faster/Mask R-CNN converts whole; for other designs use the backbone part "
            f"(pretrained='detectron2_R50_FPN_3x:PATH')")

    config = DetectorConfig(
        backbone=DEPTHS[len(res4)], neck="fpn", mask=mask, num_classes=num_classes, pretrained="none",
        norm="frozen_bn", freeze_at=2,  # detectron2's FrozenBN and FREEZE_AT 2, should it be fine-tuned
        stride_in_1x1=ZOO.options["stride_in_1x1"], pixel_mean=ZOO.mean, pixel_std=ZOO.std,
        fpn_channels=state["backbone.fpn_output5.weight"].shape[0],
        box_representation_size=state["roi_heads.box_head.fc2.weight"].shape[0],
        mask_head_layers=tuple(state[f"roi_heads.mask_head.mask_fcn{i + 1}.weight"].shape[0]
                               for i in range(num_mask_convs)) if mask else DetectorConfig.mask_head_layers)
    return config, ours


def _check_pixel_normalisation(state):
    """Old checkpoints keep detectron2's pixel_mean/std buffers: they must be the zoo's (BGR, 0-255) ones."""
    for key, rgb01 in (("pixel_mean", ZOO.mean), ("pixel_std", ZOO.std)):
        zoo = torch.tensor([255 * v for v in reversed(rgb01)], dtype=torch.float64)
        if key in state and not torch.allclose(state[key].flatten().double(), zoo, atol=1e-3):
            raise ConversionError(f"this checkpoint's {key.upper()} is {state[key].flatten().tolist()}, not the "
                                  f"model zoo's BGR {zoo.tolist()}: its input conventions are unknown here")


def build_converted(d2_state: dict, mask=None):
    """Our detector with the checkpoint's weights (``strict`` load: every tensor accounted for)."""
    config, state = convert_detectron2_detector(d2_state, mask)
    model = build_detector(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # e.g. a file without FrozenBN statistics, or another ResNet variant
        lines = str(err).splitlines()  # torch: "Error(s) in loading ...", then one line per problem
        raise ConversionError(f"the converted weights do not fit {config.backbone}-FPN: "
                              f"{lines[1].strip() if len(lines) > 1 else err}") from None
    return model.eval()


def write_checkpoint(source, output, mask=None, class_names=COCO_CLASSES, category_ids=COCO_CATEGORY_IDS,
                     train_dataset="coco_2017_train"):
    """Convert ``source`` (a zoo ``.pkl`` path, or a state dict) into our checkpoint at ``output``.

    The zoo's models are trained on COCO 2017 train: ``tools/eval_coco.py
    --checkpoint OUTPUT`` then evaluates on coco_2017_val unless told otherwise.
    Returns the checkpoint's path and the detector's :class:`DetectorConfig`.
    """
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise UserError(f"detectron2 checkpoint {source} does not exist")
    d2_state = read_checkpoint_file(source) if isinstance(source, (str, Path)) else source
    model = build_converted(d2_state, mask)
    if len(class_names) != model.config.num_classes or len(category_ids) != model.config.num_classes:
        raise ConversionError(f"the checkpoint has {model.config.num_classes} classes; pass that many "
                              f"class_names and category_ids")
    origin = str(source) if isinstance(source, (str, Path)) else "a detectron2 state dict"
    path = save_checkpoint(output, model, class_names, category_ids, iteration=0,
                           train_config={"data": {"train": train_dataset}, "converted_from": origin})
    return path, model.config


def main(argv=None):
    p = argparse.ArgumentParser(description="Convert a detectron2 model-zoo R50/R101-FPN Faster/Mask R-CNN "
                                            "checkpoint (model_final_*.pkl) into our detector checkpoint.")
    p.add_argument("source", help="detectron2 checkpoint: model_final_*.pkl (or a .pth state dict)")
    p.add_argument("output", help="our checkpoint to write (.pth)")
    p.add_argument("--no-mask", dest="mask", action="store_const", const=False, default=None,
                   help="leave a Mask R-CNN's mask head out (a Faster R-CNN)")
    args = p.parse_args(argv)
    path, config = write_checkpoint(args.source, args.output, mask=args.mask)
    print(f"wrote {path}: {config.backbone}-FPN {'Mask' if config.mask else 'Faster'} R-CNN, "
          f"{config.num_classes} COCO classes")
    print(f"evaluate with: python tools/eval_coco.py --checkpoint {path}")


if __name__ == "__main__":
    from .cli import run
    run(main)
