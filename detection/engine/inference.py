"""Run a detector over a dataset and keep compact predictions for evaluation."""
import torch
from tqdm import tqdm

from ..data.dataset import collate
from ..evaluation.coco import encode_masks


@torch.no_grad()
def predict(model, dataset, batch_size=4, num_workers=0, progress=True) -> dict:
    """image_id -> {"boxes", "scores", "labels"[, "rles"]} as numpy, in original image pixels.

    Masks are run-length encoded as soon as they are predicted: full-image
    float masks for a whole dataset would not fit in memory.
    """
    model.eval()
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=collate)
    predictions = {}
    for images, targets in tqdm(loader, desc="inference", disable=not progress, leave=False):
        for target, out in zip(targets, model([im.to(device) for im in images])):
            pred = {k: out[k].cpu().numpy() for k in ("boxes", "scores", "labels")}
            if "masks" in out:
                pred["rles"] = encode_masks(out["masks"].cpu(), len(out["boxes"]), 0.5, target["image_id"])
            predictions[target["image_id"]] = pred
    return predictions
