"""Detector checkpoints: weights plus everything needed to rebuild and interpret them.

A checkpoint is a dict saved with ``torch.save`` holding only tensors and
plain Python values, so it loads with ``weights_only=True``; it is written to
a temporary file and renamed, so a crash or a full disk never leaves a
half-written file and never loses the previous one.
Checkpoints written during training also hold ``training_state`` (optimizer,
LR schedule, grad scaler, RNG states, best metric): what ``--resume`` needs.
"""
from pathlib import Path

import torch

from backbones.atomic_files import save_torch
from backbones.errors import UserError

from ..detector import DetectorConfig, build_detector

FORMAT = "resnet-detection-transfer/detector-checkpoint/v1"


def save_checkpoint(path, model, class_names, category_ids, iteration, train_config=None, training_state=None):
    payload = {
        "format": FORMAT,
        "model": model.state_dict(),
        "config": model.config.to_dict(),
        "class_names": list(class_names),
        "category_ids": [int(c) for c in category_ids],
        "iteration": int(iteration),
        "train_config": train_config,
    }
    if training_state is not None:
        payload["training_state"] = training_state
    return save_torch(payload, path)


def read_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train one with tools/train_det.py")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path} is not a checkpoint that can be loaded safely "
                        f"({type(err).__name__}); expected a file written by tools/train_det.py") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a detector checkpoint of this toolkit (format {FORMAT}); "
                        f"expected a file written by tools/train_det.py")
    return payload


def load_detector(path):
    """Rebuild the detector stored in ``path``; returns ``(model, checkpoint dict)``."""
    payload = read_checkpoint(path)
    # weights come from the checkpoint: never download backbone weights again
    model = build_detector(DetectorConfig.from_dict(payload["config"]), load_pretrained=False)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise UserError(f"weights in {path} do not match the model its config describes: "
                        f"{str(err).splitlines()[0]}") from None
    return model.eval(), payload
