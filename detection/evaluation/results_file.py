"""Predictions as files: a standard COCO results JSON, and where the evaluation outputs go.

Predictions computed from a checkpoint are saved as a COCO results JSON
(boxes as xywh in original pixels, the dataset's own category ids, RLE
masks), so evaluation and drawing can be rerun without the model.
"""
import json
from pathlib import Path

import numpy as np
from backbones.errors import UserError

from .coco import to_coco_results


def save_results(path, dataset, predictions) -> Path:
    """Write predictions as a COCO results JSON."""
    with_masks = any("rles" in p for p in predictions.values())
    results = to_coco_results(predictions, dataset.category_ids, ("bbox", "segm") if with_masks else ("bbox",))
    return write_json(path, results)


def load_results(path, dataset) -> dict:
    """Read a COCO results JSON back into per-image predictions for ``dataset``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"predictions file {path} does not exist")
    try:
        results = json.loads(path.read_text())
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(results, list):
        raise UserError(f"{path} must hold a COCO results list ([{{image_id, category_id, bbox, score}}, ...])")
    label_of = {c: i + 1 for i, c in enumerate(dataset.category_ids)}
    per_image = {i: [] for i in dataset.image_ids}
    for n, r in enumerate(results):
        if not isinstance(r, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(r):
            raise UserError(f"{path}: entry {n} lacks image_id, category_id, bbox or score")
        if not _finite_box_and_score(r["bbox"], r["score"]):
            raise UserError(f"{path}: entry {n} has a bad box or score (need finite x, y, w >= 0, h >= 0): "
                            f"bbox {r['bbox']}, score {r['score']}")
        if r["image_id"] not in per_image:
            raise UserError(f"{path}: entry {n} names image {r['image_id']!r}, which is not in the dataset")
        if r["category_id"] not in label_of:
            raise UserError(f"{path}: entry {n} names category {r['category_id']!r}, which is not in the dataset")
        per_image[r["image_id"]].append(r)
    with_masks = bool(results) and all("segmentation" in r for r in results)
    return {i: _stack(rs, label_of, with_masks) for i, rs in per_image.items()}


def _finite_box_and_score(bbox, score) -> bool:
    """A box [x, y, w, h] of finite numbers with w, h >= 0, and a finite score."""
    try:
        values = np.asarray(list(bbox) + [score], dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return values.shape == (5,) and bool(np.isfinite(values).all()) and values[2] >= 0 and values[3] >= 0


def _stack(results, label_of, with_masks):
    xywh = np.array([r["bbox"] for r in results], dtype=np.float64).reshape(-1, 4)
    pred = {"boxes": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
            "scores": np.array([r["score"] for r in results], dtype=np.float64),
            "labels": np.array([label_of[r["category_id"]] for r in results], dtype=np.int64)}
    if with_masks:
        pred["rles"] = [r["segmentation"] for r in results]
    return pred


def output_path(source: Path, dataset_name: str, suffix: str) -> Path:
    """Where a tool writes: beside its input, named after the checkpoint and dataset.

    ``model_final.pth`` on ``shapes_val`` -> ``model_final.shapes_val.<suffix>``;
    ``model_final.shapes_val.predictions.json`` -> ``model_final.shapes_val.<suffix>``.
    """
    name = source.name
    if name.endswith(".predictions.json"):
        return source.with_name(name[:-len("predictions.json")] + suffix)
    return source.with_name(f"{source.stem}.{dataset_name}.{suffix}")


def write_json(path, obj):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, default=float) + "\n")
    return path
