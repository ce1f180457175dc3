"""Whole-detector conversion of detectron2 model-zoo R50/R101-FPN Faster/Mask R-CNN checkpoints.

The first tests need no detectron2: a synthetic state dict with the names and
shapes of the zoo's R50-FPN Mask R-CNN ``model_final_*.pkl`` (written out by
hand below) must convert, load strictly into our detector and round-trip
through our checkpoint format. The rest build detectron2's own
GeneralizedRCNN (R50-FPN Mask R-CNN, random weights and norm statistics, CPU,
128-pixel input), convert its state dict and compare the two models stage by
stage: features, RPN outputs, proposals, box and mask heads, detections.
"""
import pickle
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection.image_list import ImageList

from backbones.conversions.common import ConversionError
from detection import build_detector
from detection.convert_detectron2 import (COCO_CATEGORY_IDS, COCO_CLASSES, build_converted,
                                          convert_detectron2_detector, main)
from detection.engine.checkpoint import load_detector
from detection.run.evaluate import default_test_dataset
from detectron2_random import randomise_detectron2

# detectron2 0.6's own: meshgrid without indexing=, logger.warn
pytestmark = [pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning"),
              pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")]


# --- without detectron2: a synthetic zoo checkpoint ---------------------------------------------

def zoo_fpn_state(mask=True, res4_blocks=6, seed=0) -> dict:
    """Names and shapes of detectron2's R50/R101-FPN model_final_*.pkl (float32 numpy arrays)."""
    rng = np.random.default_rng(seed)
    state = {}

    def add(name, *shape, bias=False):
        state[f"{name}.weight"] = rng.standard_normal(shape, dtype=np.float32) * 0.01
        if bias:
            state[f"{name}.bias"] = rng.standard_normal(shape[:1], dtype=np.float32) * 0.01

    def conv_norm(name, out, inp, k):
        add(name, out, inp, k, k)
        for param in ("weight", "bias", "running_mean", "running_var"):  # FrozenBN
            state[f"{name}.norm.{param}"] = rng.random(out, dtype=np.float32) + 0.5

    b = "backbone.bottom_up"
    conv_norm(f"{b}.stem.conv1", 64, 3, 7)
    inp = 64
    for stage, blocks, width in zip((2, 3, 4, 5), (3, 4, res4_blocks, 3), (64, 128, 256, 512)):
        for block in range(blocks):
            if block == 0:
                conv_norm(f"{b}.res{stage}.0.shortcut", 4 * width, inp, 1)
            conv_norm(f"{b}.res{stage}.{block}.conv1", width, inp, 1)
            conv_norm(f"{b}.res{stage}.{block}.conv2", width, width, 3)
            conv_norm(f"{b}.res{stage}.{block}.conv3", 4 * width, width, 1)
            inp = 4 * width
        add(f"backbone.fpn_lateral{stage}", 256, inp, 1, 1, bias=True)
        add(f"backbone.fpn_output{stage}", 256, 256, 3, 3, bias=True)
    add("proposal_generator.rpn_head.conv", 256, 256, 3, 3, bias=True)
    add("proposal_generator.rpn_head.objectness_logits", 3, 256, 1, 1, bias=True)
    add("proposal_generator.rpn_head.anchor_deltas", 12, 256, 1, 1, bias=True)
    add("roi_heads.box_head.fc1", 1024, 256 * 7 * 7, bias=True)
    add("roi_heads.box_head.fc2", 1024, 1024, bias=True)
    add("roi_heads.box_predictor.cls_score", 81, 1024, bias=True)
    add("roi_heads.box_predictor.bbox_pred", 320, 1024, bias=True)
    if mask:
        for i in range(1, 5):
            add(f"roi_heads.mask_head.mask_fcn{i}", 256, 256, 3, 3, bias=True)
        add("roi_heads.mask_head.deconv", 256, 256, 2, 2, bias=True)
        add("roi_heads.mask_head.predictor", 80, 256, 1, 1, bias=True)
    return state


@pytest.fixture(scope="module")
def zoo_state():
    return zoo_fpn_state()


def t(array):
    return torch.from_numpy(array)


def test_every_tensor_of_a_zoo_mask_rcnn_is_mapped(zoo_state):
    config, ours = convert_detectron2_detector(zoo_state)
    assert (config.backbone, config.neck, config.mask, config.num_classes) == ("resnet50", "fpn", True, 80)
    assert config.stride_in_1x1 and config.norm == "frozen_bn"
    # the caffe mean/std (BGR, 0-255) in RGB [0, 1] units
    assert np.allclose(config.pixel_mean, [123.675 / 255, 116.28 / 255, 103.53 / 255])
    assert np.allclose(config.pixel_std, [1 / 255] * 3)
    model = build_detector(config)
    model.load_state_dict(ours)  # strict: nothing missing, nothing left over, shapes agree
    assert len(ours) == len(zoo_state) == len(model.state_dict())

    # FPN: torchvision counts its inputs from res2; lateral 1x1 convs are inner_blocks
    assert torch.equal(ours["backbone.fpn.inner_blocks.0.0.weight"], t(zoo_state["backbone.fpn_lateral2.weight"]))
    assert torch.equal(ours["backbone.fpn.inner_blocks.3.0.bias"], t(zoo_state["backbone.fpn_lateral5.bias"]))
    assert torch.equal(ours["backbone.fpn.layer_blocks.2.0.weight"], t(zoo_state["backbone.fpn_output4.weight"]))
    assert torch.equal(ours["rpn.head.conv.0.0.weight"], t(zoo_state["proposal_generator.rpn_head.conv.weight"]))
    assert torch.equal(ours["rpn.head.bbox_pred.bias"], t(zoo_state["proposal_generator.rpn_head.anchor_deltas.bias"]))
    assert torch.equal(ours["roi_heads.box_head.fc7.weight"], t(zoo_state["roi_heads.box_head.fc2.weight"]))
    assert torch.equal(ours["roi_heads.mask_head.3.0.weight"], t(zoo_state["roi_heads.mask_head.mask_fcn4.weight"]))
    assert torch.equal(ours["roi_heads.mask_predictor.conv5_mask.weight"],
                       t(zoo_state["roi_heads.mask_head.deconv.weight"]))
    # BGR -> RGB: the stem conv's input channels reversed, nothing else
    assert torch.equal(ours["backbone.body.conv1.weight"],
                       t(zoo_state["backbone.bottom_up.stem.conv1.weight"]).flip(1))
    assert torch.equal(ours["backbone.body.layer3.5.conv2.weight"],
                       t(zoo_state["backbone.bottom_up.res4.5.conv2.weight"]))

    # classes: detectron2's background is last, torchvision's first
    d2_scores = t(zoo_state["roi_heads.box_predictor.cls_score.weight"])
    assert torch.equal(ours["roi_heads.box_predictor.cls_score.weight"][0], d2_scores[80])
    assert torch.equal(ours["roi_heads.box_predictor.cls_score.weight"][1:], d2_scores[:80])
    boxes = ours["roi_heads.box_predictor.bbox_pred.weight"]
    assert boxes.shape[0] == 81 * 4 and not boxes[:4].any()
    assert torch.equal(boxes[4:], t(zoo_state["roi_heads.box_predictor.bbox_pred.weight"]))
    masks = ours["roi_heads.mask_predictor.mask_fcn_logits.bias"]
    assert masks[0] == 0 and torch.equal(masks[1:], t(zoo_state["roi_heads.mask_head.predictor.bias"]))


def test_depth_and_mask_come_from_the_checkpoint(zoo_state):
    assert convert_detectron2_detector(zoo_fpn_state(res4_blocks=23, mask=False))[0].backbone == "resnet101"
    config, ours = convert_detectron2_detector(zoo_state, mask=False)  # Faster R-CNN from a Mask R-CNN file
    assert not config.mask and not any("mask" in k for k in ours)
    with pytest.raises(ConversionError, match="no roi_heads.mask_head"):
        convert_detectron2_detector(zoo_fpn_state(mask=False), mask=True)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"roi_heads.res5.0.conv1.weight": np.zeros((1,), np.float32)}), "a mix of C4"),
    (lambda s: s.update({"roi_heads.keypoint_head.conv_fcn1.weight": np.zeros((1,), np.float32)}),
     "Keypoint R-CNN"),
    (lambda s: s.update({"roi_heads.box_head.extra.weight": np.zeros((1,), np.float32)}), "no counterpart"),
    (lambda s: s.update({"roi_heads.box_predictor.bbox_pred.weight": np.zeros((4, 1024), np.float32)}),
     "class-specific"),
    (lambda s: s.update({"roi_heads.mask_head.predictor.weight": np.zeros((1, 256, 1, 1), np.float32)}),
     "class-specific"),
    (lambda s: s.update({"pixel_mean": np.array([[[123.675]], [[116.28]], [[103.53]]], np.float32)}), "PIXEL_MEAN"),
    (lambda s: [s.pop(k) for k in list(s) if k.startswith("backbone.bottom_up.res4.5.")], "ResNet-50/101"),
])
def test_other_architectures_are_refused(zoo_state, change, message):
    state = dict(zoo_state)
    change(state)
    with pytest.raises(ConversionError, match=message):
        convert_detectron2_detector(state)


def test_zoo_pickle_becomes_a_checkpoint_eval_coco_can_load(zoo_state, tmp_path, capsys):
    source = tmp_path / "model_final_test.pkl"
    with open(source, "wb") as f:  # the zoo's layout: numpy arrays under "model"
        pickle.dump({"model": zoo_state, "__author__": "Detectron2 Model Zoo"}, f)
    main([str(source), str(tmp_path / "converted.pth")])
    assert "tools/eval_coco.py --checkpoint" in capsys.readouterr().out
    model, payload = load_detector(tmp_path / "converted.pth")
    assert model.config.mask and model.config.backbone == "resnet50"
    assert payload["class_names"] == list(COCO_CLASSES) and payload["category_ids"] == list(COCO_CATEGORY_IDS)
    assert default_test_dataset(payload) == "coco_2017_val"
    expected = convert_detectron2_detector(zoo_state)[1]
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_documented_torchvision_differences_still_hold():
    """The module docstring lists these (compat="torchvision"); if torchvision changes, it needs updating."""
    model = build_converted(zoo_fpn_state(mask=False), compat="torchvision")
    anchors = model.rpn.anchor_generator
    assert anchors.cell_anchors[0][0].tolist() == [-23, -11, 23, 11]  # detectron2: +-22.63, +-11.31
    # p6's stride is computed as image size // feature size: 800 px -> p5 25 rows -> p6 13 rows -> 61
    sizes = [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]
    features = [torch.zeros(1, 1, h, w) for h, w in sizes]
    p6 = anchors(ImageList(torch.zeros(1, 3, 800, 1216), [(800, 1216)]), features)[0][-13 * 19 * 3:]
    centres_y = ((p6[:, 1] + p6[:, 3]) / 2).unique()
    assert centres_y[1] - centres_y[0] == 61 and centres_y[-1] == 12 * 61  # detectron2: 64 and 768
    assert model.roi_heads.box_roi_pool.sampling_ratio == 2  # detectron2's ROIAlignV2: 0 (and aligned=True)


# --- against detectron2's own model -----------------------------------------------------------

R50_FPN_KEYS = {  # what detectron2's Base-RCNN-FPN.yaml sets, for when its configs are not installed
    "MODEL.META_ARCHITECTURE": "GeneralizedRCNN", "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone",
    "MODEL.RESNETS.OUT_FEATURES": ["res2", "res3", "res4", "res5"],
    "MODEL.FPN.IN_FEATURES": ["res2", "res3", "res4", "res5"],
    "MODEL.ANCHOR_GENERATOR.SIZES": [[32], [64], [128], [256], [512]],
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.5, 1.0, 2.0]],
    "MODEL.RPN.IN_FEATURES": ["p2", "p3", "p4", "p5", "p6"], "MODEL.RPN.PRE_NMS_TOPK_TEST": 1000,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 1000, "MODEL.ROI_HEADS.NAME": "StandardROIHeads",
    "MODEL.ROI_HEADS.IN_FEATURES": ["p2", "p3", "p4", "p5"], "MODEL.ROI_BOX_HEAD.NAME": "FastRCNNConvFCHead",
    "MODEL.ROI_BOX_HEAD.NUM_FC": 2, "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": 7,
    "MODEL.ROI_MASK_HEAD.NAME": "MaskRCNNConvUpsampleHead", "MODEL.ROI_MASK_HEAD.NUM_CONV": 4,
    "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION": 14, "MODEL.MASK_ON": True,
}
SIZE = 128


def detectron2_cfg():
    import detectron2
    from detectron2.config import get_cfg
    cfg = get_cfg()
    stock = Path(detectron2.__file__).parent / "model_zoo/configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
    if stock.is_file():  # tools/fetch_detectron2.py installs them
        cfg.merge_from_file(str(stock))
    else:
        for key, value in R50_FPN_KEYS.items():
            cfg.merge_from_list([key, value])
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    return cfg


@pytest.fixture(scope="module")
def models():
    """detectron2's R50-FPN Mask R-CNN with random weights and norm statistics, and its conversion."""
    cfg = detectron2_cfg()
    with warnings.catch_warnings():  # detectron2 0.6 uses torch.jit.script, deprecated in torch 2.x
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
        from detectron2.modeling import build_model
    torch.manual_seed(0)
    d2 = randomise_detectron2(build_model(cfg).eval())
    # torchvision's components as they are: these tests measure and undo the documented differences
    # one by one (compat="detectron2", which undoes them all: tests/test_init_detectron2.py)
    config, state = convert_detectron2_detector(d2.state_dict(), compat="torchvision")
    ours = build_detector(config, min_size=SIZE, max_size=SIZE)  # the image is already at test size
    ours.load_state_dict(state)
    return cfg, d2, ours.eval()


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(1)
    rgb01 = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16), size=(SIZE, SIZE), mode="bilinear")[0]
    return rgb01, rgb01.flip(0) * 255  # ours: RGB in [0, 1]; detectron2: BGR in [0, 255]


@pytest.fixture(scope="module")
def features(models, image):
    cfg, d2, ours = models
    with torch.no_grad():
        d2_images = d2.preprocess_image([{"image": image[1]}])
        our_images, _ = ours.transform([image[0]])
        return d2_images, d2.backbone(d2_images.tensor), our_images, ours.backbone(our_images.tensors)


def close(a, b, rel=1e-5):
    """Equal to float rounding: the two normalise and add in different orders."""
    return torch.allclose(a, b, rtol=0, atol=rel * float(b.abs().max()))


def test_features_are_the_same(features):
    _, d2_features, _, our_features = features
    assert list(our_features) == ["res2", "res3", "res4", "res5", "pool"]
    for ours, d2 in zip(our_features.values(), d2_features.values()):  # p2..p6
        assert ours.shape == d2.shape and close(ours, d2)


def test_rpn_outputs_are_the_same(models, features):
    cfg, d2, ours = models
    d2_images, d2_features, our_images, our_features = features
    levels = [d2_features[f] for f in cfg.MODEL.RPN.IN_FEATURES]
    with torch.no_grad():
        d2_logits, d2_deltas = d2.proposal_generator.rpn_head(levels)
        logits, deltas = ours.rpn.head(list(our_features.values()))
        for a, b in zip(logits + deltas, d2_logits + d2_deltas):
            assert close(a, b)
        # same anchors in the same order, but torchvision's are rounded (documented)
        d2_anchors = torch.cat([b.tensor for b in d2.proposal_generator.anchor_generator(levels)])
        anchors = ours.rpn.anchor_generator(our_images, list(our_features.values()))[0]
    assert anchors.shape == d2_anchors.shape and (anchors - d2_anchors).abs().max() < 0.5


@pytest.fixture
def detectron2_anchors(models, monkeypatch):
    """Our anchor generator with detectron2's unrounded cell anchors."""
    _, d2, ours = models
    monkeypatch.setattr(ours.rpn.anchor_generator, "cell_anchors",
                        [a.clone() for a in d2.proposal_generator.anchor_generator.cell_anchors])


def test_proposals_with_detectron2s_anchors_are_the_same(models, features, detectron2_anchors):
    cfg, d2, ours = models
    d2_images, d2_features, our_images, our_features = features
    with torch.no_grad():
        expected = d2.proposal_generator(d2_images, d2_features)[0][0].proposal_boxes.tensor
        proposals = ours.rpn(our_images, our_features)[0][0]
    assert proposals.shape == expected.shape and close(proposals, expected)


@pytest.fixture
def detectron2_pooling(models, monkeypatch):
    """Our RoI pooling made detectron2's ROIAlignV2: aligned=True, adaptive sampling (our neck exposes neither)."""
    _, _, ours = models
    monkeypatch.setattr(torchvision.ops.poolers, "roi_align", partial(torchvision.ops.roi_align, aligned=True))
    for pool in (ours.roi_heads.box_roi_pool, ours.roi_heads.mask_roi_pool):
        monkeypatch.setattr(pool, "sampling_ratio", 0)


def _rois(models, features):
    cfg, d2, _ = models
    with torch.no_grad():
        return d2.proposal_generator(features[0], features[1])[0][0].proposal_boxes


def test_roi_pooling_differs_only_by_detectron2s_roialign_v2(models, features):
    cfg, d2, ours = models
    rois = _rois(models, features)
    with torch.no_grad():
        d2_pooled = d2.roi_heads.box_pooler([features[1][f] for f in cfg.MODEL.ROI_HEADS.IN_FEATURES], [rois])
        ours_pooled = ours.roi_heads.box_roi_pool(features[3], [rois.tensor], features[2].image_sizes)
    assert not close(ours_pooled, d2_pooled, 1e-2)  # aligned=False, sampling_ratio=2: the documented difference


def test_roi_pooling_with_roialign_v2_is_the_same(models, features, detectron2_pooling):
    cfg, d2, ours = models
    rois = _rois(models, features)
    with torch.no_grad():
        d2_pooled = d2.roi_heads.box_pooler([features[1][f] for f in cfg.MODEL.ROI_HEADS.IN_FEATURES], [rois])
        ours_pooled = ours.roi_heads.box_roi_pool(features[3], [rois.tensor], features[2].image_sizes)
    assert close(ours_pooled, d2_pooled)


def test_box_and_mask_heads_are_the_same_for_the_same_rois(models, features):
    cfg, d2, ours = models
    rois = _rois(models, features)[:64]  # the mask head is slow on the CPU
    levels = [features[1][f] for f in cfg.MODEL.ROI_HEADS.IN_FEATURES]
    with torch.no_grad():
        pooled = d2.roi_heads.box_pooler(levels, [rois])
        d2_scores, d2_deltas = d2.roi_heads.box_predictor(d2.roi_heads.box_head(pooled))
        scores, deltas = ours.roi_heads.box_predictor(ours.roi_heads.box_head(pooled))
        pooled = d2.roi_heads.mask_pooler(levels, [rois])
        d2_masks = d2.roi_heads.mask_head.layers(pooled)
        masks = ours.roi_heads.mask_predictor(ours.roi_heads.mask_head(pooled))
    assert close(scores, torch.cat([d2_scores[:, -1:], d2_scores[:, :-1]], 1))  # background first
    assert close(scores.softmax(1)[:, 1:], d2_scores.softmax(1)[:, :-1])
    assert close(deltas[:, 4:], d2_deltas)
    assert close(masks[:, 1:], d2_masks)


def test_detections_agree_end_to_end(models, image, detectron2_anchors, detectron2_pooling):
    """With detectron2's anchors and RoIAlign, detections are the same; only mask pasting differs."""
    cfg, d2, ours = models
    with torch.no_grad():
        inputs = [{"image": image[1], "height": SIZE, "width": SIZE}]
        expected = d2(inputs)[0]["instances"]
        expected_28 = d2.inference(inputs, do_postprocess=False)[0].pred_masks  # before pasting
        found = ours([image[0]])[0]
        images, _ = ours.transform([image[0]])
        levels = ours.backbone(images.tensors)
        found_28 = ours.roi_heads(levels, ours.rpn(images, levels)[0], images.image_sizes)[0][0]["masks"]
    assert len(expected) > 10 and len(found["boxes"]) == len(expected)
    assert close(found["boxes"], expected.pred_boxes.tensor, 1e-4)
    assert close(found["scores"], expected.scores, 1e-4)
    assert torch.equal(found["labels"], expected.pred_classes + 1)  # our label 0 is the background
    assert close(found_28, expected_28, 1e-4)  # mask probabilities of each detection's class
    # pasted into the image by different code (documented): noisy random masks agree only roughly
    ours_masks, d2_masks = found["masks"][:, 0] > 0.5, expected.pred_masks
    iou = (ours_masks & d2_masks).sum((1, 2)) / (ours_masks | d2_masks).sum((1, 2)).clamp(min=1)
    assert iou.mean() > 0.6


def test_coco_classes_are_detectron2s():
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES
    things = [c for c in COCO_CATEGORIES if c["isthing"]]
    assert [c["name"] for c in things] == list(COCO_CLASSES)
    assert [c["id"] for c in things] == list(COCO_CATEGORY_IDS)


def test_faster_rcnn_state_dict_converts():
    cfg = detectron2_cfg()
    cfg.MODEL.MASK_ON = False
    from detectron2.modeling import build_model
    state = build_model(cfg).state_dict()
    model = build_converted(state)  # strict load inside
    assert not model.config.mask and model.config.backbone == "resnet50"
