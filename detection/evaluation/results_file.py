"""Predictions as files: a standard COCO results JSON, and where the evaluation outputs go.

Predictions computed from a checkpoint are saved as a COCO results JSON
(boxes as xywh in original pixels, the dataset's own category ids, RLE
masks), so evaluation and drawing can be rerun without the model.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from backbones.atomic_files import write_text
from backbones.errors import UserError

from ..engine.run_folder import record_if_run_folder
from .coco import to_coco_results


def warn(message):
    """One line on stderr: the program goes on, but the user should know (their input is not what it seems)."""
    print(f"warning: {message}", file=sys.stderr)


def save_results(path, dataset, predictions) -> Path:
    """Write predictions as a COCO results JSON."""
    with_masks = any("rles" in p for p in predictions.values())
    results = to_coco_results(predictions, dataset.category_ids, ("bbox", "segm") if with_masks else ("bbox",))
    return write_json(path, results)


def load_results(path, dataset) -> dict:
    """Read a COCO results JSON back into per-image predictions for ``dataset``.

    Every entry is checked against the dataset (ids, box, score; masks of
    their image's size) and a problem is named by entry, so nothing fails
    later inside pycocotools. An entry needs a ``bbox``, a ``segmentation``
    or both (cocoapi's own segm results have no boxes); a missing box is
    derived from the mask by ``pycocotools.mask.toBbox``, as ``loadRes`` does,
    and a file without any box is scored as ``loadRes`` scores it (boxes and
    areas from the masks). Masks may be compressed RLE, uncompressed RLE or
    polygons: the last two are converted to compressed RLE with pycocotools
    (``frPyObjects``, as it converts ground truth), since ``loadRes`` takes
    compressed RLE only. Keys beyond these are ignored. Masks are kept only
    when every entry carries one: pycocotools cannot score a partial set, so
    the others are evaluated as boxes, with a warning that counts them.
    """
    path = Path(path)
    results = _read_results(path)
    label_of = {c: i + 1 for i, c in enumerate(dataset.category_ids)}
    per_image = {i: [] for i in dataset.image_ids}
    for n, r in enumerate(results):
        _check_entry(path, n, r, label_of, dataset)
    results = _keyed_by_file_name(path, results, dataset)
    _check_image_ids(path, results, dataset)
    with_masks = _with_masks(path, results)
    boxes_from_masks = bool(results) and not any(_has_box(r) for r in results)  # scored as loadRes scores them
    results = [_mask_and_box(path, n, r, dataset.record(r["image_id"]), with_masks) for n, r in enumerate(results)]
    for r in results:
        per_image[r["image_id"]].append(r)
    return {i: _stack(rs, label_of, with_masks, boxes_from_masks) for i, rs in per_image.items()}


def _read_results(path) -> list:
    """The results list of a JSON file (utf-8-sig: a byte-order mark is tolerated, as Windows tools write one)."""
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a COCO results JSON ([{{image_id, category_id, bbox, score}}, "
                        f"...])")
    if not path.is_file():
        raise UserError(f"predictions file {path} does not exist")
    try:
        results = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None
    if isinstance(results, dict) and {"images", "annotations"} <= set(results):
        raise UserError(f"{path} is a COCO ground-truth file (images, annotations, categories), not results; "
                        f"the results of a detector are a list [{{image_id, category_id, bbox, score}}, ...]")
    if not isinstance(results, list):
        raise UserError(f"{path} must hold a COCO results list ([{{image_id, category_id, bbox, score}}, ...]), "
                        f"not a {type(results).__name__}")
    if not results:
        warn(f"{path} holds no results: every AP is 0")
    return results


def _has_box(r) -> bool:
    """Whether an entry carries a box: pycocotools' loadRes takes an empty ``bbox`` for none too."""
    return r.get("bbox") not in (None, [])


def _check_entry(path, n, r, label_of, dataset):
    """One entry's keys, id types, box and score, and category; images are checked for all entries at once."""
    if not isinstance(r, dict):
        raise UserError(f"{path}: entry {n} is {_short(r)}, not a result {{image_id, category_id, bbox, score}}")
    missing = [key for key in ("image_id", "category_id", "score") if key not in r]
    if missing:
        raise UserError(f"{path}: entry {n} lacks {' and '.join(missing)}; a result is {{image_id, category_id, "
                        f"score, and bbox or segmentation or both}}")
    if not _has_box(r) and "segmentation" not in r:
        raise UserError(f"{path}: entry {n} has neither bbox nor segmentation; a result needs a box [x, y, width, "
                        f"height], a mask (segmentation, from which the box is derived) or both")
    for key in ("image_id", "category_id"):
        if not isinstance(r[key], (int, float, str)):  # a list or dict: not an id, and unhashable
            raise UserError(f"{path}: entry {n} has {key} {r[key]!r}; it must be a number or a string")
    if not _finite_box_and_score(r["bbox"] if _has_box(r) else [0, 0, 0, 0], r["score"]):
        raise UserError(f"{path}: entry {n} has a bad box or score (need finite x, y, w >= 0, h >= 0): "
                        f"bbox {r.get('bbox')}, score {r['score']}")
    if r["category_id"] not in label_of:
        categories = [f"{c} {name}" for c, name in zip(dataset.category_ids, dataset.class_names)]
        raise UserError(f"{path}: entry {n} names category {r['category_id']!r}, which is not in {dataset.name} "
                        f"(its categories: {_few(categories)})")


def _keyed_by_file_name(path, results, dataset) -> list:
    """Results that name their image by ``file_name`` (tools/predict.py writes both, its ``image_id`` being an
    index into its own images list, which may coincide with other ids of the dataset) are matched to
    ``dataset``'s images by file name: a path relative to any folder, the end of exactly one image's path."""
    if not results or not all(isinstance(r.get("file_name"), str) for r in results):
        return results
    by_name = {}
    for record in dataset.records:
        by_name.setdefault(Path(record.file_name).name, []).append(record)
    image_of = {}
    for name in {r["file_name"] for r in results}:
        tail = Path(name).parts
        matches = [rec for rec in by_name.get(Path(name).name, []) if Path(rec.file_name).parts[-len(tail):] == tail]
        if len(matches) != 1:
            problem = "no image" if not matches else f"{len(matches)} images"
            raise UserError(f"{path}: file_name {name!r} names {problem} of {dataset.name}; results keyed by file "
                            f"name must name each image by a path that ends one image's path")
        image_of[name] = matches[0].image_id
    return [{**r, "image_id": image_of[r["file_name"]]} for r in results]


def _check_image_ids(path, results, dataset):
    """Every entry's image is in the dataset. When none is, the results are most likely another dataset's."""
    known = set(dataset.image_ids)
    unknown = [n for n, r in enumerate(results) if r["image_id"] not in known]
    if not unknown:
        return
    n, image_id = unknown[0], results[unknown[0]]["image_id"]
    hint = _id_type_hint(image_id, dataset.image_ids)
    examples = f"{len(dataset.image_ids)} images, such as {_few(dataset.image_ids, 3, repr)}"
    if len(unknown) == len(results) > 1 and not hint:
        raise UserError(f"{path}: none of its {len(results)} results names an image of {dataset.name} ({examples}); "
                        f"are they for another dataset? Evaluate them on the data they were made for")
    raise UserError(f"{path}: entry {n} names image {image_id!r}, which is not in {dataset.name} "
                    f"({hint or examples})")


def _id_type_hint(image_id, image_ids) -> str:
    """'1' for 1 (or the reverse) is the usual mistake of a results file written by another program."""
    kind = lambda value: "strings" if isinstance(value, str) else "numbers"  # noqa: E731
    if not image_ids or kind(image_id) == kind(image_ids[0]):
        return ""
    same = next((i for i in image_ids if str(i) == str(image_id)), None)
    if same is not None:
        return f"its image ids are {kind(same)}: write {same!r}, not {image_id!r}"
    return f"its image ids are {kind(image_ids[0])} such as {_few(image_ids, 3, repr)}"


def _few(items, count=5, show=str) -> str:
    items = list(items)
    return ", ".join(show(i) for i in items[:count]) + (", ..." if len(items) > count else "")


def _with_masks(path, results) -> bool:
    """Whether every entry carries a mask; when only some do, say so: they are all evaluated as boxes."""
    carrying = sum("segmentation" in r for r in results)
    if 0 < carrying < len(results):
        warn(f"{path}: {carrying} of {len(results)} results carry segmentation; evaluating boxes only")
    return bool(results) and carrying == len(results)


def _mask_and_box(path, n, r, record, with_masks) -> dict:
    """The entry with its mask as compressed RLE (when masks are scored, or when its box must be derived from
    it) and its box (``toBbox`` of the mask where the entry has none, as pycocotools' loadRes derives it)."""
    if _has_box(r) and not with_masks:
        return r
    rle = _compressed_rle(path, n, r["segmentation"], record)
    if _has_box(r):
        return {**r, "segmentation": rle}
    return {**r, "segmentation": rle, "bbox": mask_utils.toBbox(rle).tolist()}


def _compressed_rle(path, n, segmentation, record) -> dict:
    """``segmentation`` as a compressed RLE of its image's size. pycocotools' loadRes takes compressed RLE only
    (it fails deep inside on polygons or uncompressed RLE), and scores a mask of another size IoU 0 without a
    word; polygons and uncompressed RLE are converted by pycocotools.mask.frPyObjects, as ground truth is."""
    height, width = record.height, record.width
    if isinstance(segmentation, list):
        _check_polygons(path, n, segmentation)
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    counts = segmentation.get("counts") if isinstance(segmentation, dict) else None
    if not (isinstance(counts, (str, list)) and isinstance(segmentation.get("size"), list)
            and len(segmentation["size"]) == 2):
        raise UserError(f"{path}: entry {n}: segmentation must be a compressed RLE {{'size': [height, width], "
                        f"'counts': '...'}} as pycocotools.mask.encode writes (or an uncompressed RLE, or "
                        f"polygons [[x1, y1, x2, y2, x3, y3, ...], ...]), got {_short(segmentation)}")
    if list(segmentation["size"]) != [height, width]:
        raise UserError(f"{path}: entry {n}: segmentation size {segmentation['size']} is not image "
                        f"{record.image_id!r}'s [height, width] [{height}, {width}]")
    if isinstance(counts, str):
        return {"size": [height, width], "counts": counts}
    if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
        raise UserError(f"{path}: entry {n}: uncompressed RLE counts must be whole numbers >= 0 that add up to "
                        f"height x width = {height * width}, got {_short(counts)}")
    rle = mask_utils.frPyObjects(segmentation, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def _check_polygons(path, n, polygons):
    """COCO polygons: a list of [x1, y1, x2, y2, x3, y3, ...] of finite numbers. frPyObjects would take a
    4-number list for a box, and fail without a word on fewer."""
    for k, polygon in enumerate(polygons):
        try:
            values = np.asarray(polygon, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1 or len(values) < 6 or len(values) % 2 \
                or not np.isfinite(values).all():
            raise UserError(f"{path}: entry {n}: segmentation polygon {k} is {_short(polygon)}; a polygon is "
                            f"[x1, y1, x2, y2, x3, y3, ...]: at least 3 points, as finite numbers")
    if not polygons:
        raise UserError(f"{path}: entry {n}: segmentation is an empty list of polygons")


def _short(value, limit=60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _finite_box_and_score(bbox, score) -> bool:
    """A box [x, y, w, h] of finite numbers with w, h >= 0, and a finite score."""
    try:
        values = np.asarray(list(bbox) + [score], dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return values.shape == (5,) and bool(np.isfinite(values).all()) and values[2] >= 0 and values[3] >= 0


def _stack(results, label_of, with_masks, boxes_from_masks):
    xywh = np.array([r["bbox"] for r in results], dtype=np.float64).reshape(-1, 4)
    pred = {"boxes": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
            "scores": np.array([r["score"] for r in results], dtype=np.float64),
            "labels": np.array([label_of[r["category_id"]] for r in results], dtype=np.int64)}
    if with_masks:
        pred["rles"] = [r["segmentation"] for r in results]
        if boxes_from_masks:
            pred["boxes_from_masks"] = True  # to_coco_results then writes them as the file had them
    return pred


def percent(value, width=8) -> str:
    """``100 * value`` to two decimals, right-aligned, or ``n/a`` where the value is undefined (None, NaN: a
    class or size range without ground truth)."""
    undefined = value is None or math.isnan(value)
    return f"{'n/a' if undefined else f'{100 * value:.2f}':>{width}}"


def json_numbers(obj):
    """``obj`` for a JSON file, undefined numbers (NaN) as null: ``json.dumps`` would write ``NaN``, which is
    not JSON, and which strict readers refuse or average in."""
    if isinstance(obj, dict):
        return {k: json_numbers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_numbers(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and math.isnan(obj):
        return None
    return obj


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
    """Write ``obj`` atomically; recorded in the run folder's manifest when written into one."""
    return write_text(record_if_run_folder(path), json.dumps(obj, default=float) + "\n")
