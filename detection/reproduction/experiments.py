"""The experiments of each reproduction suite, with the paper's numbers beside them.

``paper``: Faster R-CNN in the paper's C4 design, VGG-16 vs ResNet-101
(He et al. 2015, Table 7: PASCAL VOC; Table 8: COCO val), then modern FPN
Faster/Mask R-CNN on ResNet-50/101/152 (no paper numbers: measured only).

``shapes``: the same comparison in miniature on the built-in data, small
enough for 2 CPU cores: plain vs residual nets at 18 and 34 layers, and
ResNet-50, each trained from scratch and fine-tuned from a backbone
pretrained on the data's object crops (the paper's ImageNet step).
"""
from dataclasses import dataclass, field
from typing import Optional

from backbones.errors import UnknownNameError

# metric key -> how the report names it
METRICS = {
    "voc07_map50": "VOC07 mAP@0.5 (11-point)",
    "voc_map50": "VOC mAP@0.5 (area)",
    "coco_ap": "COCO AP@[.5,.95]",
    "coco_ap50": "COCO AP@0.5",
    "coco_mask_ap": "COCO mask AP",
}


@dataclass(frozen=True)
class Experiment:
    name: str
    config: str                       # the training YAML
    backbone: str
    table: str                        # the report table the row belongs to
    metrics: tuple                    # METRICS keys measured for this row
    paper: dict = field(default_factory=dict)  # metric -> the paper's number
    baseline: Optional[str] = None    # the experiment its gains are measured against
    pretrain: Optional[str] = None    # pretraining config (tools/pretrain_cls.py) run first, if any
    overrides: tuple = ()             # key=value overrides of the training YAML
    gpu_hours: Optional[str] = None   # rough cost, for the "what it needs" listing
    scored_by_server: bool = False    # test annotations not public (VOC 2012): results files to submit
    note: str = ""                    # shown in the report
    # test-time variants (Table 9): evaluate another experiment's checkpoint instead of training one
    checkpoint_from: Optional[str] = None
    box_refinement: bool = False      # the paper's test-time box refinement (detection/box_refinement.py)
    tta_scales: tuple = ()            # multi-scale testing: shorter sides, merged by box voting (detection/tta.py)
    # an ensemble: the saved predictions of these experiments (earlier in the suite) merged per class by
    # NMS + box voting (detection/ensemble.py); trains and predicts nothing itself
    ensemble_of: tuple = ()

    @property
    def tta(self) -> Optional[dict]:
        """The test-time augmentation settings of a multi-scale row (no flips: the paper's has none)."""
        return {"scales": list(self.tta_scales), "flip": False, "merge": "vote"} if self.tta_scales else None

    @property
    def uses_pretraining(self) -> bool:
        return self.pretrain is not None

    @property
    def trains(self) -> bool:
        """False for the rows that reuse other experiments' checkpoints or predictions."""
        return not self.checkpoint_from and not self.ensemble_of


# --- the paper's experiments ------------------------------------------------------------------
VOC07 = "PASCAL VOC 2007 test, trained on 07+12 (Table 7)"
VOC12 = "PASCAL VOC 2012 test, trained on 07++12 (Table 7)"
COCO = "COCO val, trained on COCO train (Table 8)"
MODERN = "Modern designs on COCO 2017 val (no paper numbers)"

VOC12_NOTE = ("VOC 2012 test annotations are not public: the run writes results files in the PASCAL "
              "format (comp4) to submit to the evaluation server; the measured column stays empty.")


def _paper_pair(dataset, table, metrics, vgg, resnet, gpu_hours, note="", server=False):
    """VGG-16 and ResNet-101 Faster R-CNN (C4) on one benchmark; the paper's numbers per metric."""
    name = {"voc07": "voc07", "voc12": "voc12", "coco": "coco"}[dataset]
    base = Experiment(f"vgg16_C4_{name}", f"configs/paper/faster_rcnn_vgg16_C4_{name}.yaml", "vgg16", table,
                      metrics, dict(zip(metrics, vgg)), gpu_hours=gpu_hours, note=note,
                      scored_by_server=server)
    return [base, Experiment(f"R101_C4_{name}", f"configs/paper/faster_rcnn_R101_C4_{name}.yaml", "resnet101",
                             table, metrics, dict(zip(metrics, resnet)), baseline=base.name, gpu_hours=gpu_hours,
                             note=note, scored_by_server=server)]


def _modern():
    runs = []
    for kind, metrics in (("faster_rcnn", ("coco_ap", "coco_ap50")), ("mask_rcnn", ("coco_ap", "coco_mask_ap"))):
        for depth in (50, 101, 152):
            runs.append(Experiment(f"{kind}_R{depth}_FPN_3x", f"configs/paper/{kind}_R{depth}_FPN_3x.yaml",
                                   f"resnet{depth}", MODERN, metrics,
                                   baseline=None if depth == 50 else f"{kind}_R50_FPN_3x",
                                   gpu_hours="~1.5-3 days on 8 GPUs (270k iterations of 16 images)"))
    return runs


# Table 9: Appendix B's improvements, cumulative, on the ResNet-101 C4 model of Table 8 (COCO val). Box
# refinement and multi-scale testing change inference only: those rows evaluate a trained row's checkpoint.
TABLE9 = "COCO val, trained on COCO train: the detection improvements of Appendix B (Table 9)"
COCO_METRICS = ("coco_ap50", "coco_ap")
COCO_GPU = "~2-4 days on 8 GPUs (320k iterations of 8 images)"
# The paper's pyramid is s in {200, 400, 600, 800, 1000}, two adjacent scales per RoI merged by maxout; ours
# runs the test-time augmentation at these scales and merges the detections by box voting (README).
PAPER_TEST_SCALES = (400, 600, 800, 1000)


def _table9():
    base = "R101_C4_coco"
    return [
        Experiment("R101_C4_coco_refine", "configs/paper/faster_rcnn_R101_C4_coco.yaml", "resnet101", TABLE9,
                   COCO_METRICS, {"coco_ap50": 49.9, "coco_ap": 29.9}, baseline=base, checkpoint_from=base,
                   box_refinement=True, note="test-time only: R101_C4_coco's checkpoint, refined"),
        Experiment("R101_C4_coco_context", "configs/paper/faster_rcnn_R101_C4_coco_context.yaml", "resnet101",
                   TABLE9, COCO_METRICS, {"coco_ap50": 51.1, "coco_ap": 30.0}, baseline="R101_C4_coco_refine",
                   gpu_hours=COCO_GPU, box_refinement=True, note="trained with global context; refined"),
        Experiment("R101_C4_coco_context_ms", "configs/paper/faster_rcnn_R101_C4_coco_context.yaml", "resnet101",
                   TABLE9, COCO_METRICS, {"coco_ap50": 53.8, "coco_ap": 32.5}, baseline="R101_C4_coco_context",
                   checkpoint_from="R101_C4_coco_context", box_refinement=True, tta_scales=PAPER_TEST_SCALES,
                   note="test-time only: R101_C4_coco_context's checkpoint at shorter sides "
                        f"{', '.join(map(str, PAPER_TEST_SCALES))}, merged by box voting"),
    ]


PAPER = (
    _paper_pair("voc07", VOC07, ("voc07_map50",), (73.2,), (76.4,), "~1 GPU-day each (80k iterations)")
    + _paper_pair("voc12", VOC12, ("voc_map50",), (70.4,), (73.8,), "~1 GPU-day each (80k iterations)",
                  note=VOC12_NOTE, server=True)
    + _paper_pair("coco", COCO, COCO_METRICS, (41.5, 21.2), (48.4, 27.2), COCO_GPU)
    + _table9()
    + _modern()
)

# --- the CPU-scale study on shapes -------------------------------------------------------------
SHAPES_CONFIG = "configs/reproduce/shapes_study.yaml"
SHAPES_PRETRAIN = "configs/reproduce/shapes_study_pretrain.yaml"
SHAPES_TABLE = "shapes_val (200 images), one detector and schedule for every backbone"
SHAPES_OPTIONS = "Appendix B's options on the ResNet-18 detector (shapes_val)"
SHAPES_METRICS = ("voc_map50", "coco_ap", "coco_ap50")
SHAPES_TEST_SCALES = (96, 128, 160, 192)  # the detector trains at 128; shapes images are 192


def _shapes():
    """Every backbone pretrained, then fine-tuned; ResNet-18 also from scratch (what pretraining adds).
    Gains: a residual net against the plain net of its depth, a deeper ResNet against the shallower one."""
    runs = [Experiment("resnet18_scratch", SHAPES_CONFIG, "resnet18", SHAPES_TABLE, SHAPES_METRICS,
                       overrides=("model.backbone=resnet18",))]
    for backbone, baseline in (("plain18", None), ("resnet18", "plain18"), ("plain34", "plain18"),
                               ("resnet34", "plain34"), ("resnet50", "resnet34")):
        runs.append(Experiment(
            f"{backbone}_pretrained", SHAPES_CONFIG, backbone, SHAPES_TABLE, SHAPES_METRICS,
            baseline=f"{baseline}_pretrained" if baseline else None, pretrain=SHAPES_PRETRAIN,
            overrides=(f"model.backbone={backbone}",)))
    return tuple(runs) + _shapes_options()


def _shapes_options():
    """Appendix B on shapes, each option alone against resnet18_pretrained: the test-time ones on its
    checkpoint, global context retrained (same pretrained backbone and seed), the ensemble of the three
    pretrained ResNets' predictions."""
    base = "resnet18_pretrained"
    return (
        Experiment("resnet18_refine", SHAPES_CONFIG, "resnet18", SHAPES_OPTIONS, SHAPES_METRICS, baseline=base,
                   checkpoint_from=base, box_refinement=True,
                   note="test-time only: resnet18_pretrained's checkpoint with box refinement"),
        Experiment("resnet18_multiscale", SHAPES_CONFIG, "resnet18", SHAPES_OPTIONS, SHAPES_METRICS,
                   baseline=base, checkpoint_from=base, tta_scales=SHAPES_TEST_SCALES,
                   note="test-time only: resnet18_pretrained's checkpoint at shorter sides "
                        f"{', '.join(map(str, SHAPES_TEST_SCALES))}, merged by box voting"),
        Experiment("resnet18_context", SHAPES_CONFIG, "resnet18", SHAPES_OPTIONS, SHAPES_METRICS, baseline=base,
                   pretrain=SHAPES_PRETRAIN, overrides=("model.backbone=resnet18", "model.global_context=true"),
                   note="trained with global context from the same pretrained backbone"),
        Experiment("resnet18_34_50_ensemble", SHAPES_CONFIG, "resnet18+34+50", SHAPES_OPTIONS, SHAPES_METRICS,
                   baseline=base, ensemble_of=("resnet18_pretrained", "resnet34_pretrained", "resnet50_pretrained"),
                   note="the predictions of resnet18/34/50_pretrained merged per class by NMS + box voting"),
    )


SHAPES = _shapes()

SUITES = {"paper": PAPER, "shapes": SHAPES}


def suite(name: str) -> tuple:
    if name not in SUITES:
        raise UnknownNameError("suite", name, list(SUITES))
    return SUITES[name]


def select(experiments, only=None) -> list:
    """The experiments named in ``only`` (a list of names; None: all), in suite order."""
    if not only:
        return list(experiments)
    names = [e.name for e in experiments]
    for name in only:
        if name not in names:
            raise UnknownNameError("experiment", name, names)
    return [e for e in experiments if e.name in only]

# What each suite's report says about itself before its numbers.
PREAMBLES = {
    "paper": """
The paper's Faster R-CNN comparison of VGG-16 and ResNet-101 features (He et al. 2015,
Appendix A, Tables 7 and 8), with the settings of `configs/paper/` (each file cites where its
settings come from and lists where this implementation differs from the paper's, e.g. RoIAlign
for RoI pooling and approximate joint training instead of the 4-step alternation), then modern
FPN Faster/Mask R-CNN on ResNet-50/101/152, for which the paper has no numbers. The paper's
headline: ResNet-101 over VGG-16 gains 6.0 points (28% relative) of COCO mAP@[.5,.95].
Training needs the datasets under `datasets/` (see datasets/README.md), ImageNet weights and
CUDA GPUs; `--eval-only` scores checkpoints already in the runs folder.
""",
    "shapes": """
The paper's transfer comparison in miniature, on 2 CPU cores: five backbones (plain-18 and
ResNet-18, plain-34 and ResNet-34, ResNet-50) pretrained to classify the object crops of the
synthetic `shapes` training set (`configs/reproduce/shapes_study_pretrain.yaml`, the paper's
ImageNet stage in miniature), then fine-tuned under one Faster R-CNN FPN detector and schedule
(`configs/reproduce/shapes_study.yaml`) on `shapes` (1,000 training and 200 validation images of
192 px, five classes); ResNet-18 also from scratch. Then Appendix B's options, each alone, on the
ResNet-18 detector: box refinement and multi-scale testing on its checkpoint, global context
retrained, and an ensemble of the three pretrained ResNets.

What it can show: at this scale, whether residual nets train and transfer better than plain nets of
the same depth, whether depth helps, how much a pretrained backbone adds, scored as the paper scores
(VOC mAP@0.5, COCO AP), and how large the seed-to-seed spread is against those differences. What it
cannot show: anything about ImageNet features or COCO/VOC accuracy. The data is synthetic and easy;
runs are minutes long, far shorter than the paper's, so deeper nets are the furthest from converged;
pretraining sees no images beyond the detection set's own crops (ImageNet brings 1.28M other images).
""",
}
