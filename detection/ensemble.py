"""Ensembles of detectors at the level of their predictions: per-class NMS and box voting.

The paper's COCO entry (Appendix B, Table 9) ends with an ensemble. Several models' detections on the
same images are pooled and merged per image and class, as test-time augmentation merges its passes
(:func:`detection.tta.merge_detections`):

- ``vote`` (default): NMS at ``iou`` picks the boxes kept; each is then moved to the score-weighted mean
  of the pooled boxes of its class that overlap it by IoU >= ``iou``. Its score is the highest of those.
- ``nms``: the boxes NMS keeps, unchanged.

A kept detection keeps its own mask (RLE): voting moves boxes, not masks.
"""
from typing import Mapping, Sequence

import numpy as np
import torch

from backbones.errors import UserError
from .tta import merge_detections


def ensemble_predictions(predictions: Sequence[Mapping], merge: str = "vote", iou: float = 0.5,
                         max_detections: int = 100) -> dict:
    """Merge several models' predictions on the same images.

    ``predictions``: one ``{image_id: {"boxes": (M, 4) xyxy, "scores", "labels", "rles" optional}}`` per
    model, as :func:`detection.evaluation.results_file.load_results` reads a results file. An image missing
    from a model has no detections from it. Returns the same form; masks are kept only when every model's
    detections carry them.
    """
    if len(predictions) < 2:
        raise UserError(f"an ensemble needs the predictions of at least two models, got {len(predictions)}")
    with_masks = all("rles" in p for preds in predictions for p in preds.values())
    image_ids = list(dict.fromkeys(i for preds in predictions for i in preds))
    return {i: _merge_image([preds[i] for preds in predictions if i in preds], merge, iou, max_detections,
                            with_masks) for i in image_ids}


def _merge_image(parts, merge, iou, max_detections, with_masks) -> dict:
    boxes = torch.from_numpy(np.concatenate([np.asarray(p["boxes"], np.float64).reshape(-1, 4) for p in parts]))
    scores = torch.from_numpy(np.concatenate([np.asarray(p["scores"], np.float64).reshape(-1) for p in parts]))
    labels = torch.from_numpy(np.concatenate([np.asarray(p["labels"], np.int64).reshape(-1) for p in parts]))
    kept_boxes, kept_scores, kept_labels, index = merge_detections(
        boxes, scores, labels, merge, iou, score_thresh=-1.0, max_detections=max_detections, return_index=True)
    out = {"boxes": kept_boxes.numpy(), "scores": kept_scores.numpy(), "labels": kept_labels.numpy()}
    if with_masks:
        rles = [r for p in parts for r in p["rles"]]
        out["rles"] = [rles[i] for i in index.tolist()]
    return out
