"""detectron2's own training loop (DefaultTrainer) on configs that use registry backbones.

The program around it is :mod:`detectron2_plugin.train` (tools/train_detectron2.py)::

    python tools/train_detectron2.py --config-file configs/detectron2/mask_rcnn_R_50_FPN_1x.yaml --num-gpus 8
    python tools/train_detectron2.py --config-file ... --resume
    python tools/train_detectron2.py --config-file ... --eval-only MODEL.WEIGHTS output/model_final.pth

This is detectron2's tools/train_net.py with two differences: the config is
read by :func:`detectron2_plugin.load_config` (MODEL.TRANSFER keys, model-zoo
``_BASE_`` names, input normalisation from the weights), and importing this
module registers the plugin's builders (also in each spawned worker).
Datasets are detectron2's registered ones (DATASETS.TRAIN/TEST, found under
$DETECTRON2_DATASETS), plus COCO-format ones given by ``--coco-dataset NAME JSON IMAGE_ROOT``.
"""
import os

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator

from backbones.errors import UserError

from . import plugin  # noqa: F401  (registers the builders)
from .config import load_config


def compiled_ops_available() -> bool:
    """False under the placeholder detectron2._C that tools/fetch_detectron2.py installs."""
    try:
        from detectron2 import _C
    except ImportError:
        return False
    return not getattr(_C, "PLACEHOLDER", False)


class Trainer(DefaultTrainer):
    """DefaultTrainer with the evaluators of detectron2's train_net.py for COCO- and VOC-style datasets."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
        kind = MetadataCatalog.get(dataset_name).get("evaluator_type", "coco")
        if kind == "coco":
            # the fast evaluator is C++: fall back to pycocotools without it
            return COCOEvaluator(dataset_name, output_dir=output_folder, use_fast_impl=compiled_ops_available())
        if kind == "pascal_voc":
            return PascalVOCDetectionEvaluator(dataset_name)
        raise UserError(f"no evaluator for {dataset_name!r} (evaluator_type {kind!r}); "
                        f"set DATASETS.TEST to a COCO- or VOC-style dataset, or () to skip evaluation")


def register_coco_datasets(specs):
    """``--coco-dataset NAME JSON IMAGE_ROOT``: register COCO-format datasets (in every worker)."""
    for name, json_file, image_root in specs or ():
        if name in DatasetCatalog.list():
            continue
        if not os.path.isfile(json_file):
            raise UserError(f"--coco-dataset {name}: annotation file {json_file} does not exist")
        register_coco_instances(name, {}, json_file, image_root)


def setup(args):
    register_coco_datasets(args.coco_dataset)
    cfg = load_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def train_or_evaluate(args):
    """What each launched process runs (train_net.py's ``main``): training, or with --eval-only evaluation."""
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def parse_args(argv=None):
    parser = default_argument_parser(epilog=__doc__)
    parser.add_argument("--coco-dataset", nargs=3, action="append", metavar=("NAME", "JSON", "IMAGE_ROOT"),
                        help="register a COCO-format dataset under NAME for DATASETS.TRAIN/TEST (repeatable)")
    args = parser.parse_args(argv)
    if not args.config_file:
        parser.error("--config-file is required (e.g. configs/detectron2/faster_rcnn_R_101_FPN_3x.yaml)")
    return args


def run_training(argv=None):
    """Parse detectron2's standard arguments and run :func:`train_or_evaluate` on ``--num-gpus`` processes
    per machine."""
    args = parse_args(argv)
    return launch(train_or_evaluate, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                  dist_url=args.dist_url, args=(args,))
