"""Run a detector over a dataset and keep compact predictions for evaluation."""
import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import collate
from ..evaluation.coco import encode_masks


def numpy_prediction(output: dict, image_id=None, mask_threshold: float = 0.5, bitmaps: bool = False) -> dict:
    """One image's model output as numpy ``boxes``, ``scores``, ``labels`` and, with masks, ``rles``
    (compressed COCO RLEs of the masks thresholded at ``mask_threshold``) or, with ``bitmaps``, ``masks``
    ((N, H, W) bool)."""
    pred = {k: output[k].float().cpu().numpy() if k != "labels" else output[k].cpu().numpy()
            for k in ("boxes", "scores", "labels")}
    if "masks" in output:
        masks = output["masks"].float().cpu()
        if bitmaps:
            pred["masks"] = (masks[:, 0] > mask_threshold).numpy().astype(np.bool_)
        else:
            pred["rles"] = encode_masks(masks, len(output["boxes"]), mask_threshold, image_id)
    return pred


@torch.no_grad()
def predict(model, dataset, batch_size=4, num_workers=0, progress=True) -> dict:
    """image_id -> {"boxes", "scores", "labels"[, "rles"]} as numpy, in original image pixels.

    ``batch_size`` images go through each forward pass (the model's transform pads them into one tensor);
    the predictions equal one image at a time to float rounding (CPU convolutions pick their algorithm by
    batch size: tests/test_inference_batching.py). Masks are run-length encoded as soon as they are
    predicted, all of an image's in one pycocotools call: full-image float masks for a whole dataset would
    not fit in memory.
    """
    model.eval()
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=collate)
    predictions = {}
    for images, targets in tqdm(loader, desc="inference", disable=not progress, leave=False):
        for target, out in zip(targets, model([im.to(device) for im in images])):
            predictions[target["image_id"]] = numpy_prediction(out, target["image_id"])
    return predictions
