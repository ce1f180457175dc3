#!/usr/bin/env python
"""Evaluation speed, each against a reference measured in the same run.

VOC: the vectorised evaluator against a direct per-detection loop of the same
rules. Both score the same random detections (half of them jittered copies of
ground truth boxes, so matching matters) and must agree; the ratio is loop time
/ vectorised time. The loop is py-faster-rcnn's voc_eval logic
(detection/evaluation/voc_reference.py).

COCO: ``evaluate_coco`` with faster-coco-eval (what ``backend="auto"`` picks
when it is installed) against pycocotools, on a synthetic set of ``--coco-images``
images: 1-8 ground truth objects each (about 2% crowd regions), 20-100
detections each (half jittered copies of ground truth, so matching matters);
``--masks`` scores segm on compressed RLE masks (ellipses and rectangles)
instead of bbox. Each backend's time is the whole ``evaluate_coco`` call
(loadRes, evaluate, accumulate, summarize), rounds interleaved (the order
alternates), median and range reported; the 12 stats and per-class AP must
agree to 1e-9. Ratio: pycocotools / faster-coco-eval.

    python bench/eval_speed.py [--sections voc coco] [--images 5000] [--classes 20] [--detections 100]
                               [--coco-images 5000] [--coco-classes 10] [--masks] [--rounds 3]

The default run (both sections, boxes) takes about 2.5 minutes on 2 CPU cores.
"""
import argparse
import contextlib
import io
import statistics
import time

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from detection.evaluation.coco import STAT_NAMES, evaluate_coco
from detection.evaluation.voc import evaluate_voc
from detection.evaluation.voc_reference import ref_evaluate

COCO_BACKENDS = ("pycocotools", "faster-coco-eval")


def random_case(images, classes, detections, seed=0):
    rng = np.random.default_rng(seed)
    gts, dets = {}, {}
    for i in range(images):
        n = int(rng.integers(1, 8))
        xy = rng.uniform(0, 400, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 200, (n, 2))], axis=1).round()
        gts[i] = {"boxes": boxes, "labels": rng.integers(1, classes + 1, n), "difficult": rng.random(n) < 0.1}
        picks = rng.integers(0, n, detections // 2)
        near = boxes[picks] + rng.normal(0, 8, (len(picks), 4))
        xy = rng.uniform(0, 400, (detections - len(picks), 2))
        far = np.concatenate([xy, xy + rng.uniform(10, 200, (len(xy), 2))], axis=1)
        near[:, 2:] = np.maximum(near[:, 2:], near[:, :2])
        labels = np.concatenate([gts[i]["labels"][picks], rng.integers(1, classes + 1, len(far))])
        dets[i] = {"boxes": np.concatenate([near, far]), "scores": rng.random(detections), "labels": labels}
    return dets, gts


def voc_section(args):
    names = [f"class{k}" for k in range(args.classes)]
    dets, gts = random_case(args.images, args.classes, args.detections)
    print(f"VOC: {args.images} images x {args.classes} classes x {args.detections} detections per image")
    start = time.perf_counter()
    fast = evaluate_voc(dets, gts, names)
    vectorised = time.perf_counter() - start
    start = time.perf_counter()
    _, loop_map = ref_evaluate(dets, gts, names, 0.5, "area", True)
    loop = time.perf_counter() - start
    assert abs(fast["mAP"] - loop_map) < 1e-9, (fast["mAP"], loop_map)
    print(f"  vectorised: {vectorised:6.2f} s   per-detection loop: {loop:6.2f} s   same mAP {fast['mAP']:.6f}")
    print(f"  ratio loop / vectorised: {loop / vectorised:.1f}x")


# --------------------------------------------------------------------------
# COCO
# --------------------------------------------------------------------------
def _rle(polygon, height, width):
    """A polygon as a compressed RLE with str counts (as results files and our writer carry it)."""
    rle = mask_util.merge(mask_util.frPyObjects([polygon], height, width))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _polygon(x, y, w, h, ellipse):
    if not ellipse:
        return [x, y, x + w, y, x + w, y + h, x, y + h]
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    return np.stack([x + w / 2 * (1 + np.cos(t)), y + h / 2 * (1 + np.sin(t))], 1).ravel().tolist()


def coco_case(images, classes, masks, seed=0):
    """(ground truth COCO object, results list): see the module docstring."""
    rng = np.random.default_rng(seed)
    dataset = {"images": [], "annotations": [], "categories": [{"id": c, "name": f"class{c}"}
                                                                for c in range(1, classes + 1)]}
    results = []
    for image_id in range(1, images + 1):
        width, height = (int(v) for v in rng.integers(320, 641, 2))
        dataset["images"].append({"id": image_id, "width": width, "height": height})
        n = int(rng.integers(1, 9))
        wh = rng.uniform(8, 0.6 * min(width, height), (n, 2))
        xy = rng.uniform(0, 1, (n, 2)) * ([width, height] - wh)
        cats = rng.integers(1, classes + 1, n)
        shapes = rng.random(n) < 0.5
        for (x, y), (w, h), c, ellipse in zip(xy.tolist(), wh.tolist(), cats.tolist(), shapes):
            ann = {"id": len(dataset["annotations"]) + 1, "image_id": image_id, "category_id": c,
                   "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.02)}
            if masks:
                ann["segmentation"] = _rle(_polygon(x, y, w, h, ellipse), height, width)
                ann["area"] = float(mask_util.area(ann["segmentation"]))
            dataset["annotations"].append(ann)
        m = int(rng.integers(20, 101))
        picks = rng.integers(0, n, m // 2)
        near = np.concatenate([xy[picks] + rng.normal(0, 6, (len(picks), 2)),
                               wh[picks] * rng.uniform(0.8, 1.2, (len(picks), 2))], 1)
        far_wh = rng.uniform(8, 0.6 * min(width, height), (m - len(picks), 2))
        far = np.concatenate([rng.uniform(0, 1, (len(far_wh), 2)) * ([width, height] - far_wh), far_wh], 1)
        boxes = np.concatenate([near, far])
        labels = np.concatenate([np.where(rng.random(len(picks)) < 0.8, cats[picks],
                                          rng.integers(1, classes + 1, len(picks))),
                                 rng.integers(1, classes + 1, len(far))])
        for (x, y, w, h), c, s, ellipse in zip(boxes.tolist(), labels.tolist(), rng.random(m).tolist(),
                                               rng.random(m) < 0.5):
            result = {"image_id": image_id, "category_id": c, "bbox": [x, y, w, h], "score": s}
            if masks:
                result["segmentation"] = _rle(_polygon(x, y, w, h, ellipse), height, width)
            results.append(result)
    coco_gt = COCO()
    coco_gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # its "creating index..."
        coco_gt.createIndex()
    return coco_gt, results


def _timed(coco_gt, results, iou_type, backend):
    start = time.perf_counter()
    stats = evaluate_coco(coco_gt, results, iou_type, backend=backend)
    return time.perf_counter() - start, stats


def coco_section(args):
    iou_type = "segm" if args.masks else "bbox"
    start = time.perf_counter()
    coco_gt, results = coco_case(args.coco_images, args.coco_classes, args.masks)
    print(f"COCO {iou_type}: {args.coco_images} images, {len(coco_gt.dataset['annotations'])} objects, "
          f"{len(results)} detections ({len(results) / args.coco_images:.0f} per image), {args.coco_classes} "
          f"classes (built in {time.perf_counter() - start:.0f} s)")
    times = {b: [] for b in COCO_BACKENDS}
    stats = {}
    for r in range(args.rounds):
        for backend in COCO_BACKENDS if r % 2 == 0 else COCO_BACKENDS[::-1]:  # interleaved, order alternating
            seconds, stats[backend] = _timed(coco_gt, results, iou_type, backend)
            times[backend].append(seconds)
    ours, fast = stats["pycocotools"], stats["faster-coco-eval"]
    assert fast["backend"] == "faster-coco-eval" and ours["backend"] == "pycocotools"
    for name in STAT_NAMES:
        assert abs(fast[name] - ours[name]) <= 1e-9, (name, fast[name], ours[name])
    for name, ap in ours["per_class"].items():
        assert abs(fast["per_class"][name] - ap) <= 1e-9, (name, fast["per_class"][name], ap)
    print(f"  same 12 stats and per-class AP to 1e-9 (AP {ours['AP']:.6f}, AP50 {ours['AP50']:.6f})")
    for backend in COCO_BACKENDS:
        t = times[backend]
        print(f"  {backend:<17} median {statistics.median(t):6.2f} s   range {min(t):6.2f}-{max(t):6.2f} s "
              f"({args.rounds} rounds)")
    ratios = [a / b for a, b in zip(times["pycocotools"], times["faster-coco-eval"])]
    ratio = statistics.median(times["pycocotools"]) / statistics.median(times["faster-coco-eval"])
    print(f"  ratio pycocotools / faster-coco-eval: {ratio:.1f}x (median times; per round "
          f"{min(ratios):.1f}-{max(ratios):.1f}x)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", choices=("voc", "coco"), default=["voc", "coco"])
    p.add_argument("--images", type=int, default=5000, help="VOC")
    p.add_argument("--classes", type=int, default=20, help="VOC")
    p.add_argument("--detections", type=int, default=100, help="VOC, per image")
    p.add_argument("--coco-images", type=int, default=5000)
    p.add_argument("--coco-classes", type=int, default=10)
    p.add_argument("--masks", action="store_true", help="COCO: segm on RLE masks instead of bbox")
    p.add_argument("--rounds", type=int, default=3, help="COCO: interleaved rounds per backend")
    args = p.parse_args()
    if "voc" in args.sections:
        voc_section(args)
    if "coco" in args.sections:
        coco_section(args)


if __name__ == "__main__":
    main()
