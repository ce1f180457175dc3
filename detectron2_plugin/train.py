"""Train (or evaluate) with detectron2's own DefaultTrainer on a registry backbone.

    python -m detectron2_plugin.train --config-file configs/detectron2/faster_rcnn_R_101_FPN_3x.yaml --num-gpus 8
    python -m detectron2_plugin.train --config-file configs/detectron2/mask_rcnn_R_50_FPN_1x.yaml --resume
    python -m detectron2_plugin.train --config-file configs/detectron2/faster_rcnn_R_50_C4_1x.yaml \\
        --eval-only MODEL.WEIGHTS output/model_final.pth
    python -m detectron2_plugin.train --config-file my_config.yaml MODEL.DEVICE cpu SOLVER.IMS_PER_BATCH 2

(tools/train_detectron2.py runs the same program.) detectron2's standard
arguments (--num-gpus, --num-machines, --machine-rank, --dist-url, --resume,
--eval-only) and trailing KEY VALUE config overrides. The config file may
inherit a detectron2 model-zoo config by its zoo name (_BASE_:
COCO-Detection/...); INPUT.FORMAT and MODEL.PIXEL_MEAN/STD follow the
backbone's weights (MODEL.TRANSFER.PRETRAINED). Datasets are detectron2's
registered ones, e.g. coco_2017_train under $DETECTRON2_DATASETS/coco.
The training loop itself is :mod:`detectron2_plugin.trainer`.
"""
from .cli import command, missing_detectron2


@command
def main(argv=None):
    try:
        from .trainer import run_training
    except ImportError as err:  # detectron2 (or one of its dependencies) is not installed
        raise missing_detectron2(err) from None
    return run_training(argv)


if __name__ == "__main__":
    main()
