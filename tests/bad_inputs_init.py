"""Bad-input cases of --init (see bad_input_table.py): starting from a trained detector."""
import json

import cv2
import numpy as np
import torch

from bad_input_table import Case

TRAIN = ["--device", "cpu", "--max-iter", "1", "--output", "run"]


def _data(folder, names=("cat", "dog")):
    """A user's COCO dataset: two images, one box each, categories ``names``."""
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(folder / name), np.full((50, 80, 3), 90, np.uint8))
    images = [{"id": i, "file_name": f, "width": 80, "height": 50} for i, f in ((1, "a.jpg"), (2, "b.jpg"))]
    annotations = [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 30, 20], "area": 600, "iscrowd": 0}
                   for i in (1, 2)]
    categories = [{"id": k, "name": n} for k, n in enumerate(names, 1)]
    (folder / "gt.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                "categories": categories}))
    (folder / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    return "d.yaml"


def _checkpoint(folder):
    """A detector checkpoint of ours (resnet18-FPN, random weights) trained on cat and dog."""
    from detection import build_detector
    from detection.engine.checkpoint import save_checkpoint
    torch.manual_seed(0)
    model = build_detector(backbone="resnet18", num_classes=2, fpn_channels=32, box_representation_size=64)
    save_checkpoint(folder / "source.pth", model, ("cat", "dog"), (1, 2), iteration=1)
    return "source.pth"


def _weights(folder, classifier):
    import backbones
    state = backbones.build("resnet18").state_dict()
    torch.save({k: v for k, v in state.items() if classifier or not k.startswith("fc.")}, folder / "weights.pth")
    return "weights.pth"


def _train(*argv, names=("cat", "dog"), checkpoint=True):
    def setup(folder):
        data = _data(folder, names)
        if checkpoint:
            _checkpoint(folder)
        return ["--dataset", data, *argv, *TRAIN]
    return setup


CASES = [
    Case("starting from a detector (--init)", "an unknown source name", "train_det",
         _train("--init", "maskrcnn_r50", checkpoint=False),
         "is neither a file nor a known detector; use a checkpoint of ours, a torchvision COCO model"),
    Case("starting from a detector (--init)", "an unknown weights name of a torchvision model", "train_det",
         _train("--init", "maskrcnn_resnet50_fpn_v2:COCO_V9", checkpoint=False), "COCO_V1"),
    Case("starting from a detector (--init)", "a file that does not exist", "train_det",
         _train("--init", "mine/model_final.pth", checkpoint=False), "mine/model_final.pth: no such file"),
    Case("starting from a detector (--init)", "backbone weights given as `--init`", "train_det",
         lambda d: _train(checkpoint=False)(d) + ["--init", _weights(d, classifier=False)],
         "is not a detector checkpoint: backbone weights only; pass them as --pretrained"),
    Case("starting from a detector (--init)", "an ImageNet classifier given as `--init`", "train_det",
         lambda d: _train(checkpoint=False)(d) + ["--init", _weights(d, classifier=True)],
         "is not a detector checkpoint: an image classifier"),
    Case("starting from a detector (--init)", "`--backbone` other than the source's", "train_det",
         _train("--init", "source.pth", "--backbone", "resnet50"),
         "is a resnet18-fpn Faster R-CNN, but the flags ask for model.backbone='resnet50'"),
    Case("starting from a detector (--init)", "`--pretrained` together with `--init`", "train_det",
         _train("--init", "source.pth", "--pretrained", "torchvision"),
         "--pretrained torchvision and --init source.pth both give the backbone's weights; pass one"),
    Case("starting from a detector (--init)", "a dataset naming a class twice (`cat`, `Cat`)", "train_det",
         _train("--init", "source.pth", names=("cat", "Cat")),
         "'cat' and 'Cat' are one class twice"),
    Case("starting from a detector (--init)", "`--init-classes` other than match or reinit", "train_det",
         _train("--init", "source.pth", "--init-classes", "keep"), "model.init_classes 'keep'"),
]
