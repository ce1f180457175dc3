#!/usr/bin/env python
"""Train (or evaluate) with detectron2's own DefaultTrainer on a registry backbone.

    python tools/train_detectron2.py --config-file configs/detectron2/faster_rcnn_R_101_FPN_3x.yaml --num-gpus 8
    python tools/train_detectron2.py --config-file configs/detectron2/mask_rcnn_R_50_FPN_1x.yaml --resume
    python tools/train_detectron2.py --config-file configs/detectron2/faster_rcnn_R_50_C4_1x.yaml \\
        --eval-only MODEL.WEIGHTS output/model_final.pth
    python tools/train_detectron2.py --config-file my_config.yaml MODEL.DEVICE cpu SOLVER.IMS_PER_BATCH 2

detectron2's standard arguments (--num-gpus, --num-machines, --machine-rank,
--dist-url, --resume, --eval-only) and trailing KEY VALUE config overrides.
The config file may inherit a detectron2 model-zoo config by its zoo name
(_BASE_: COCO-Detection/...); INPUT.FORMAT and MODEL.PIXEL_MEAN/STD follow the
backbone's weights (MODEL.TRANSFER.PRETRAINED). Datasets are detectron2's
registered ones, e.g. coco_2017_train under $DETECTRON2_DATASETS/coco.
Needs detectron2 (pip install 'git+https://github.com/facebookresearch/detectron2.git').
"""
import warnings

from backbones.errors import UserError
from detection.cli import run

# detectron2 0.6 scripts a few functions with torch.jit.script, which torch 2.x deprecates: not ours to act on
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)


def main():
    try:
        from detectron2_plugin.train import run_training
    except ImportError as err:  # detectron2 (or one of its dependencies) is not installed
        raise UserError(str(err)) from None
    run_training()


if __name__ == "__main__":
    run(main)
