"""Every valid form of a COCO results file is scored as pycocotools scores it (tools/eval_coco.py --annotations
--predictions; detection.evaluation.results_file.load_results).

cocoapi's own example segm results (results/instances_val2014_fakesegm100_results.json) carry no ``bbox``:
``{"image_id", "category_id", "segmentation": {"size", "counts"}, "score"}``. pycocotools' ``loadRes`` derives
the box with ``maskUtils.toBbox`` and the area with ``maskUtils.area``; such a file was refused with "entry 0
lacks image_id, category_id, bbox or score". The reference numbers here are computed by pycocotools itself
(``COCO.loadRes`` + ``COCOeval``) on the same two files.
"""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from backbones.errors import UserError
from detection.cli import eval_coco
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset
from detection.evaluation.coco import STAT_NAMES
from detection.evaluation.results_file import load_results

# (image id, width, height); objects: (image id, category id, polygon) of all three COCO size ranges
IMAGES = [(1, 100, 80), (2, 120, 100), (3, 64, 64)]
OBJECTS = [
    (1, 1, [10, 10, 50, 10, 50, 50, 10, 50]),              # 40x40 square: medium (1600 px)
    (1, 2, [60, 20, 75, 20, 75, 35, 60, 35]),              # 15x15: small (225 px)
    (2, 1, [5, 2, 115, 2, 115, 98, 5, 98]),                # 110x96: large (10560 px)
    (2, 2, [20, 20, 60, 20, 40, 60]),                      # a triangle: medium
    (3, 1, [4, 4, 44, 4, 44, 10, 10, 10, 10, 44, 4, 44]),  # an L: small area (444 px), medium box (1600)
]


def mask(width, height, *rects):
    """A binary mask of an image, the union of ``(x, y, w, h)`` rectangles."""
    m = np.zeros((height, width), np.uint8)
    for x, y, w, h in rects:
        m[y:y + h, x:x + w] = 1
    return m


def compressed(m):
    encoded = mask_utils.encode(np.asfortranarray(m))
    return {"size": encoded["size"], "counts": encoded["counts"].decode("ascii")}


def segm_results():
    """cocoapi-style segm results: masks and scores, no boxes; hits, near misses and false positives, one L-shaped
    mask whose mask area (small) and box area (medium) fall in different COCO size ranges."""
    size = {i: (w, h) for i, w, h in IMAGES}
    masks = [
        (1, 1, [(10, 10, 40, 40)], 0.95), (1, 1, [(12, 14, 40, 36)], 0.40), (1, 2, [(60, 20, 15, 15)], 0.8),
        (1, 2, [(70, 60, 20, 12)], 0.7),
        (2, 1, [(5, 2, 110, 96)], 0.9), (2, 1, [(30, 30, 50, 50)], 0.6), (2, 2, [(25, 20, 30, 25)], 0.85),
        (3, 1, [(4, 4, 40, 6), (4, 10, 6, 34)], 0.75), (3, 2, [(40, 40, 20, 20)], 0.3),
        (3, 1, [(30, 30, 33, 33)], 0.5),
    ]
    return [{"image_id": i, "category_id": c, "segmentation": compressed(mask(*size[i], *rects)), "score": s}
            for i, c, rects, s in masks]


def write_gt(folder):
    annotations = []
    for k, (image_id, category_id, polygon) in enumerate(OBJECTS, start=1):
        rle = mask_utils.frPyObjects([polygon], *next((h, w) for i, w, h in IMAGES if i == image_id))
        x, y, w, h = mask_utils.toBbox(rle)[0].tolist()
        annotations.append({"id": k, "image_id": image_id, "category_id": category_id, "segmentation": [polygon],
                            "bbox": [x, y, w, h], "area": float(mask_utils.area(rle)[0]), "iscrowd": 0})
    path = folder / "gt.json"
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": w, "height": h} for i, w, h in IMAGES],
        "annotations": annotations, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}))
    return path


def pycocotools_stats(gt_path, results_path, iou_type):
    """What pycocotools itself reports for the two files: COCO(gt).loadRes(results file) and COCOeval."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        evaluation = COCOeval(gt, gt.loadRes(str(results_path)), iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: (None if v == -1 else float(v)) for name, v in zip(STAT_NAMES, evaluation.stats)}


def run_eval_coco(tmp_path, gt_path, results, name="results.json", argv=()):
    path = tmp_path / name
    path.write_text(json.dumps(results))
    out = tmp_path / f"{name}.eval.json"
    eval_coco.main(["--annotations", str(gt_path), "--predictions", str(path), "--output-json", str(out), *argv])
    return path, json.loads(out.read_text())


@pytest.fixture
def gt(tmp_path):
    return write_gt(tmp_path)


@pytest.fixture
def dataset(gt):
    return DetectionDataset(load_coco(gt, gt.parent / "images", "gt"))


def _load(tmp_path, dataset, entries):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    return load_results(path, dataset)


# --- scoring: the numbers of pycocotools on the same files ----------------------------------------------------
@pytest.mark.parametrize("backend", ["pycocotools", "faster-coco-eval"])
def test_cocoapi_style_segm_results_without_boxes_score_as_pycocotools_scores_them(tmp_path, gt, backend, capsys):
    path, ours = run_eval_coco(tmp_path, gt, segm_results(), argv=["--backend", backend])
    assert "lacks" not in capsys.readouterr().err
    for iou_type in ("segm", "bbox"):  # bbox: loadRes's boxes (toBbox) and areas (the masks') of the file
        reference = pycocotools_stats(gt, path, iou_type)
        assert {k: ours[iou_type][k] for k in STAT_NAMES} == pytest.approx(reference, abs=1e-12), iou_type
    # the file tests what it claims: partial credit, and the L's mask and box areas in different size ranges
    assert 0.3 < ours["segm"]["AP"] < 0.9 and ours["segm"]["AP"] != ours["bbox"]["AP"]
    l_mask = segm_results()[7]["segmentation"]
    assert mask_utils.area(l_mask) < 32 ** 2 < np.prod(mask_utils.toBbox(l_mask)[2:])


def test_boxes_are_derived_from_the_masks_by_pycocotools_tobbox(tmp_path, dataset):
    results = segm_results()
    predictions = _load(tmp_path, dataset, results)
    for image_id, pred in predictions.items():
        own = [r for r in results if r["image_id"] == image_id]
        xywh = np.array([mask_utils.toBbox(r["segmentation"]) for r in own]).reshape(-1, 4)
        np.testing.assert_array_equal(pred["boxes"], np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1))
        assert pred["rles"] == [r["segmentation"] for r in own]
    np.testing.assert_array_equal(predictions[3]["boxes"][0], [4, 4, 44, 44])  # the L: its bounding box


def test_results_with_boxes_and_masks_score_as_pycocotools_scores_them(tmp_path, gt):
    results = [{**r, "bbox": mask_utils.toBbox(r["segmentation"]).tolist()} for r in segm_results()]
    path, ours = run_eval_coco(tmp_path, gt, results)
    for iou_type in ("segm", "bbox"):  # bbox: areas w x h, as loadRes takes them from a file with boxes
        assert {k: ours[iou_type][k] for k in STAT_NAMES} == pytest.approx(pycocotools_stats(gt, path, iou_type),
                                                                           abs=1e-12)


def test_extra_keys_are_ignored(tmp_path, gt):
    extra = {"id": 7, "area": 1.0, "iscrowd": 1, "ignore": 1, "attributes": {"occluded": True}, "bbox": []}
    _, plain = run_eval_coco(tmp_path, gt, segm_results(), name="plain.json")
    _, with_extra = run_eval_coco(tmp_path, gt, [{**r, **extra} for r in segm_results()], name="extra.json")
    for iou_type in ("segm", "bbox"):
        assert {k: with_extra[iou_type][k] for k in STAT_NAMES} == {k: plain[iou_type][k] for k in STAT_NAMES}


@pytest.mark.parametrize("form", ["polygons", "uncompressed"])
def test_polygon_and_uncompressed_rle_masks_are_converted_by_pycocotools(tmp_path, gt, dataset, form):
    """pycocotools' loadRes refuses both (a TypeError deep inside); they are converted as its ground truth is."""
    size = {i: (h, w) for i, w, h in IMAGES}
    polygons = [[10, 10, 50, 10, 50, 50, 10, 50], [60, 20, 75, 20, 75, 35, 60, 35], [20, 20, 60, 20, 40, 60]]
    results = [{"image_id": i, "category_id": c, "segmentation": [p], "score": s}
               for (i, c, s), p in zip([(1, 1, 0.9), (1, 2, 0.8), (2, 2, 0.7)], polygons)]
    reference = [{**r, "segmentation": mask_utils.merge(mask_utils.frPyObjects(r["segmentation"],
                                                                               *size[r["image_id"]]))}
                 for r in results]
    for r in reference:
        r["segmentation"]["counts"] = r["segmentation"]["counts"].decode("ascii")
    if form == "uncompressed":  # the same masks as {"size", "counts": [run lengths]}
        results = [{**r, "segmentation": uncompressed(mask_utils.decode(ref["segmentation"]))}
                   for r, ref in zip(results, reference)]
    predictions = _load(tmp_path, dataset, results)
    assert predictions[1]["rles"] == [r["segmentation"] for r in reference[:2]]
    path, ours = run_eval_coco(tmp_path, gt, results)
    reference_path = tmp_path / "reference.json"
    reference_path.write_text(json.dumps(reference))
    for iou_type in ("segm", "bbox"):
        assert {k: ours[iou_type][k] for k in STAT_NAMES} == pytest.approx(
            pycocotools_stats(gt, reference_path, iou_type), abs=1e-12)
    assert ours["segm"]["AP50"] > 0.5


def uncompressed(m):
    """COCO's uncompressed RLE: column-major run lengths, the first of background (0 when the first pixel is
    foreground)."""
    counts, value, run = [], 0, 0
    for pixel in np.asarray(m).flatten(order="F"):
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    return {"size": list(m.shape), "counts": counts + [run]}


def test_entries_without_a_box_in_a_file_whose_other_entries_have_no_mask_are_boxes_from_their_masks(
        tmp_path, dataset, capsys):
    results = segm_results()[:2]
    results[1] = {**results[1], "bbox": [1, 2, 3, 4]}
    del results[1]["segmentation"]
    predictions = _load(tmp_path, dataset, results)
    np.testing.assert_array_equal(predictions[1]["boxes"], [[10, 10, 50, 50], [1, 2, 4, 6]])
    assert "rles" not in predictions[1]
    assert "1 of 2 results carry segmentation; evaluating boxes only" in capsys.readouterr().err


# --- truly invalid entries are named ---------------------------------------------------------------------------
def _without(entry, *keys):
    return {k: v for k, v in entry.items() if k not in keys}


@pytest.mark.parametrize("change, message", [
    (lambda r: _without(r, "score"), r"entry 1 lacks score; a result is \{image_id, category_id, score, and bbox "
                                     r"or segmentation or both\}"),
    (lambda r: _without(r, "image_id", "category_id"), "entry 1 lacks image_id and category_id"),
    (lambda r: _without(r, "segmentation"), "entry 1 has neither bbox nor segmentation; a result needs a box"),
    (lambda r: {**_without(r, "segmentation"), "bbox": []}, "entry 1 has neither bbox nor segmentation"),
    (lambda r: [r], r"entry 1 is \[\{'image_id'.*, not a result \{image_id, category_id, bbox, score\}"),
    (lambda r: {**r, "segmentation": "abc"}, r"entry 1: segmentation must be a compressed RLE \{'size': \[height, "
                                             r"width\], 'counts': '...'\}"),
    (lambda r: {**r, "segmentation": {"counts": "abc"}}, "entry 1: segmentation must be a compressed RLE"),
    (lambda r: {**r, "segmentation": compressed(mask(120, 80, (1, 1, 5, 5)))},
     r"entry 1: segmentation size \[80, 120\] is not image 1's \[height, width\] \[80, 100\]"),
    (lambda r: {**r, "segmentation": {"size": [80, 100], "counts": [100, 20, 30]}},
     r"entry 1: uncompressed RLE counts must be whole numbers >= 0 that add up to height x width = 8000, "
     r"got \[100, 20, 30\]"),
    (lambda r: {**r, "segmentation": [[10, 10, 50, 10, 50, 50]] + [[1, 2, 3, 4]]},
     r"entry 1: segmentation polygon 1 is \[1, 2, 3, 4\]; a polygon is \[x1, y1, x2, y2, x3, y3, ...\]: at least "
     r"3 points"),
    (lambda r: {**r, "segmentation": [[10, 10, 50, 10, 50, float("nan")]]}, "entry 1: segmentation polygon 0 is"),
    (lambda r: {**r, "segmentation": []}, "entry 1: segmentation is an empty list of polygons"),
])
def test_invalid_entries_are_named(tmp_path, dataset, change, message):
    entries = segm_results()[:2]
    entries[1] = change(entries[1])
    with pytest.raises(UserError, match=message):
        _load(tmp_path, dataset, entries)
