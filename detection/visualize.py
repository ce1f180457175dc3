"""Draw detections (boxes, masks, class names, scores) on images and tile them into one PNG."""
import cv2
import numpy as np
from pycocotools import mask as mask_utils

from backbones.atomic_files import write_atomically

from .engine.run_folder import record_if_run_folder

# distinct, colour-blind-friendly colours (Okabe-Ito), RGB
PALETTE = np.array([(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
                    (0, 114, 178), (213, 94, 0), (204, 121, 167), (255, 255, 255)], dtype=np.uint8)


def draw_predictions(image, prediction, class_names, score_threshold=0.5, mask_alpha=0.45, show_scores=True):
    """RGB uint8 image with the detections above ``score_threshold`` drawn on it.

    ``prediction`` is what :func:`detection.engine.inference.predict` keeps per
    image: numpy ``boxes``, ``scores``, ``labels`` and optionally ``rles``.
    """
    canvas = image.copy()
    keep = np.flatnonzero(prediction["scores"] >= score_threshold)
    rles = prediction.get("rles")
    for i in keep[::-1]:  # highest score drawn last, on top
        colour = PALETTE[(prediction["labels"][i] - 1) % len(PALETTE)]
        if rles is not None:
            mask = mask_utils.decode(rles[i]).astype(bool)
            canvas[mask] = (1 - mask_alpha) * canvas[mask] + mask_alpha * colour
    for i in keep[::-1]:
        colour = tuple(int(c) for c in PALETTE[(prediction["labels"][i] - 1) % len(PALETTE)])
        x1, y1, x2, y2 = np.round(prediction["boxes"][i]).astype(int)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
        text = class_names[prediction["labels"][i] - 1]
        text += f" {prediction['scores'][i]:.2f}" if show_scores else ""
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        y = max(y1, th + 2)
        cv2.rectangle(canvas, (x1, y - th - 2), (x1 + tw + 2, y), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def tile(images, columns=4, cell=384):
    """Tile RGB images into a grid of ``cell``-pixel squares, each scaled to fit."""
    if not images:  # an empty grid would only fail later, inside cv2, when it is written
        raise ValueError("tile needs at least one image")
    rows = -(-len(images) // columns)
    grid = np.zeros((rows * cell, columns * cell, 3), dtype=np.uint8)
    for k, img in enumerate(images):
        scale = cell / max(img.shape[:2])
        img = cv2.resize(img, None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA)
        r, c = divmod(k, columns)
        grid[r * cell:r * cell + img.shape[0], c * cell:c * cell + img.shape[1]] = img
    return grid


def save_png(path, rgb):
    """Write ``rgb`` as a PNG atomically (recorded in the run folder's manifest when written into one)."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode {path} as PNG")
    return write_atomically(record_if_run_folder(path), lambda tmp: tmp.write_bytes(png.tobytes()), png.nbytes)


def draw_ground_truth(image, record, class_names):
    """RGB image with a record's boxes and class names drawn (ignored objects marked with '*')."""
    prediction = {"boxes": record.boxes, "scores": np.ones(len(record.boxes)), "labels": record.labels}
    canvas = draw_predictions(image, prediction, class_names, score_threshold=0.0, show_scores=False)
    for box in record.boxes[record.ignore]:
        x1, y1 = np.round(box[:2]).astype(int)
        cv2.putText(canvas, "*", (x1 + 2, y1 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 0, 0), 1, cv2.LINE_AA)
    return canvas
