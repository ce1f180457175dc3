"""Shared steps of the evaluation tools: load a checkpoint, pick its dataset, predict."""
import json
from pathlib import Path

from backbones.errors import UserError

from ..data.catalog import get_dataset_spec
from ..data.coco_format import CocoFormatDataset
from ..engine.checkpoint import load_detector
from ..engine.inference import predict


def default_test_dataset(payload) -> str:
    """The evaluation split that goes with the dataset the checkpoint was trained on."""
    data = (payload.get("train_config") or {}).get("data") or {}
    name = data.get("test") or data.get("train")
    if not name:
        raise UserError("the checkpoint does not say which dataset it was trained on; pass --dataset")
    return name


def predict_checkpoint(checkpoint, dataset_name=None, batch_size=4):
    """Returns (model, checkpoint dict, dataset, predictions)."""
    model, payload = load_detector(checkpoint)
    spec = get_dataset_spec(dataset_name or default_test_dataset(payload), "test")
    dataset = CocoFormatDataset(spec.annotations, spec.images, with_masks=False)
    if list(dataset.class_names) != list(payload["class_names"]):
        raise UserError(f"{checkpoint} was trained on classes {payload['class_names']}, "
                        f"but {spec.name} has {dataset.class_names}")
    return model, payload, dataset, predict(model, dataset, batch_size=batch_size)


def write_json(path, obj):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n")
    return path
