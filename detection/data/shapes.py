"""Built-in synthetic dataset ``shapes``: seeded images of filled geometric shapes.

The generator exists so that tests and the CPU demo have a detection /
instance-segmentation dataset that needs no download, is byte-for-byte
reproducible, and is easy enough that a small Mask R-CNN trained from scratch
for a few minutes learns it, yet varied enough (textured backgrounds, random
colours, rotation, occlusion, COCO small/medium/large scales) that the metrics
mean something.

Every image is drawn from its own random stream,
``np.random.default_rng([seed, split_index, image_index])``, so an image does
not depend on how many images come before it or on the order of generation.

Layout written by :func:`generate` under ``root``::

    JPEGImages/<split>_<index:05d>.jpg       colour JPEG (quality 95, BGR via OpenCV)
    Annotations/<split>_<index:05d>.xml      VOC XML, 1-based inclusive pixel boxes
    ImageSets/Main/{train,val}.txt           one image stem per line
    instances_{train,val}.json               COCO, visible-mask RLE, 0-based [x, y, w, h]
    shapes_config.json                       the config used (read by ensure_generated)

Masks are the *visible* pixels after occlusion (later objects are painted over
earlier ones); boxes are the tight extent of those masks and areas their pixel
counts, so COCO and VOC annotations describe exactly the same pixels.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

CLASSES = ("circle", "square", "triangle", "star", "hexagon")
SPLITS = ("train", "val")
CONFIG_FILE = "shapes_config.json"

# Bump whenever the drawing code changes, so ensure_generated() rebuilds trees
# produced by an older generator even when the config itself is unchanged.
GENERATOR_VERSION = 1

# COCO area thresholds (pixels) separating small / medium / large instances.
SMALL_AREA = 32 * 32
LARGE_AREA = 96 * 96

# (probability, min area, max area) of the drawn shape per COCO bucket.
# Occlusion may never move an object into a smaller bucket (see _min_visible),
# so only placement failures, which mostly hit large shapes, skew the mix; the
# probabilities over-weight "large" so a 192 px split lands near 30% small /
# 45% medium / 25% large.  14**2 keeps the smallest shapes recognisable; large
# shapes that do not fit the image are shrunk (still >= 96**2 at 192 px).
_SIZE_BUCKETS = ((0.27, 14**2, 31**2), (0.42, 33**2, 93**2), (0.31, 98**2, 135**2))

MIN_VISIBLE_PIXELS = 30
MIN_VISIBLE_FRACTION = 0.5
_MIN_COLOUR_DISTANCE = 100.0  # Euclidean in 0..255 RGB; ~23% of the cube diagonal
_MAX_ASPECT = 1.15  # small so a jittered square never looks like a bar
_PLACEMENT_ATTEMPTS = 30
_BIG_FIRST_PROBABILITY = 0.8
_NOISE_SIGMA = 3.0
_JPEG_QUALITY = 95


@dataclass(frozen=True)
class ShapesConfig:
    """What to generate.  ``image_size`` is ``(height, width)`` in pixels."""

    seed: int = 0
    num_train: int = 1000
    num_val: int = 200
    image_size: tuple = (192, 192)
    min_objects: int = 1
    max_objects: int = 6

    def __post_init__(self):
        # Normalise lists (e.g. from YAML) so equality and hashing behave.
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        if len(self.image_size) != 2 or min(self.image_size) < 48:
            raise ValueError(f"image_size must be (height, width) >= 48, got {self.image_size}")
        if self.num_train < 0 or self.num_val < 0:
            raise ValueError("num_train and num_val must be >= 0")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError("need 1 <= min_objects <= max_objects")

    def num_images(self, split: str) -> int:
        return {"train": self.num_train, "val": self.num_val}[split]

    def to_record(self) -> dict:
        """JSON-ready description stored in ``shapes_config.json``."""
        record = asdict(self)
        record["image_size"] = list(self.image_size)
        record["classes"] = list(CLASSES)
        record["generator_version"] = GENERATOR_VERSION
        return record


@dataclass
class ShapesSample:
    """One rendered image with its instances in paint order (last on top)."""

    image: np.ndarray  # (H, W, 3) uint8, BGR channel order as written by OpenCV
    labels: list  # category ids, 1-based indices into CLASSES
    masks: list  # visible (H, W) bool masks
    full_areas: list  # pixel counts of the shapes before occlusion


def image_stem(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


# --------------------------------------------------------------------------
# Backgrounds: a scalar pattern t in [0, 1] blends two related colours.
# --------------------------------------------------------------------------


def _rotated_coords(rng, h, w):
    theta = rng.uniform(0.0, math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx * math.cos(theta) + yy * math.sin(theta), -xx * math.sin(theta) + yy * math.cos(theta)


def _normalise(t):
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / max(hi - lo, 1e-6)


def _gradient(rng, h, w):
    u, _ = _rotated_coords(rng, h, w)
    return _normalise(u)


def _stripes(rng, h, w):
    u, _ = _rotated_coords(rng, h, w)
    wave = np.sin(2 * math.pi * u / rng.uniform(6.0, 30.0) + rng.uniform(0, 2 * math.pi))
    return (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave


def _checkerboard(rng, h, w):
    u, v = _rotated_coords(rng, h, w)
    cell = rng.uniform(6.0, 30.0)
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)


def _noise_blobs(rng, h, w):
    k = int(rng.integers(3, 9))
    grid = rng.random((k, k)).astype(np.float32)
    return _normalise(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC))


_PATTERNS = (_gradient, _stripes, _checkerboard, _noise_blobs)


def _nearby_colour(rng, colour, distance):
    direction = rng.normal(size=3)
    return np.clip(colour + direction / np.linalg.norm(direction) * distance, 0, 255)


def _background(rng, h, w):
    c1 = rng.uniform(0, 255, 3)
    # Texture contrast stays below the object contrast so shapes stand out.
    c2 = _nearby_colour(rng, c1, rng.uniform(40.0, 110.0))
    t = _PATTERNS[int(rng.integers(len(_PATTERNS)))](rng, h, w)
    canvas = c1 + t[..., None] * (c2 - c1)
    if rng.random() < 0.5:  # soft illumination-like shading on top
        canvas = canvas + (_noise_blobs(rng, h, w)[..., None] - 0.5) * rng.uniform(10.0, 40.0)
    return canvas.astype(np.float32)


# --------------------------------------------------------------------------
# Shapes: polygons with circumradius 1, scaled to a sampled pixel area.
# --------------------------------------------------------------------------


def _regular(n, start_deg, radii=(1.0,)):
    count = n * len(radii)
    angles = np.deg2rad(start_deg) + np.arange(count) * 2 * math.pi / count
    r = np.resize(np.asarray(radii, dtype=np.float64), count)
    return np.stack([r * np.cos(angles), -r * np.sin(angles)], axis=1)


def _unit_polygon(rng, label):
    name = CLASSES[label - 1]
    if name == "circle":
        return _regular(72, 0.0)
    if name == "square":
        return _regular(4, 45.0)
    if name == "triangle":
        return _regular(3, 90.0)
    if name == "star":
        return _regular(5, 90.0, (1.0, rng.uniform(0.40, 0.50)))
    return _regular(6, 0.0)  # hexagon


def _polygon_area(pts):
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _sample_area(rng):
    probs = np.array([b[0] for b in _SIZE_BUCKETS])
    _, lo, hi = _SIZE_BUCKETS[int(rng.choice(len(_SIZE_BUCKETS), p=probs / probs.sum()))]
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _sample_shape(rng, label, h, w):
    """Vertices (N, 2) as (x, y) offsets from the shape centre, in pixels."""
    pts = _unit_polygon(rng, label)
    scale = math.sqrt(_sample_area(rng) / _polygon_area(pts))
    aspect = math.exp(rng.uniform(-math.log(_MAX_ASPECT), math.log(_MAX_ASPECT)))
    pts = pts * scale * np.array([math.sqrt(aspect), 1.0 / math.sqrt(aspect)])
    if CLASSES[label - 1] != "circle":  # a rotated circle looks the same
        a = rng.uniform(0.0, 2 * math.pi)
        pts = pts @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    # Shrink shapes that would not fit, so no object is truncated by the border.
    extent = pts.max(axis=0) - pts.min(axis=0)
    return pts * min(1.0, (w - 4) / extent[0], (h - 4) / extent[1])


def _place(rng, pts, h, w):
    lo = -pts.min(axis=0) + 1.0
    hi = np.array([w - 2.0, h - 2.0]) - pts.max(axis=0)
    centre = rng.uniform(np.minimum(lo, hi), np.maximum(lo, hi))
    mask = np.zeros((h, w), np.uint8)
    # 4 fractional bits give smooth edges for small shapes.
    cv2.fillPoly(mask, [np.round((pts + centre) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _min_visible(full_area):
    """Pixels an object must keep visible when later objects cover it.

    Besides the ~50% / 30 px rule, occlusion must not push an object into a
    smaller COCO size bucket: otherwise large shapes, which almost always get
    partly covered, would mostly be annotated as medium and the size mix would
    depend on clutter instead of on _SIZE_BUCKETS.
    """
    bucket_floor = LARGE_AREA if full_area >= LARGE_AREA else SMALL_AREA if full_area >= SMALL_AREA else 0
    return max(MIN_VISIBLE_PIXELS, math.ceil(MIN_VISIBLE_FRACTION * full_area), bucket_floor)


def _keeps_earlier_visible(owner, mask, min_visible):
    """True if every earlier object keeps at least ``min_visible[k]`` pixels under ``mask``."""
    if not min_visible:
        return True
    remaining = np.bincount(owner[~mask] + 1, minlength=len(min_visible) + 1)[1:]
    return bool(np.all(remaining >= np.asarray(min_visible)))


def _place_object(rng, pts, owner, min_visible):
    """Mask of ``pts`` at a position that respects earlier objects, or None."""
    h, w = owner.shape
    for _ in range(_PLACEMENT_ATTEMPTS):
        mask = _place(rng, pts, h, w)
        if mask.sum() >= MIN_VISIBLE_PIXELS and _keeps_earlier_visible(owner, mask, min_visible):
            return mask
    return None


def _sample_objects(rng, config):
    """(label, vertices) pairs in paint order."""
    h, w = config.image_size
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    labels = rng.integers(1, len(CLASSES) + 1, size=count)
    shapes = [(int(label), _sample_shape(rng, int(label), h, w)) for label in labels]
    # Mostly big-first (big shapes act as "background" objects and small ones
    # sit on top); painting large shapes last would either bury earlier objects
    # or be rejected, starving the large bucket.  Sometimes keep random order
    # so small objects are also seen partly hidden behind bigger ones.
    if rng.random() < _BIG_FIRST_PROBABILITY:
        shapes.sort(key=lambda s: -_polygon_area(s[1]))
    return shapes


_RING_KERNEL = np.ones((7, 7), np.uint8)


def _neighbour_colours(canvas, owner, mask, colours):
    """Colours touching ``mask``: mean nearby background plus each adjacent object."""
    ring = cv2.dilate(mask.astype(np.uint8), _RING_KERNEL).astype(bool) & ~mask
    near_background = ring & (owner < 0)
    refs = [colours[k] for k in np.unique(owner[ring]) if k >= 0]
    if near_background.any():
        refs.append(canvas[near_background].mean(axis=0))
    return refs or [canvas[mask].mean(axis=0)]


def _contrasting_colour(rng, refs):
    """A random colour far from every reference colour, so the outline is visible."""
    best, best_distance = None, -1.0
    for _ in range(32):
        colour = rng.uniform(0, 255, 3)
        distance = min(float(np.linalg.norm(colour - ref)) for ref in refs)
        if distance >= _MIN_COLOUR_DISTANCE:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def render_sample(config: ShapesConfig, split: str, index: int) -> ShapesSample:
    """Render image ``index`` of ``split`` deterministically from ``config.seed``."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split), index])
    h, w = config.image_size
    canvas = _background(rng, h, w)
    owner = np.full((h, w), -1, np.int64)  # index of the object on top, -1 = background
    labels, full_areas, min_visible, colours = [], [], [], []
    for label, pts in _sample_objects(rng, config):
        mask = _place_object(rng, pts, owner, min_visible)
        if mask is None:  # no room left that keeps earlier objects visible
            continue
        colours.append(_contrasting_colour(rng, _neighbour_colours(canvas, owner, mask, colours)))
        canvas[mask] = colours[-1]
        owner[mask] = len(labels)
        labels.append(label)
        full_areas.append(int(mask.sum()))
        min_visible.append(_min_visible(full_areas[-1]))
    canvas += rng.normal(0.0, _NOISE_SIGMA, canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    masks = [owner == k for k in range(len(labels))]
    return ShapesSample(image=image, labels=labels, masks=masks, full_areas=full_areas)


# --------------------------------------------------------------------------
# Annotation formats
# --------------------------------------------------------------------------


def mask_to_coco_bbox(mask: np.ndarray) -> list:
    """Tight COCO box ``[c0, r0, c1 - c0 + 1, r1 - r0 + 1]`` of a non-empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    c0, c1, r0, r1 = int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])
    return [float(c0), float(r0), float(c1 - c0 + 1), float(r1 - r0 + 1)]


def coco_bbox_to_voc(bbox) -> tuple:
    """COCO ``[x, y, w, h]`` (0-based) -> VOC (xmin, ymin, xmax, ymax), 1-based inclusive."""
    x, y, w, h = (int(round(v)) for v in bbox)
    return x + 1, y + 1, x + w, y + h


def _coco_annotation(mask, label, image_id, ann_id):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": int(label),
        # Whole pixels already; rounding keeps the JSON text stable regardless.
        "bbox": [round(v, 2) for v in mask_to_coco_bbox(mask)],
        "area": float(mask.sum()),
        "iscrowd": 0,
        "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
    }


_VOC_HEADER = """<annotation>
\t<folder>shapes</folder>
\t<filename>{filename}</filename>
\t<source>
\t\t<database>shapes</database>
\t</source>
\t<size>
\t\t<width>{width}</width>
\t\t<height>{height}</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
"""

_VOC_OBJECT = """\t<object>
\t\t<name>{name}</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>{xmin}</xmin>
\t\t\t<ymin>{ymin}</ymin>
\t\t\t<xmax>{xmax}</xmax>
\t\t\t<ymax>{ymax}</ymax>
\t\t</bndbox>
\t</object>
"""


def _voc_xml(filename, width, height, annotations):
    parts = [_VOC_HEADER.format(filename=filename, width=width, height=height)]
    for ann in annotations:
        xmin, ymin, xmax, ymax = coco_bbox_to_voc(ann["bbox"])
        name = CLASSES[ann["category_id"] - 1]
        parts.append(_VOC_OBJECT.format(name=name, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax))
    parts.append("</annotation>\n")
    return "".join(parts)


def _dump_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _write_text(path: Path, text: str):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


# --------------------------------------------------------------------------
# Writing the tree
# --------------------------------------------------------------------------


def _write_split(tmp: Path, config: ShapesConfig, split: str, progress, done: int, total: int):
    h, w = config.image_size
    images, annotations, stems = [], [], []
    for index in range(config.num_images(split)):
        sample = render_sample(config, split, index)
        stem = image_stem(split, index)
        image_id = index + 1
        anns = [
            _coco_annotation(m, lab, image_id, len(annotations) + k + 1)
            for k, (m, lab) in enumerate(zip(sample.masks, sample.labels))
        ]
        jpg = tmp / "JPEGImages" / f"{stem}.jpg"
        if not cv2.imwrite(str(jpg), sample.image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"cv2.imwrite failed for {jpg}")  # it reports failure only via its return value
        _write_text(tmp / "Annotations" / f"{stem}.xml", _voc_xml(f"{stem}.jpg", w, h, anns))
        images.append({"id": image_id, "file_name": f"{stem}.jpg", "width": w, "height": h})
        annotations.extend(anns)
        stems.append(stem)
        if progress is not None:
            progress(done + index + 1, total)
    coco = {
        "info": {"description": "shapes synthetic dataset", "version": str(GENERATOR_VERSION), "split": split},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES)],
    }
    _write_text(tmp / f"instances_{split}.json", _dump_json(coco))
    _write_text(tmp / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{s}\n" for s in stems))


def _write_tree(tmp: Path, config: ShapesConfig, progress):
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    total, done = config.num_train + config.num_val, 0
    for split in SPLITS:
        _write_split(tmp, config, split, progress, done, total)
        done += config.num_images(split)
    # Written last: its presence marks the tree as complete.
    _write_text(tmp / CONFIG_FILE, _dump_json(config.to_record()) + "\n")


def _config_matches(root: Path, config: ShapesConfig) -> bool:
    try:
        stored = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == json.loads(_dump_json(config.to_record()))


def _swap_into_place(tmp: Path, root: Path, config: ShapesConfig):
    """Rename the finished ``tmp`` to ``root``; the old tree goes only afterwards."""
    old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
    had_old = root.exists() or root.is_symlink()
    if had_old:
        os.replace(root, old)
    try:
        os.replace(tmp, root)
    except OSError:
        if had_old and not root.exists():
            os.replace(old, root)  # put the previous tree back
        # A concurrent caller may have put an identical tree in place first.
        if not _config_matches(root, config):
            raise
    finally:
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)


def generate(
    root,
    config: ShapesConfig = ShapesConfig(),
    progress: Optional[Callable[[int, int], None]] = None,
) -> Path:
    """Write the dataset for ``config`` to ``root`` atomically and return ``root``.

    Everything is written to a temporary sibling directory first, so a crash
    or interrupt never leaves a half-written tree at ``root``, and an existing
    tree there is replaced only once the new one is complete.  ``progress``,
    if given, is called as ``progress(images_done, images_total)``.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the dataset is meant to be shared
        _write_tree(tmp, config, progress)
        _swap_into_place(tmp, root, config)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_generated(
    root,
    config: ShapesConfig = ShapesConfig(),
    progress: Optional[Callable[[int, int], None]] = None,
) -> Path:
    """Return ``root``, generating (or regenerating) it unless it already matches ``config``."""
    root = Path(root)
    if _config_matches(root, config):
        return root
    return generate(root, config, progress)
