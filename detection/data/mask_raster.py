"""Instance masks of a training sample, made directly at the size the augmentation resized its image to.

Decoding every mask at full size and resizing it (what passing masks through
albumentations did: one ``cv2.resize`` of the whole mask per object, plus the
copies that lay them out) was most of the data pipeline's time on COCO photos.
Here only the pixels around each object are written:

- polygons are scaled like the boxes and rasterised by pycocotools at the
  target size, each on a canvas around its own box (:func:`_draw_scaled_polygons`);
- RLE masks (instance PNGs, VOC SegmentationObject, crowd regions), which have
  no coordinates to scale, are decoded at their size in one call and their box
  resized by gathering the pixels that OpenCV's nearest-neighbour resize would
  copy (:func:`_draw_resized_rles`): exactly ``cv2.resize(INTER_NEAREST)``'s
  masks, as before.

Against decoding then resizing with nearest neighbour, polygon masks differ
only at borders: OpenCV's ``INTER_NEAREST`` takes each output pixel from the
source pixel under its top-left corner (``floor(x * src / dst)``), so its
masks lie up to half a source pixel off the scaled boxes, in blocks as wide as
the scale; polygons scaled with the boxes are rasterised at each output
pixel's own centre. At the image's own size both kinds are exactly what
:func:`detection.data.dataset.decode_segmentation` gives (all objects in one
``decode`` over the whole image; pycocotools decodes column by column, and one
``cv2.transpose``, or ``cv2.rotate`` for the transpose mirrored, lays out each
mask), except for polygons of fewer than 3 points, which pycocotools cannot
read (4 numbers it takes for a box, fewer it refuses): here they are what they
are, rings of no area, so empty.

Resizing all masks as the channels of one image is no shortcut: OpenCV takes
at most 512 channels (128 through its Python binding), and the
channel-interleaving copies made it ~6x slower than a call per mask.
"""
import cv2
import numpy as np
from pycocotools import mask as mask_utils

from backbones.errors import UserError

from .mask_polygons import to_rle


def instance_masks(segmentations, height, width, size=None, flip=False) -> np.ndarray:
    """(N, H', W') C-ordered uint8 0/1 masks of ``segmentations`` (per object: COCO polygons, compressed or
    uncompressed RLE, on a ``height`` x ``width`` image) at ``size`` = (H', W') (default: the image's own),
    mirrored left-right with ``flip``."""
    out_h, out_w = size or (height, width)
    same = (out_h, out_w) == (height, width)
    masks = np.zeros((len(segmentations), out_h, out_w), np.uint8)
    polygons = [k for k, s in enumerate(segmentations) if isinstance(s, list)]
    others = [k for k, s in enumerate(segmentations) if not isinstance(s, list)]
    if polygons and same:
        for k, column in zip(polygons, _polygon_columns([segmentations[k] for k in polygons], height, width)):
            _write_rows(column, masks[k], flip)
    elif polygons:
        _draw_scaled_polygons([segmentations[k] for k in polygons], masks, polygons, out_w / width,
                              out_h / height, flip)
    if others and same:
        rles = _rles([segmentations[k] for k in others], height, width)
        for k, column in zip(others, mask_utils.decode(rles).transpose(2, 1, 0)):  # (N, W, H), C-ordered
            _write_rows(column, masks[k], flip)
    elif others:
        _draw_resized_rles([segmentations[k] for k in others], masks, others, height, width, flip)
    return masks


def _write_rows(column, row, flip):
    """``row`` (H, W) = ``column`` (W, H) transposed, mirrored left-right with ``flip`` (the transpose rotated
    by 90 degrees clockwise)."""
    if flip:
        cv2.rotate(column, cv2.ROTATE_90_CLOCKWISE, dst=row)
    else:
        cv2.transpose(column, row)


def _polygon_columns(objects, height, width) -> np.ndarray:
    """(N, width, height) transposed masks of objects' polygon lists at their own image size, in one
    ``frPyObjects`` and one ``decode`` call over the whole image: exactly decode_segmentation's pixels. An
    object's parts are united, as decode_segmentation unites them."""
    parts = [[_ring(p) for p in polygons if len(p) >= 2] for polygons in objects]
    columns = np.zeros((len(objects), width, height), np.uint8)
    drawn = [k for k, rings in enumerate(parts) if rings]  # objects with no point at all stay empty
    if not drawn:
        return columns
    rles = mask_utils.frPyObjects([ring for k in drawn for ring in parts[k]], height, width)
    counts = [len(parts[k]) for k in drawn]
    if max(counts) > 1:  # objects in several parts: their union, one RLE each
        ends = np.cumsum(counts)
        rles = [rles[end - n] if n == 1 else mask_utils.merge(rles[end - n:end]) for n, end in zip(counts, ends)]
    decoded = mask_utils.decode(rles).transpose(2, 1, 0)  # (H, W, N) column-major -> (N, W, H) C-ordered
    if len(drawn) == len(objects):
        return decoded
    columns[drawn] = decoded
    return columns


def _draw_scaled_polygons(objects, masks, indices, sx, sy, flip):
    """Draw objects' polygon lists, their x scaled by ``sx`` and y by ``sy``, into ``masks[indices]``.

    Each object is rasterised by pycocotools on a canvas around its own box (a pixel of margin), moved there by
    whole pixels: decoding writes every pixel of its canvas, and whole-image canvases made decoding most of the
    time (COCO objects cover a few percent of their image). One ``frPyObjects`` and ``decode`` call per object,
    as canvases differ; the coordinates are scaled and moved for all objects at once. Moving by whole pixels
    gives the same pixels except where pycocotools' rounding of 5x-upsampled coordinates meets an exact tie
    (coordinates on a 0.1-pixel grid times a round scale), a border pixel either way.
    """
    out_h, out_w = masks.shape[1:]
    parts = [[_ring(p) for p in polygons if len(p) >= 2] for polygons in objects]
    drawn = [k for k, rings in enumerate(parts) if rings]  # objects with no point at all stay empty
    if not drawn:
        return
    rings = [ring for k in drawn for ring in parts[k]]
    sizes = [len(ring) // 2 for ring in rings]  # points per ring
    points = np.fromiter((v for ring in rings for v in ring), np.float64, 2 * sum(sizes)).reshape(-1, 2)
    points *= (sx, sy)
    per_object = [sum(len(ring) // 2 for ring in parts[k]) for k in drawn]
    starts = np.cumsum([0] + per_object[:-1])
    low = np.clip(np.floor(np.minimum.reduceat(points, starts)) - 1, 0, (out_w, out_h)).astype(int)
    high = np.clip(np.floor(np.maximum.reduceat(points, starts)) + 2, 0, (out_w, out_h)).astype(int)
    points -= np.repeat(low, per_object, axis=0)  # by whole pixels, so exactly
    ring_points = np.split(points.reshape(-1), 2 * np.cumsum(sizes)[:-1])
    ring_at = np.cumsum([0] + [len(parts[k]) for k in drawn])
    for n, k in enumerate(drawn):
        (x0, y0), (x1, y1) = low[n], high[n]
        if x1 <= x0 or y1 <= y0:  # entirely outside the image
            continue
        rles = mask_utils.frPyObjects(ring_points[ring_at[n]:ring_at[n + 1]], int(y1 - y0), int(x1 - x0))
        column = mask_utils.decode(rles[0] if len(rles) == 1 else mask_utils.merge(rles)).T  # (w, h), C-ordered
        if flip:
            masks[indices[k], y0:y1, out_w - x1:out_w - x0] = cv2.rotate(column, cv2.ROTATE_90_CLOCKWISE)
        else:
            masks[indices[k], y0:y1, x0:x1] = cv2.transpose(column)


def _ring(polygon) -> list:
    """A polygon as pycocotools rasterises one: whole x, y pairs (it ignores an odd last number), at least 3
    points. Shorter ones are completed by repeating their last point, which adds no area: pycocotools would
    take 4 numbers for a box, and refuse fewer."""
    ring = list(polygon[:len(polygon) // 2 * 2])
    return ring + ring[-2:] * (3 - len(ring) // 2) if len(ring) < 6 else ring


def _draw_resized_rles(segmentations, masks, indices, height, width, flip):
    """Draw RLE segmentations of a ``height`` x ``width`` image into ``masks[indices]``, resized with nearest
    neighbour exactly as ``cv2.resize(INTER_NEAREST)`` resizes the whole mask.

    Each output pixel of that resize copies the source pixel ``(ys[Y], xs[X])``, where ``xs`` and ``ys`` are
    OpenCV's own index maps (:func:`_nearest_indices`): outside the output rows and columns that map into a
    mask's box the result is 0, inside it is the box's pixels gathered by those maps. So only boxes are
    written, as for polygons, rather than each whole mask resized.
    """
    out_h, out_w = masks.shape[1:]
    rles = _rles(segmentations, height, width)
    columns = mask_utils.decode(rles).transpose(2, 1, 0)  # (N, W, H): mask k is columns[k][x, y]
    xs, ys = _nearest_indices(width, out_w), _nearest_indices(height, out_h)
    boxes = mask_utils.toBbox(rles).astype(np.int64)  # x, y, w, h of each mask's pixels; all 0 when empty
    x_ends = np.searchsorted(xs, np.stack([boxes[:, 0], boxes[:, 0] + boxes[:, 2]], 1))  # the maps increase
    y_ends = np.searchsorted(ys, np.stack([boxes[:, 1], boxes[:, 1] + boxes[:, 3]], 1))
    for k, column, (x0, x1), (y0, y1) in zip(indices, columns, x_ends, y_ends):
        if x1 > x0 and y1 > y0:
            # whole rows gathered (columns of the mask, in the order the output shows them), turned, gathered
            # again: row copies, where numpy's 2-D fancy indexing is ~50x slower
            picked = column.take(xs[x0:x1][::-1] if flip else xs[x0:x1], axis=0)
            region = cv2.transpose(picked).take(ys[y0:y1], axis=0)
            if flip:
                masks[k, y0:y1, out_w - x1:out_w - x0] = region
            else:
                masks[k, y0:y1, x0:x1] = region


def _nearest_indices(source, target) -> np.ndarray:
    """For each of ``target`` positions along an axis, the one of ``source`` positions that OpenCV's
    nearest-neighbour resize copies: an index ramp resized by ``cv2.resize`` itself, so its rounding is
    OpenCV's (an axis' map depends on that axis' two lengths only)."""
    ramp = np.arange(source, dtype=np.int32).reshape(1, source)
    return cv2.resize(ramp, (target, 1), interpolation=cv2.INTER_NEAREST).reshape(target)


def _rles(segmentations, height, width) -> list:
    """Compressed RLEs of segmentations, which must have their image's size (pycocotools decodes a list of
    RLEs as one stack, of the first one's size)."""
    rles = [to_rle(s, height, width) for s in segmentations]
    for rle in rles:
        if list(rle["size"]) != [height, width]:
            raise UserError(f"an instance mask (RLE) is {rle['size'][0]}x{rle['size'][1]} pixels (height x width) "
                            f"on a {height}x{width} image; masks must have their image's size (check the dataset's "
                            f"mask files or segmentation entries: python tools/check_dataset.py)")
    return rles
