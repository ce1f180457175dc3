#!/usr/bin/env python
"""VOC evaluation speed: the vectorised evaluator against a direct per-detection loop of the same rules.

Both score the same random detections (half of them jittered copies of ground
truth boxes, so matching matters) and must agree; the ratio is loop time /
vectorised time. The loop is py-faster-rcnn's voc_eval logic
(detection/evaluation/voc_reference.py).

    python bench/eval_speed.py [--images 5000] [--classes 20] [--detections 100]
"""
import argparse
import time

import numpy as np

from detection.evaluation.voc import evaluate_voc
from detection.evaluation.voc_reference import ref_evaluate


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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--detections", type=int, default=100)
    args = p.parse_args()
    names = [f"class{k}" for k in range(args.classes)]
    dets, gts = random_case(args.images, args.classes, args.detections)
    print(f"{args.images} images x {args.classes} classes x {args.detections} detections per image")
    start = time.perf_counter()
    fast = evaluate_voc(dets, gts, names)
    vectorised = time.perf_counter() - start
    start = time.perf_counter()
    _, loop_map = ref_evaluate(dets, gts, names, 0.5, "area", True)
    loop = time.perf_counter() - start
    assert abs(fast["mAP"] - loop_map) < 1e-9, (fast["mAP"], loop_map)
    print(f"vectorised: {vectorised:6.2f} s   per-detection loop: {loop:6.2f} s   same mAP {fast['mAP']:.6f}")
    print(f"ratio loop / vectorised: {loop / vectorised:.1f}x")


if __name__ == "__main__":
    main()
