"""Measured parity: an exported detector's detections against the PyTorch model's on the same image.

Detections are compared in order (both sort by score). A box coordinate's
relative difference is ``|exported - pytorch| / max(|pytorch|, 1)``: relative
for coordinates of a pixel and more, absolute below (a box clipped to the
image edge has coordinates of 0). Labels must be equal; scores are compared
in absolute terms. Masks (probabilities in [0, 1]) by their largest absolute
difference.
"""
import torch

# the bar: boxes within 1e-3 relative, the same labels, scores within 1e-4
BOX_RTOL = 1e-3
SCORE_ATOL = 1e-4


def compare(reference: dict, exported: dict) -> dict:
    """Differences between two detection dicts of one image (see the module docstring)."""
    n_ref, n_exp = len(reference["boxes"]), len(exported["boxes"])
    result = {"detections": n_ref, "exported_detections": n_exp}
    if n_ref != n_exp:
        return {**result, "same_labels": False, "max_box_abs": float("inf"), "max_box_rel": float("inf"),
                "max_score_abs": float("inf"), "ok": False}
    ref_boxes, exp_boxes = reference["boxes"].double(), exported["boxes"].double()
    diff = (exp_boxes - ref_boxes).abs()
    result.update(
        same_labels=bool(torch.equal(reference["labels"].long(), exported["labels"].long())),
        max_box_abs=float(diff.max()) if n_ref else 0.0,
        max_box_rel=float((diff / ref_boxes.abs().clamp(min=1.0)).max()) if n_ref else 0.0,
        max_score_abs=float((exported["scores"].double() - reference["scores"].double()).abs().max())
        if n_ref else 0.0)
    if "masks" in reference and n_ref:
        result["max_mask_abs"] = float((exported["masks"].double() - reference["masks"].double()).abs().max())
    result["ok"] = result["same_labels"] and result["max_box_rel"] <= BOX_RTOL and result["max_score_abs"] <= SCORE_ATOL
    return result


def measure_parity(model, exported, image) -> dict:
    """:func:`compare` of ``model([image])[0]`` (eval mode, no autograd) and ``exported(image)``."""
    image = torch.as_tensor(image, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        reference = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
    return {"image_size": list(image.shape[1:]), **compare(reference, exported(image))}


def describe(result: dict) -> str:
    """One line for people."""
    h, w = result.get("image_size", ("?", "?"))
    if result["detections"] != result["exported_detections"]:
        return (f"{h}x{w} image: {result['exported_detections']} detections exported vs "
                f"{result['detections']} in PyTorch: NOT the same")
    text = (f"{h}x{w} image, {result['detections']} detections: max box difference {result['max_box_abs']:.2e} px "
            f"({result['max_box_rel']:.2e} relative, bar {BOX_RTOL:g}), max score difference "
            f"{result['max_score_abs']:.2e} (bar {SCORE_ATOL:g}), labels {'equal' if result['same_labels'] else 'DIFFER'}")
    if "max_mask_abs" in result:
        text += f", max mask difference {result['max_mask_abs']:.2e}"
    return text + ("" if result["ok"] else ": OUTSIDE the bar")
