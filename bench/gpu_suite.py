#!/usr/bin/env python
"""The GPU suite: R50-FPN Faster and Mask R-CNN, ours against torchvision's reference builder and detectron2
0.6, training and inference, fp32 / AMP fp16 / bf16, with and without channels_last; one JSON file.

Run by ``bench/gpu_suite.sh`` (which sets the defaults: CUDA, 16 images per
iteration of 800x1333-style sizes, a time budget of about 7 minutes). The
three sides do the same work: detectron2's model is built from its model-zoo
config and given seeded random weights (as in bench/peer_speed.py, the
``equal`` setting: ours with detectron2's proposal and RoI numbers, the same
weights through the project's converter); torchvision's
``fasterrcnn_resnet50_fpn`` / ``maskrcnn_resnet50_fpn`` with the same numbers
loads ours' state dict (strict: same modules), with frozen BN and
trainable_backbone_layers=3 as its builder applies with pretrained weights.
Proposal and RoI counts per image are recorded for each side; ours and
detectron2's are equal (``equal_work``). torchvision's are not always: ours
is in its detectron2-compatible mode here (the converter's), whose RPN keeps
detectron2's top-k per level where torchvision's drops small boxes and low
scores first, so torchvision's row is the reference builder as users get it,
with its own counts beside it.

Each configuration (model x precision x memory format) times the three sides
interleaved (alternating order, same seed per round), median and range; a
side that runs out of memory has the configuration retried at half the batch
(the batch used is recorded). Peak GPU memory is measured per side in a
separate step. Configurations left when the time budget is spent are
recorded as skipped, so the file always says what was and was not measured.
Last, the trainer's own overhead (bench/loop_overhead.py: data wait, logging,
checks as a fraction of the training time) in a 30-iteration R50-FPN run.

    bench/gpu_suite.sh [--output FILE]                      # on a GPU
    bench/gpu_suite.sh --device cpu --smoke --output FILE   # the check that it runs (tests/test_gpu_suite.py)
"""
import argparse
import contextlib
import datetime
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_overhead import measure as loop_overhead  # noqa: E402
from peer_speed import WorkCounter, build_pair, synthetic_batch  # noqa: E402
from train_speed import frozen_bn, interleaved  # noqa: E402

from detection.engine.precision import Precision  # noqa: E402

MODELS = {"faster": "fpn_faster", "mask": "fpn_mask"}   # -> bench/peer_speed.py rows
SIDES = ("ours", "torchvision", "detectron2")
PRECISIONS = ("fp32", "fp16", "bf16")
SHAPES = [(800, 1333), (800, 1216), (800, 1088), (768, 1333)]  # (height, width): COCO's 800x1333-style sizes
SMOKE_SHAPES = [(128, 192), (128, 160)]
TARGET_IMAGES_PER_S = 40.0   # R50-FPN Faster R-CNN training with AMP fp16 on an H100/H200-class GPU
TARGET_RATIO = 1.0           # ours / detectron2, every row


def build_sides(model, shapes, device, smoke=False):
    """({side: model}, {side: WorkCounter}) with the same weights, all in train mode. ``smoke``: 64 RoIs per
    training image and 100 proposals per test image on every side (the zoo's 512 and 1000), to check quickly."""
    d2, ours, _ = build_pair(MODELS[model], "equal", min(h for h, _ in shapes), device,
                             roi_batch=64 if smoke else None, post_nms_test=100 if smoke else None,
                             max_size=max(max(s) for s in shapes))
    from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn
    builder = maskrcnn_resnet50_fpn if model == "mask" else fasterrcnn_resnet50_fpn
    settings = {k: getattr(ours.rpn, f"_{k}") for k in ("pre_nms_top_n", "post_nms_top_n")}
    heads = ours.roi_heads
    tv = builder(weights=None, weights_backbone=None, num_classes=heads.box_predictor.cls_score.out_features,
                 min_size=ours.transform.min_size, max_size=ours.transform.max_size,
                 rpn_pre_nms_top_n_train=settings["pre_nms_top_n"]["training"],
                 rpn_pre_nms_top_n_test=settings["pre_nms_top_n"]["testing"],
                 rpn_post_nms_top_n_train=settings["post_nms_top_n"]["training"],
                 rpn_post_nms_top_n_test=settings["post_nms_top_n"]["testing"],
                 rpn_batch_size_per_image=ours.rpn.fg_bg_sampler.batch_size_per_image,
                 box_batch_size_per_image=heads.fg_bg_sampler.batch_size_per_image,
                 box_score_thresh=heads.score_thresh, box_nms_thresh=heads.nms_thresh,
                 box_detections_per_img=heads.detections_per_img)
    frozen_bn(tv.backbone.body)
    for name, p in tv.backbone.body.named_parameters():  # trainable_backbone_layers=3
        if not name.startswith(("layer2", "layer3", "layer4")):
            p.requires_grad_(False)
    tv.load_state_dict(ours.state_dict())  # strict: the same modules
    sides = {"ours": ours, "torchvision": tv.to(device).train(), "detectron2": d2}
    counters = {side: WorkCounter() for side in sides}
    for side, m in sides.items():  # forward hooks counting proposals and RoIs per image
        (counters[side].attach_detectron2 if side == "detectron2" else counters[side].attach_ours)(m)
    return sides, counters


def inputs_for(side, batch):
    ours_in, ours_targets, d2_train, d2_test = batch
    if side == "detectron2":
        return (d2_train,), (d2_test,)
    return (ours_in, ours_targets), (ours_in,)


def make_steps(sides, batch, precision, device, counters, storage, mode):
    steps = {}
    for side, model in sides.items():
        train_in, test_in = inputs_for(side, batch)
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
        amp = Precision(precision if precision != "fp32" else None, device)
        params = [p for p in model.parameters() if p.requires_grad]
        counter = counters[side]

        def train_step(model=model, train_in=train_in, optimizer=optimizer, amp=amp, params=params, counter=counter,
                       side=side):
            counter.start()
            with amp.autocast(), (storage if side == "detectron2" else contextlib.nullcontext()):
                losses = model(*train_in)
            optimizer.zero_grad(set_to_none=True)
            amp.step(sum(v.float() for v in losses.values()), optimizer, params)

        @torch.no_grad()
        def infer_step(model=model, test_in=test_in, amp=amp, counter=counter):
            counter.start()
            with amp.autocast():
                model(*test_in)
        steps[side] = train_step if mode == "train" else infer_step
    return steps


def peak_memory(step, device):
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def run_config(sides, counters, model, mode, precision, channels_last, batch_size, args, device):
    """One configuration, all sides; returns a result row (raises torch.OutOfMemoryError upwards)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for m in sides.values():
        m.to(memory_format=fmt)
        m.train(mode == "train")
    shapes = SMOKE_SHAPES if args.smoke else SHAPES
    batch = synthetic_batch(batch_size, shapes[0][0], device, shapes=shapes)
    for c in counters.values():
        c.records.clear()
    from detectron2.utils.events import EventStorage
    storage = EventStorage()
    steps = make_steps(sides, batch, precision, device, counters, storage, mode)
    samples, _ = interleaved(steps, device, args.warmup, args.iters)
    counts = {side: c.summary(c.records[-1]) for side, c in counters.items()}
    memory = {side: peak_memory(step, device) for side, step in steps.items()}
    row = dict(model=model, mode=mode, precision=precision, channels_last=channels_last, batch=batch_size,
               sides={})
    for side, seconds in samples.items():
        median = statistics.median(seconds)
        row["sides"][side] = dict(images_per_s=round(batch_size / median, 3),
                                  ms_per_image=round(1000 * median / batch_size, 2),
                                  seconds_per_iter=[round(min(seconds), 4), round(median, 4), round(max(seconds), 4)],
                                  peak_memory_gib=memory[side], counts=counts[side])
    ours, d2 = row["sides"]["ours"], row["sides"]["detectron2"]
    row["ratio_vs_detectron2"] = round(ours["images_per_s"] / d2["images_per_s"], 3)
    row["ratio_vs_torchvision"] = round(ours["images_per_s"] / row["sides"]["torchvision"]["images_per_s"], 3)
    row["equal_work"] = counts["ours"] == counts["detectron2"]  # ours vs detectron2; torchvision: see docstring
    return row


def configurations(args):
    for model in args.models:
        for mode in ("train", "infer"):
            for precision in args.precisions:
                for channels_last in ((False, True) if mode == "train" else (False,)):
                    yield model, mode, precision, channels_last


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--batch", type=int, default=16, help="images per iteration (halved on out-of-memory)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=420, help="start no configuration after this many seconds")
    p.add_argument("--smoke", action="store_true", help="tiny images, batch 2, one timed iteration: checks it runs")
    p.add_argument("--output", default="output/gpu_suite.json")
    args = p.parse_args(argv)
    if args.smoke:  # fp32 only unless asked: bf16 without native support (most CPUs) is ~10x slower
        args.batch, args.warmup, args.iters = 2, 0, 1
        if "--precisions" not in (argv if argv is not None else sys.argv):
            args.precisions = ["fp32"]
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a machine with a GPU, or check it runs with --device cpu --smoke")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import detectron2
    started = time.perf_counter()
    result = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                  torch=torch.__version__, detectron2=detectron2.__version__, smoke=args.smoke,
                  shapes=SMOKE_SHAPES if args.smoke else SHAPES, warmup=args.warmup, iters=args.iters,
                  targets=dict(faster_fp16_train_images_per_s=TARGET_IMAGES_PER_S, ratio_vs_detectron2=TARGET_RATIO),
                  rows=[], skipped=[])
    built = {}
    for model, mode, precision, channels_last in configurations(args):
        name = f"{model} {mode} {precision}{' channels_last' if channels_last else ''}"
        if precision == "fp16" and device.type != "cuda":
            result["skipped"].append(dict(config=name, why="fp16 autocast needs CUDA"))
            continue
        if time.perf_counter() - started > args.budget_s:
            result["skipped"].append(dict(config=name, why=f"time budget of {args.budget_s:.0f} s spent"))
            continue
        if model not in built:
            built.clear()  # one model's three sides in memory at a time
            torch.manual_seed(0)
            built[model] = build_sides(model, SMOKE_SHAPES if args.smoke else SHAPES, device, args.smoke)
        batch = args.batch
        while True:
            try:
                row = run_config(*built[model], model, mode, precision, channels_last, batch, args, device)
                break
            except torch.OutOfMemoryError:
                if batch == 1:
                    raise
                batch //= 2
                torch.cuda.empty_cache()
        result["rows"].append(row)
        sides = row["sides"]
        print(f"{name:<30} batch {batch:>2}  img/s ours {sides['ours']['images_per_s']:8.2f}  "
              f"torchvision {sides['torchvision']['images_per_s']:8.2f}  "
              f"detectron2 {sides['detectron2']['images_per_s']:8.2f}  ours/d2 {row['ratio_vs_detectron2']:.3f}  "
              f"equal work {row['equal_work']}", flush=True)
    built.clear()
    # the trainer's own overhead (data wait, logging, checks) on these sizes: R50-FPN Faster R-CNN, AMP on a GPU
    amp = "fp16" if device.type == "cuda" else "none"
    result["loop_overhead"] = dict(backbone="resnet18" if args.smoke else "resnet50", amp=amp, **loop_overhead(
        "resnet18" if args.smoke else "resnet50", size=128 if args.smoke else 800, batch=args.batch,
        iters=3 if args.smoke else 30, workers=0 if args.smoke else 8, log_period=20, device=str(device), amp=amp))
    print(f"training loop overhead: {100 * result['loop_overhead']['overhead']:.2f}% of the training time "
          f"(target < 3%)")
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{len(result['rows'])} configurations measured, {len(result['skipped'])} skipped, "
          f"{result['seconds']} s -> {out}")
    return result


if __name__ == "__main__":
    main()
