"""Instance masks between their forms: COCO polygons or RLE (as records hold them), pixel arrays, and the one
polygon per object that formats like YOLO's segment lines take.

A mask becomes a polygon by tracing its outline with OpenCV on the mask
upsampled twice (``cv2.findContours`` on each pixel as a 2x2 block), at
coordinates that pycocotools rasterizes back to exactly the same pixels;
holes and separate parts are joined into one ring by zero-width bridges (the
way Ultralytics' converters merge segments), which pycocotools' even-odd
fill undoes.
"""
import cv2
import numpy as np
from pycocotools import mask as mask_util


def to_rle(segmentation, height, width) -> dict:
    """One COCO RLE (compressed) of a record's segmentation: polygons, compressed or uncompressed RLE."""
    if isinstance(segmentation, list):  # polygons: their union
        return mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE (crowd regions)
        return mask_util.frPyObjects(segmentation, height, width)
    return segmentation


def decode(segmentation, height, width) -> np.ndarray:
    """The (height, width) uint8 0/1 mask of a record's segmentation."""
    return mask_util.decode(to_rle(segmentation, height, width))


def area(segmentation, height, width) -> float:
    return float(mask_util.area(to_rle(segmentation, height, width)))


def json_segmentation(segmentation):
    """A segmentation as JSON can hold it: compressed RLE counts as text."""
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), bytes):
        return {"size": list(segmentation["size"]), "counts": segmentation["counts"].decode("ascii")}
    return segmentation


def mask_polygon(mask) -> list:
    """One flat [x1, y1, x2, y2, ...] ring (continuous pixels) whose even-odd fill is ``mask``; [] when empty."""
    up = cv2.resize(np.ascontiguousarray(mask, np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)  # outer outlines and holes
    # the centres of the boundary half-pixels: pycocotools fills such a ring back to the same pixels, with a
    # quarter pixel to spare on either side (rounding the coordinates does not change it)
    rings = [c.reshape(-1, 2).astype(np.float64) / 2 + 0.25 for c in contours]
    return bridge(rings).reshape(-1).tolist() if rings else []


def object_polygon(segmentation, height, width) -> list:
    """One flat ring for an object: its polygon as it is when it has one, else its mask traced."""
    if isinstance(segmentation, list) and len(segmentation) == 1:
        return [float(v) for v in segmentation[0]]
    return mask_polygon(decode(segmentation, height, width))


def bridge(rings) -> np.ndarray:
    """Rings ((N, 2) arrays) joined into one: each next ring is entered from its point nearest to the ring so
    far, walked round, and left the same way, so the bridge has no width."""
    ring = rings[0]
    for other in rings[1:]:
        distance = ((ring[:, None, :] - other[None, :, :]) ** 2).sum(-1)
        a, b = np.unravel_index(np.argmin(distance), distance.shape)
        other = np.roll(other, -b, axis=0)
        ring = np.concatenate([ring[:a + 1], other, other[:1], ring[a:]])
    return ring
