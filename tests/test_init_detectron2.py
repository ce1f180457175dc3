"""detectron2 model-zoo detectors as --init sources, and the compat="detectron2" inference mode.

The parity tests build detectron2 0.6's own GeneralizedRCNN from its zoo
configs (R50-FPN Faster, R50-FPN Mask, R50-C4 Faster) on the CPU with seeded
random weights, save the state dict as a zoo-layout ``.pkl``, build ours with
``detectron2_source(path)`` and run both on real COCO photographs
(tests/data/coco_*.jpg, see tests/data/README.md; and R50-C4 Mask on one): detectron2 fed as its
DefaultPredictor feeds it (BGR uint8 HWC, ResizeShortestEdge), ours the RGB
image in [0, 1]. Every detectron2 detection must have a counterpart of ours
(same class, box IoU >= 0.99, score within 1e-3); masks are compared by IoU.
The test size is 320 (max 533) on both sides instead of 800/1333, which keeps
upscaling and downscaling photos (the 8-bit PIL resize) in play.
"""
import pickle
import time
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from backbones.errors import UserError
from detection import build_detector
from detection.convert_detectron2 import (COCO_CLASSES, _anchor_order, architecture_problem,
                                          convert_detectron2_detector)
from detection.detectron2_compat import detectron2_output_size, resize_8bit
from detection.init.detectron2_zoo import DETECTRON2_ZOO, detectron2_source, zoo_file, zoo_url
from detectron2_random import randomise_detectron2

pytestmark = [pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning"),
              pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")]

DATA = Path(__file__).parent / "data"
PHOTOS = [DATA / f"coco_{i}.jpg" for i in ("000000128372", "000000404249", "000000194216")]
SIZE, MAX_SIZE = 320, 533


# --- the zoo table, names and bad input (no model built) ---------------------------------------

def detectron2_zoo_table():
    """detectron2 0.6's _ModelZooUrls (S3_PREFIX, CONFIG_PATH_TO_URL_SUFFIX), read from its source: importing
    detectron2.model_zoo needs pkg_resources, which this environment's setuptools no longer has."""
    import ast
    import detectron2
    tree = ast.parse((Path(detectron2.__file__).parent / "model_zoo/model_zoo.py").read_text())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("S3_PREFIX", "CONFIG_PATH_TO_URL_SUFFIX"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["S3_PREFIX"], found["CONFIG_PATH_TO_URL_SUFFIX"]


def test_zoo_table_is_detectron2s():
    prefix, suffixes = detectron2_zoo_table()
    for name in DETECTRON2_ZOO:
        assert zoo_url(name) == prefix + name + "/" + suffixes[name]
    for name in ("COCO-Detection/faster_rcnn_R_50_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x",
                 "COCO-Detection/faster_rcnn_R_50_C4_3x", "COCO-Detection/faster_rcnn_R_101_FPN_3x",
                 "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x", "COCO-Detection/faster_rcnn_R_101_C4_3x"):
        assert name in DETECTRON2_ZOO
    assert zoo_url("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml") == (
        "https://dl.fbaipublicfiles.com/detectron2/COCO-Detection/faster_rcnn_R_50_FPN_3x/137849458/"
        "model_final_280758.pkl")


def test_unknown_zoo_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="unknown detectron2 model-zoo entry.*faster_rcnn_R_50_FPN_3x") as err:
        detectron2_source("COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x")
    assert "\n" not in str(err.value)


def _names(*names):
    return {n: np.zeros((1,), np.float32) for n in names}


BACKBONE = ("backbone.bottom_up.stem.conv1.weight", "backbone.bottom_up.res2.0.conv1.weight")
HEADS = ("proposal_generator.rpn_head.conv.weight", "roi_heads.box_predictor.cls_score.weight")


@pytest.mark.parametrize("names, what", [
    (BACKBONE + HEADS + ("roi_heads.box_head.1.fc1.weight", "roi_heads.box_predictor.1.cls_score.weight"),
     "Cascade R-CNN"),
    (BACKBONE + HEADS + ("roi_heads.keypoint_head.conv_fcn1.weight",), "Keypoint R-CNN"),
    (BACKBONE + HEADS + ("roi_heads.box_head.conv1.weight", "roi_heads.box_head.conv1.norm.weight"),
     "GroupNorm"),
    (BACKBONE + ("head.cls_score.weight", "head.bbox_pred.weight"), "RetinaNet"),
    (("backbone.stem.conv1.weight", "backbone.res5.0.conv1.weight") + HEADS, "DC5"),
    (("stem.conv1.weight", "res2.0.conv1.weight"), "backbone-only"),
    (BACKBONE, "backbone-only"),
    (BACKBONE + ("proposal_generator.rpn_head.conv.weight",), "RPN-only"),
])
def test_other_architectures_are_named_in_one_line(tmp_path, names, what):
    assert what in architecture_problem(names)
    path = tmp_path / "model_final_x.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": _names(*names)}, f)
    with pytest.raises(UserError, match=what) as err:
        detectron2_source(path)
    assert "\n" not in str(err.value)


def test_missing_local_file():
    with pytest.raises(UserError, match="does not exist"):
        detectron2_source("/nonexistent/model_final_abc.pkl")


def test_zoo_file_is_cached_under_torch_hub_and_trusted_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    name = "COCO-Detection/faster_rcnn_R_50_C4_3x"

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError, match="put it at .*checkpoints/detectron2/COCO-Detection/faster_rcnn_R_50_C4_3x/"
                                        "137849393/model_final_f97cb7.pkl .*--init PATH"):
        detectron2_source(name)

    cached = tmp_path / "hub/checkpoints/detectron2" / name / "137849393/model_final_f97cb7.pkl"
    cached.parent.mkdir(parents=True, exist_ok=True)  # fetch made it
    with open(cached, "wb") as f:  # a stand-in, recognised as backbone-only weights after the hash check
        pickle.dump({"model": _names("stem.conv1.weight", "res2.0.conv1.weight")}, f)
    with pytest.raises(UserError, match="backbone-only"):
        detectron2_source(name)
    record = cached.with_name(cached.name + ".sha256")
    assert record.is_file()  # first use: the hash is recorded beside the file
    assert zoo_file(name) == cached
    with open(cached, "ab") as f:
        f.write(b"changed")
    with pytest.raises(UserError, match="damaged or not the expected file"):
        detectron2_source(name)


def test_resize_is_pils_on_8bit_images():
    """detectron2's ResizeShortestEdge: PIL BILINEAR on uint8, the size rounded; ours reproduces it exactly."""
    for path in PHOTOS:
        image = Image.open(path).convert("RGB")
        rgb = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
        for short, longest in ((SIZE, MAX_SIZE), (800, 1333)):
            h, w = detectron2_output_size(image.height, image.width, short, longest)
            expected = np.asarray(image.resize((w, h), Image.BILINEAR))
            assert np.array_equal(resize_8bit(rgb, (h, w)).permute(1, 2, 0).numpy().astype(np.uint8), expected)
    assert detectron2_output_size(480, 640, 800, 1333) == (800, 1067)  # torchvision's floor: 1066


# --- parity with detectron2's GeneralizedRCNN ---------------------------------------------------

def detectron2_model(config_name, post_nms_topk=None):
    import detectron2
    from detectron2.config import get_cfg
    with warnings.catch_warnings():  # detectron2 0.6 uses torch.jit.script, deprecated in torch 2.x
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
        from detectron2.modeling import build_model
    cfg = get_cfg()
    cfg.merge_from_file(str(Path(detectron2.__file__).parent / "model_zoo/configs" / f"{config_name}.yaml"))
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = "cpu", ""
    if post_nms_topk:
        cfg.MODEL.RPN.POST_NMS_TOPK_TEST = post_nms_topk
    torch.manual_seed(0)
    return randomise_detectron2(build_model(cfg).eval())


def compare(d2, ours, photos, label):
    """Run both on each photo as detectron2's DefaultPredictor and our inference feed them."""
    import detectron2.data.transforms as T
    resize = T.ResizeShortestEdge([SIZE, SIZE], MAX_SIZE)
    total = matched = 0
    mask_ious = []
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        bgr = rgb[:, :, ::-1]
        resized = resize.get_transform(bgr).apply_image(bgr)
        start = time.time()
        with torch.no_grad():
            expected = d2([{"image": torch.as_tensor(resized.astype("float32").transpose(2, 0, 1)),
                            "height": rgb.shape[0], "width": rgb.shape[1]}])[0]["instances"]
            middle = time.time()
            found = ours([torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255])[0]
        boxes, scores, labels = expected.pred_boxes.tensor, expected.scores, expected.pred_classes + 1
        ok = ((box_iou(boxes, found["boxes"]) >= 0.99) & (labels[:, None] == found["labels"][None])
              & ((scores[:, None] - found["scores"][None]).abs() <= 1e-3))
        total += len(boxes)
        matched += int(ok.any(1).sum())
        if expected.has("pred_masks"):
            for i in torch.where(ok.any(1))[0]:
                a, b = expected.pred_masks[i], found["masks"][torch.where(ok[i])[0][0], 0] >= 0.5
                union = int((a | b).sum())
                mask_ious.append(int((a & b).sum()) / union if union else 1.0)  # both empty: the same
        print(f"{label} {path.name}: detectron2 {len(boxes)}, ours {len(found['boxes'])}, matched "
              f"{int(ok.any(1).sum())} (detectron2 {middle - start:.1f} s, ours {time.time() - middle:.1f} s)")
    print(f"{label}: {matched}/{total} = {100 * matched / total:.2f}% of detectron2's detections matched"
          + (f"; mask IoU mean {np.mean(mask_ious):.4f}, min {min(mask_ious):.4f}" if mask_ious else ""))
    return total, matched, mask_ious


PARITY = [  # (zoo config, post-NMS proposals for both, photos): C4's res5 per RoI is slow on the CPU
    ("COCO-Detection/faster_rcnn_R_50_FPN_3x", None, PHOTOS),
    ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x", None, PHOTOS),
    ("COCO-Detection/faster_rcnn_R_50_C4_3x", 300, PHOTOS[:2]),
    ("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x", 300, PHOTOS[:1]),
]


@pytest.mark.slow
@pytest.mark.parametrize("config_name, post_nms_topk, photos", PARITY, ids=[p[0].split("/")[1] for p in PARITY])
def test_detections_match_detectron2(tmp_path, config_name, post_nms_topk, photos):
    d2 = detectron2_model(config_name, post_nms_topk)
    path = tmp_path / "model_final_test.pkl"
    with open(path, "wb") as f:  # the zoo's layout
        pickle.dump({"model": {k: v.numpy() for k, v in d2.state_dict().items()},
                     "__author__": "Detectron2 Model Zoo"}, f)
    source = detectron2_source(path)
    c4, mask = "C4" in config_name, "mask_rcnn" in config_name
    assert (source.config.compat, source.config.backbone, source.config.neck, source.config.mask) == (
        "detectron2", "resnet50", "c4" if c4 else "fpn", mask)
    assert source.config.stride_in_1x1 and source.class_names == COCO_CLASSES
    assert "detectron2" in source.description
    options = dict(min_size=SIZE, max_size=MAX_SIZE)
    if post_nms_topk:
        options["rpn_post_nms_top_n_test"] = post_nms_topk
    ours = build_detector(source.config, **options)
    ours.load_state_dict(source.state_dict)  # strict
    total, matched, mask_ious = compare(d2, ours.eval(), photos, config_name)
    assert total >= 100 * len(photos) * 0.5  # the random heads do detect
    assert matched >= 0.99 * total
    if mask:
        assert np.mean(mask_ious) >= 0.99


@pytest.mark.parametrize("config_name", ["COCO-Detection/faster_rcnn_R_50_C4_3x",
                                         "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x"])
def test_c4_checkpoints_convert(config_name):
    """res5 becomes the per-RoI box head (shared with the mask branch); the RPN's 15 anchors are reordered."""
    d2 = detectron2_model(config_name)
    d2_state = d2.state_dict()
    config, state = convert_detectron2_detector(d2_state)
    assert (config.neck, config.anchor_sizes, config.rpn_pre_nms_top_n_test) == ("c4", (32, 64, 128, 256, 512), 6000)
    ours = build_detector(config)
    ours.load_state_dict(state)  # strict
    if config.mask:
        assert config.mask == ("mask_rcnn" in config_name) and ours.roi_heads.box_head[0] is ours.roi_heads.mask_head
    order = _anchor_order(5, 3)  # ours (ratio-major) -> detectron2's (size-major)
    assert torch.equal(ours.rpn.anchor_generator.cell_anchors[0],
                       list(d2.proposal_generator.anchor_generator.cell_anchors)[0][order])
    assert torch.equal(state["rpn.head.cls_logits.bias"],
                       d2_state["proposal_generator.rpn_head.objectness_logits.bias"][order])
    deltas = d2_state["proposal_generator.rpn_head.anchor_deltas.weight"].view(15, 4, -1, 1, 1)[order]
    assert torch.equal(state["rpn.head.bbox_pred.weight"], deltas.flatten(0, 1))
    assert torch.equal(state["roi_heads.box_head.0.2.conv3.weight"], d2_state["roi_heads.res5.2.conv3.weight"])


def test_compat_mode_keeps_state_dict_names_and_default_unchanged():
    """compat only swaps components: the same parameters, and the default model is torchvision's."""
    plain = build_detector(backbone="resnet18", neck="fpn", num_classes=3, mask=True)
    compat = build_detector(backbone="resnet18", neck="fpn", num_classes=3, mask=True, compat="detectron2")
    assert plain.config.compat == "torchvision"
    assert type(plain.rpn.anchor_generator).__name__ == "AnchorGenerator"
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in compat.state_dict().items()}
    assert compat.rpn.anchor_generator.strides == (4, 8, 16, 32, 64)
    assert compat.roi_heads.mask_roi_pool.strides == (4, 8, 16, 32)
    c4 = build_detector(backbone="resnet18", neck="c4", num_classes=3, compat="detectron2")
    assert c4.rpn.anchor_generator.strides == (16,) and c4.transform.size_divisible == 1
    with pytest.raises(UserError, match="compat"):
        build_detector(backbone="resnet18", num_classes=3, compat="caffe2")
