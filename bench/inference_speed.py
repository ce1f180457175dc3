#!/usr/bin/env python
"""CPU inference of a ResNet-18 FPN Mask R-CNN: fp32 against bf16 autocast, channels_last, and both.

The model is the demo's (configs/shapes_demo.yaml: R18-FPN Mask R-CNN, 5
classes) with min_size = max_size = each ``--sizes`` value, on shapes images
rendered at that size (detection.data.shapes), so the transform does not
resize. Weights: ``--checkpoint`` (default output/demo/model_final.pth) where
it exists, else seeded random weights; those score every class 0.02-0.04, under
the 0.05 threshold, so their score threshold is set to 0 and each image keeps
its 100 best detections: box and mask heads, NMS and mask pasting all run on
distinct scores. The run says which weights it used.

Each variant runs the same images (``--batch`` per forward pass) under
``torch.no_grad()``; variants are interleaved round by round (the order
rotates) and reported as median images/s with the range, and as the ratio to
fp32 in the same run. Differences against fp32 on the same inputs (each
variant's first pass): every fp32 detection is matched to the variant's
same-label detection of highest IoU; reported are the largest box coordinate
difference (px) and score difference over the matches, and the detections
without a match at IoU >= 0.5. A variant is "equal" when every detection
matches with boxes within 0.01 px and scores within 1e-4 (batching shows
1e-4 px and 5e-7: tests/test_inference_batching.py).

A variant whose first pass takes over ``--slow-s`` seconds (bf16 where oneDNN
has no bf16 kernels for the CPU, as on AVX2-only CPUs) is timed on that pass
alone, shown as "1 pass"; one under ``--skip-below`` x fp32 at a size is not
run at the larger sizes (plain bf16 on such a CPU: 0.05x fp32 at 192 px, and
0.01x at 512 px, where its one pass alone took 200 s).

    python bench/inference_speed.py [--sizes 192 512] [--images 2] [--batch 2] [--rounds 5] [--slow-s 5]
                                    [--skip-below 0.1] [--score-threshold T] [--checkpoint CKPT]
                                    [--variants fp32 bf16 channels_last bf16+channels_last] [--threads N]

Last, the mask encoding of the evaluation path: all of an image's masks in one
pycocotools call (detection.engine.inference.numpy_prediction) against the call
per object it replaced, 100 masks at each size, same RLEs asserted.

About 2.5 minutes with the defaults on 2 CPU cores.
"""
import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_util
from torchvision.ops import box_iou

from detection.config import load_config
from detection.data import shapes
from detection.detector import build_detector
from detection.engine.checkpoint import load_detector
from detection.engine.inference import numpy_prediction

VARIANTS = ("fp32", "bf16", "channels_last", "bf16+channels_last")
BOX_TOLERANCE, SCORE_TOLERANCE = 0.01, 1e-4


def build_model(checkpoint, size, score_threshold=None):
    if Path(checkpoint).is_file():
        model, _ = load_detector(checkpoint)
        source = f"weights of {checkpoint}"
    else:
        torch.manual_seed(0)
        # frozen BatchNorm as the demo's fine-tuned model has (an unset `pretrained` would mean GroupNorm)
        model = build_detector(load_config("configs/shapes_demo.yaml").model, norm="frozen_bn", freeze_at=2)
        score_threshold = 0.0 if score_threshold is None else score_threshold  # see the module docstring
        source = f"seeded random weights ({checkpoint} not found)"
    if score_threshold is not None:
        model.roi_heads.score_thresh = score_threshold
    source += f", score threshold {model.roi_heads.score_thresh:g}"
    model.transform.min_size, model.transform.max_size = (size,), size
    return model.eval(), source


def images_at(size, count):
    config = shapes.ShapesConfig(seed=0, num_train=0, num_val=count, image_size=(size, size))
    return [torch.from_numpy(shapes.render_sample(config, "val", i).image[:, :, ::-1].copy()).permute(2, 0, 1)
            .float().div(255) for i in range(count)]


def variant_model(model, name):
    if "channels_last" in name:
        return copy.deepcopy(model).to(memory_format=torch.channels_last)
    return model


@torch.no_grad()
def run(model, name, images, batch):
    outputs = []
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in name):
        for start in range(0, len(images), batch):
            outputs += model(images[start:start + batch])
    return [{k: v.float() if v.is_floating_point() else v for k, v in out.items()} for out in outputs]


def differences(reference, outputs):
    """(max |box difference| px, max |score difference|, unmatched detections) over matched detections."""
    box, score, unmatched = 0.0, 0.0, 0
    for ref, out in zip(reference, outputs):
        unmatched += abs(len(ref["boxes"]) - len(out["boxes"]))
        if len(ref["boxes"]) == 0 or len(out["boxes"]) == 0:
            continue
        iou = box_iou(ref["boxes"], out["boxes"])
        iou[ref["labels"][:, None] != out["labels"][None, :]] = -1
        best, index = iou.max(dim=1)
        matched = best >= 0.5
        unmatched += int((~matched).sum())
        if matched.any():
            box = max(box, float((ref["boxes"][matched] - out["boxes"][index[matched]]).abs().max()))
            score = max(score, float((ref["scores"][matched] - out["scores"][index[matched]]).abs().max()))
    return box, score, unmatched


def measure(size, args, skip=()):
    """Print the table for one size; return the variants slower than ``--skip-below`` x fp32 there."""
    model, source = build_model(args.checkpoint, size, args.score_threshold)
    images = images_at(size, args.images)
    variants = [name for name in args.variants if name not in skip]
    models = {name: variant_model(model, name) for name in variants}
    outputs, times = {}, {name: [] for name in variants}
    for name in variants:  # a first pass each: warm-up, and the outputs compared with fp32's
        start = time.perf_counter()
        outputs[name] = run(models[name], name, images, args.batch)
        if time.perf_counter() - start > args.slow_s:  # tens of times slower: that pass is its measurement
            times[name].append(time.perf_counter() - start)
    timed = [name for name in variants if not times[name]]
    for r in range(args.rounds):
        for name in timed[r % len(timed):] + timed[:r % len(timed)]:  # interleaved, the order rotating
            start = time.perf_counter()
            run(models[name], name, images, args.batch)
            times[name].append(time.perf_counter() - start)
    detections = sum(len(o["boxes"]) for o in outputs["fp32"])
    print(f"\n{size} x {size} px, {args.images} images, batch {args.batch}, {args.rounds} rounds; {source}; "
          f"fp32 gives {detections} detections")
    print(f"  {'variant':<20}{'images/s':>9}{'range':>14}{'x fp32':>8}{'box diff px':>13}{'score diff':>12}"
          f"{'unmatched':>11}  equal")
    base = statistics.median(times["fp32"])
    slow = set(skip)
    for name in variants:
        rates = [args.images / t for t in times[name]]
        box, score, unmatched = differences(outputs["fp32"], outputs[name])
        equal = unmatched == 0 and box <= BOX_TOLERANCE and score <= SCORE_TOLERANCE
        spread = f"{min(rates):7.2f}-{max(rates):<6.2f}" if len(rates) > 1 else f"{'1 pass':>13} "
        print(f"  {name:<20}{statistics.median(rates):9.2f}{spread}{base / statistics.median(times[name]):8.2f}"
              f"{box:13.4f}{score:12.2e}{unmatched:11d}  {'yes' if equal else 'no'}")
        if base / statistics.median(times[name]) < args.skip_below:
            slow.add(name)
    for name in sorted(set(skip)):
        print(f"  {name:<20}not measured: under {args.skip_below}x fp32 at a smaller size (--skip-below 0 runs it)")
    return slow


def per_object_rles(masks, threshold=0.5):
    """The encoding before: one pycocotools call per object on its (H, W, 1) Fortran slice."""
    rles = []
    for mask in masks[:, 0].numpy() > threshold:
        rle = mask_util.encode(np.asfortranarray(mask[:, :, None], dtype=np.uint8))[0]
        rle["counts"] = rle["counts"].decode("ascii")
        rles.append(rle)
    return rles


def rle_section(sizes, rounds, count=100):
    """The mask encoding of the evaluation path (numpy_prediction: one call per image) against a call per
    object, on ``count`` pasted masks per image (the model's maximum detections), interleaved rounds."""
    print(f"\nmask RLE encoding, {count} masks per image: one pycocotools call (numpy_prediction) vs one per object")
    rng = np.random.default_rng(0)
    for size in sizes:
        masks = torch.zeros(count, 1, size, size)
        for k in range(count):  # soft blobs in random boxes, as paste_masks_in_image leaves them
            x0, y0 = (int(v) for v in rng.integers(0, size - 8, 2))
            w, h = (int(v) for v in rng.integers(8, size // 2, 2))
            masks[k, 0, y0:y0 + h, x0:x0 + w] = torch.from_numpy(rng.random((min(h, size - y0), min(w, size - x0))))
        output = {"boxes": torch.zeros(count, 4), "scores": torch.zeros(count),
                  "labels": torch.ones(count, dtype=torch.int64), "masks": masks}
        times = {"one call": [], "per object": []}
        for r in range(rounds):
            for name in (("one call", "per object") if r % 2 == 0 else ("per object", "one call")):
                start = time.perf_counter()
                rles = numpy_prediction(output)["rles"] if name == "one call" else per_object_rles(masks)
                times[name].append(time.perf_counter() - start)
        assert numpy_prediction(output)["rles"] == per_object_rles(masks)
        one, loop = (statistics.median(times[k]) * 1000 for k in ("one call", "per object"))
        print(f"  {size} x {size}: one call {one:7.1f} ms ({min(times['one call']) * 1000:.1f}-"
              f"{max(times['one call']) * 1000:.1f}), per object {loop:7.1f} ms ({min(times['per object']) * 1000:.1f}-"
              f"{max(times['per object']) * 1000:.1f}), ratio {loop / one:.2f}x, same RLEs")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[192, 512])
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--slow-s", type=float, default=5.0,
                   help="a variant whose first pass takes longer is timed on that pass alone ('1 pass')")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--checkpoint", default="output/demo/model_final.pth")
    p.add_argument("--score-threshold", type=float,
                   help="RoI heads' score threshold (default: the checkpoint's; 0 for random weights)")
    p.add_argument("--skip-below", type=float, default=0.1,
                   help="a variant under this x fp32 at one size is not run at the larger sizes")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    args = p.parse_args()
    if "fp32" not in args.variants:
        args.variants.insert(0, "fp32")  # the reference every other variant is compared with
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, oneDNN bf16 kernels: "
          f"{torch.ops.mkldnn._is_mkldnn_bf16_supported()} (without them bf16 convolutions take ATen's slow path)")
    skip = set()
    for size in sorted(args.sizes):
        skip = measure(size, args, skip)
    rle_section(sorted(args.sizes), args.rounds)


if __name__ == "__main__":
    main()
