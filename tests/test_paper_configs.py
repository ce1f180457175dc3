"""configs/paper/: the ResNet paper's detection experiments (He et al. 2015, Appendix A) and FPN 3x counterparts.

Every file loads through the project's loader (``load_config``, and the run layer's ``resolve_config``
with the linear scaling rule), resolves to the settings its comments cite, and builds a detector
(random weights: ``pretrained`` is overridden to none, so nothing is downloaded; no forward passes).
"""
import dataclasses
from pathlib import Path

import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d

from detection.config import load_config
from detection.data.catalog import names as dataset_names
from detection.cli import train_det
from detection.detector import build_detector
from detection.engine.solver import scale_to_batch
from detection.run import resolve_config

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "paper"

# Settings shared by the six C4 files (_base_c4_paper.yaml): Appendix A, Faster R-CNN Sec. 3.1.3/3.3,
# Fast R-CNN Sec. 2.3/4.5 and py-faster-rcnn's config.
C4_MODEL = dict(neck="c4", mask=False, pretrained="torchvision", norm="frozen_bn", freeze_at=2,
                min_size=600, max_size=1000, aspect_ratios=(0.5, 1.0, 2.0), rpn_batch_size_per_image=256,
                rpn_pre_nms_top_n_train=12000, rpn_post_nms_top_n_train=2000, rpn_pre_nms_top_n_test=6000,
                rpn_post_nms_top_n_test=300, box_batch_size_per_image=128, box_score_thresh=0.05,
                box_nms_thresh=0.3, box_detections_per_img=100)
C4_SOLVER = dict(optimizer="sgd", momentum=0.9, weight_decay=0.0005, weight_decay_bias=0.0, warmup_iters=0)
# VOC: Faster R-CNN Sec. 3.1.3 (1 image, lr 0.001 for 60k then 0.0001 for 20k) and Sec. 3.3 (anchors)
VOC = dict(model=dict(num_classes=20, anchor_sizes=(128, 256, 512)),
           solver=dict(schedule="paper_voc", ims_per_batch=1, reference_batch_size=1, base_lr=0.001,
                       max_iter=80000, steps=(60000,)))
# COCO: Appendix A (8 images, lr 0.001 for 240k then 0.0001 for 80k), anchors of Faster R-CNN Sec. 4.2
COCO = dict(model=dict(num_classes=80, anchor_sizes=(64, 128, 256, 512)),
            solver=dict(schedule="paper_coco", ims_per_batch=8, reference_batch_size=8, base_lr=0.001,
                        max_iter=320000, steps=(240000,), eval_period=40000),
            data=dict(train="coco_2014_train", test="coco_2014_val"))
# FPN 3x: detectron2's Base-RCNN-FPN + 3x schedule
FPN_3X = dict(model=dict(neck="fpn", num_classes=80, pretrained="torchvision", norm="frozen_bn", freeze_at=2,
                         min_size=(640, 672, 704, 736, 768, 800), max_size=1333, anchor_sizes=None,
                         rpn_post_nms_top_n_train=1000, box_batch_size_per_image=512),
              solver=dict(schedule="3x", ims_per_batch=16, reference_batch_size=16, base_lr=0.02, max_iter=270000,
                          steps=(210000, 250000), warmup_iters=1000, weight_decay=0.0001, weight_decay_norm=0.0),
              data=dict(train="coco_2017_train", test="coco_2017_val"))


def _c4(base, backbone, **data):
    return dict(model={**C4_MODEL, **base["model"], "backbone": backbone},
                solver={**C4_SOLVER, **base["solver"], **data.pop("solver", {})},
                data={**base.get("data", {}), **data})


def _fpn(depth, mask):
    return dict(model={**FPN_3X["model"], "backbone": f"resnet{depth}", "mask": mask},
                solver=FPN_3X["solver"], data=FPN_3X["data"])


VOC07 = dict(train="voc_0712_trainval", test="voc_2007_test", solver=dict(eval_period=10000))
VOC12 = dict(train="voc_07++12", test="voc_2012_test", solver=dict(eval_period=0))
EXPECTED = {
    "faster_rcnn_vgg16_C4_voc07.yaml": _c4(VOC, "vgg16", **VOC07),
    "faster_rcnn_R101_C4_voc07.yaml": _c4(VOC, "resnet101", **VOC07),
    "faster_rcnn_vgg16_C4_voc12.yaml": _c4(VOC, "vgg16", **VOC12),
    "faster_rcnn_R101_C4_voc12.yaml": _c4(VOC, "resnet101", **VOC12),
    "faster_rcnn_vgg16_C4_coco.yaml": _c4(COCO, "vgg16"),
    "faster_rcnn_R101_C4_coco.yaml": _c4(COCO, "resnet101"),
    # Table 9 "+context" (Appendix B): the COCO model with global context, evaluated with box refinement
    "faster_rcnn_R101_C4_coco_context.yaml": {**_c4(COCO, "resnet101"), "model": {
        **_c4(COCO, "resnet101")["model"], "global_context": True, "box_refinement": True}},
    **{f"{kind}_rcnn_R{depth}_FPN_3x.yaml": _fpn(depth, kind == "mask")
       for kind in ("faster", "mask") for depth in (50, 101, 152)},
}
# the paper's numbers each C4 file must quote (Table 7: VOC 2007 / 2012 test mAP; Table 8: COCO val)
PAPER_NUMBERS = {"voc07": ("73.2", "76.4"), "voc12": ("70.4", "73.8"), "coco": ("41.5", "48.4", "21.2", "27.2")}


def _resolved(argv):
    """The run settings ``train_det ARGV`` resolves."""
    args = train_det.parse_args(argv)
    return resolve_config(args.config, train_det.flags(args), args.overrides)


def test_every_paper_file_has_expectations():
    experiments = {p.name for p in PAPER.glob("*.yaml") if not p.name.startswith("_")}
    assert experiments == set(EXPECTED)
    for base in PAPER.glob("_*.yaml"):  # shared bases load on their own too
        load_config(base).model.validate()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_resolved_settings_match_the_cited_ones(name):
    cfg = load_config(PAPER / name)
    cfg.model.validate()
    for section, values in EXPECTED[name].items():
        got = {key: getattr(getattr(cfg, section), key) for key in values}
        got = {k: tuple(v) if isinstance(v, list) else v for k, v in got.items()}
        assert got == values, f"{name} [{section}]"
    assert {cfg.data.train, cfg.data.test} <= set(dataset_names())
    # the recipe is written for its own batch: the linear scaling rule leaves it unchanged
    assert scale_to_batch(cfg.solver) is cfg.solver


TABLE9 = {"faster_rcnn_R101_C4_coco_context.yaml"}
TABLE8 = sorted(set(EXPECTED) - TABLE9)


def test_the_context_file_quotes_appendix_b_and_builds_the_context_head():
    from detection.box_refinement import BoxRefinementRoIHeads
    from detection.global_context import ContextPredictor, ContextRoIPool
    text = (PAPER / "faster_rcnn_R101_C4_coco_context.yaml").read_text()
    for quoted in ("48.4 / 27.2", "49.9 / 29.9", "51.1 / 30.0", "53.8 / 32.5", "trained end-to-end",
                   "IoU threshold of 0.3", "Not as in the paper"):
        assert quoted in text
    cfg = load_config(PAPER / "faster_rcnn_R101_C4_coco_context.yaml").model
    heads = build_detector(dataclasses.replace(cfg, pretrained="none")).roi_heads
    assert isinstance(heads, BoxRefinementRoIHeads) and isinstance(heads.box_roi_pool, ContextRoIPool)
    assert heads.box_roi_pool.pool.featmap_names == ["res4"] and isinstance(heads.box_predictor, ContextPredictor)
    # res5's 2048 channels for the RoI and 2048 for the image: 81 classes, 81 x 4 deltas
    assert heads.box_predictor.predictor.cls_score.in_features == 4096
    assert heads.box_predictor.predictor.bbox_pred.out_features == 81 * 4


@pytest.mark.parametrize("name", sorted(n for n in TABLE8 if "_C4_" in n))
def test_c4_files_quote_the_papers_numbers_and_deviations(name):
    text = (PAPER / name).read_text()
    for number in PAPER_NUMBERS[name.rsplit("_", 1)[1].removesuffix(".yaml")]:
        assert number in text, f"{name} does not quote the paper's {number}"
    assert "Not as in the paper" in text and "approximate joint training" in text and "RoIAlign" in text
    if "voc12" in name:
        assert "evaluation server" in text and "comp4_det_test_<class>.txt" in text


@pytest.mark.parametrize("name, ims, lr, max_iter, steps", [
    # 8 GPUs x 1 image on VOC: 8x the lr, 1/8 of the iterations
    ("faster_rcnn_R101_C4_voc07.yaml", 8, 0.008, 10000, (7500,)),
    # the paper's Fast R-CNN step batch (16) on COCO
    ("faster_rcnn_R101_C4_coco.yaml", 16, 0.002, 160000, (120000,)),
    # detectron2's 3x on 8 images
    ("mask_rcnn_R50_FPN_3x.yaml", 8, 0.01, 540000, (420000, 500000)),
])
def test_train_det_applies_the_linear_scaling_rule(name, ims, lr, max_iter, steps):
    path = str(PAPER / name)
    same = _resolved(["--config", path])
    assert (same.solver.ims_per_batch, same.model.pretrained) == (EXPECTED[name]["solver"]["ims_per_batch"],
                                                                  "torchvision")
    assert same.solver.max_iter == EXPECTED[name]["solver"]["max_iter"]
    cfg = _resolved(["--config", path, f"solver.ims_per_batch={ims}"])
    assert cfg.solver.base_lr == pytest.approx(lr)
    assert (cfg.solver.max_iter, tuple(cfg.solver.steps), cfg.solver.reference_batch_size) == (max_iter, steps, ims)


def _frozen(model):
    return {n for n, p in model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("name", TABLE8)
def test_detector_builds_as_configured(name):
    torch.manual_seed(0)
    cfg = load_config(PAPER / name).model
    model = build_detector(dataclasses.replace(cfg, pretrained="none"))  # random weights: nothing downloaded
    resolved = model.config
    assert (resolved.norm, resolved.freeze_at) == ("frozen_bn", 2)  # kept although nothing is pretrained
    sizes = cfg.min_size if isinstance(cfg.min_size, tuple) else (cfg.min_size,)
    assert (tuple(model.transform.min_size), model.transform.max_size) == (sizes, cfg.max_size)
    assert model.rpn._pre_nms_top_n == {"training": cfg.rpn_pre_nms_top_n_train,
                                        "testing": cfg.rpn_pre_nms_top_n_test}
    assert model.rpn._post_nms_top_n == {"training": cfg.rpn_post_nms_top_n_train,
                                         "testing": cfg.rpn_post_nms_top_n_test}
    heads = model.roi_heads
    assert heads.fg_bg_sampler.batch_size_per_image == cfg.box_batch_size_per_image
    assert (heads.score_thresh, heads.nms_thresh, heads.detections_per_img) == (
        cfg.box_score_thresh, cfg.box_nms_thresh, cfg.box_detections_per_img)
    assert heads.box_predictor.cls_score.out_features == cfg.num_classes + 1
    assert heads.has_mask() == cfg.mask
    anchors = model.rpn.anchor_generator
    per_location = len(anchors.sizes[0]) * len(cfg.aspect_ratios)
    assert model.rpn.head.cls_logits.out_channels == per_location
    if cfg.neck == "c4":
        assert anchors.sizes == (tuple(cfg.anchor_sizes),) and per_location in (9, 12)
        if cfg.backbone == "vgg16":
            # RoIs pooled 7x7 from conv5_3, fc6/fc7 per RoI; conv1-conv2 frozen (Fast R-CNN Sec. 4.5)
            assert model.backbone.stage_names[-1] == "conv5" and heads.box_roi_pool.output_size == (7, 7)
            assert heads.box_head[1].in_features == 512 * 7 * 7 and heads.box_head[4].out_features == 4096
            assert _frozen(model) == {f"backbone.features.{i}.{w}" for i in (0, 2, 5, 7) for w in ("weight", "bias")}
        else:
            # shared conv1..res4 (stride 16), RoIs before conv5_1, res5 per RoI, BN fixed
            assert model.backbone.stage_names[-1] == "res4" and model.backbone.out_channels == 1024
            assert len(model.backbone.layer3) == 23  # ResNet-101
            assert heads.box_roi_pool.featmap_names == ["res4"] and heads.box_roi_pool.output_size == (14, 14)
            assert heads.box_head[0][0].conv1.in_channels == 1024 and heads.box_predictor.cls_score.in_features == 2048
            assert {n.split(".")[1] for n in _frozen(model)} == {"conv1", "layer1"}  # BN: buffers only
    else:
        assert anchors.sizes == ((32,), (64,), (128,), (256,), (512,))
        body = model.backbone.body
        assert len(body.layer3) == {"resnet50": 6, "resnet101": 23, "resnet152": 36}[cfg.backbone]
        assert {n.split(".")[2] for n in _frozen(model)} == {"conv1", "layer1"}
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    assert not norms  # frozen BN only (or no norm layers at all: VGG-16)
    if cfg.backbone != "vgg16":
        assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
