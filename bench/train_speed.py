#!/usr/bin/env python
"""Faster R-CNN training and inference speed: ours against torchvision's fasterrcnn_resnet50_fpn, in one run.

Both resnet50-FPN detectors are the same torchvision components (FasterRCNN,
FPN, RPN, MultiScaleRoIAlign, TwoMLPHead) in the fine-tuning configuration:
FrozenBatchNorm2d everywhere, stem + res2 frozen (our ``norm="frozen_bn",
freeze_at=2``; torchvision's ``trainable_backbone_layers=3``, which its builder
only applies with pretrained weights, so it is applied here after building).
torchvision's weights are loaded into ours, so both see the same numbers and
do the same work; 91 box classes on both sides (torchvision's num_classes
counts the background, ours does not). Inputs are square ``--size`` images with
min_size = max_size = size, so the model's transform keeps their shape.

Measurements interleave the models iteration by iteration (alternating which
goes first, same RNG seed per round so RPN/RoI sampling matches) and report
the median; resnet18-FPN (ours) is listed for reference. Training step:
forward with targets, summed losses, backward, SGD step (equal first-step
losses confirm both resnet50 sides compute the same thing). Inference: eval()
under torch.no_grad(); with random weights no box passes the 0.05 score
threshold, so it times backbone, RPN and box head, not per-class NMS.
``--amp`` (CUDA): fp16 autocast, with a GradScaler in training. Defaults take
about 1.5-2 minutes on 2 CPU cores; on a shared machine expect +-5% noise.

    python bench/train_speed.py [--size 512] [--batch 2] [--iters 5] [--warmup 1] [--device cpu|cuda] [--amp]
                                [--models ours_r18 ours_r50 torchvision_r50] [--lr 1e-4]
"""
import argparse
import os
import statistics
import time

import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from torchvision.ops.misc import FrozenBatchNorm2d

from detection.detector import DetectorConfig, build_detector

MODELS = {"ours_r18": "ours resnet18-FPN", "ours_r50": "ours resnet50-FPN",
          "torchvision_r50": "torchvision resnet50-FPN"}
OUR_BACKBONES = {"ours_r18": "resnet18", "ours_r50": "resnet50"}
CLASSES = 91  # torchvision's COCO head, background included
BOXES_PER_IMAGE = 4


def build_ours(backbone, size):
    cfg = DetectorConfig(backbone=backbone, neck="fpn", mask=False, num_classes=CLASSES - 1, pretrained="none",
                         norm="frozen_bn", freeze_at=2, min_size=size, max_size=size)
    return build_detector(cfg)


def frozen_bn(module):
    """Swap every BatchNorm2d for torchvision's FrozenBatchNorm2d (what its builder does with weights)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            frozen_bn(child)
    return module


def build_torchvision(size):
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=CLASSES,
                                    min_size=size, max_size=size)
    # the builder's pretrained path: frozen BN, trainable_backbone_layers=3 (layer2..layer4 train)
    frozen_bn(model.backbone.body)
    for name, p in model.backbone.body.named_parameters():
        if not name.startswith(("layer2", "layer3", "layer4")):
            p.requires_grad_(False)
    return model


def build_models(names, size):
    models = {}
    for name in names:
        models[name] = build_torchvision(size) if name == "torchvision_r50" else build_ours(OUR_BACKBONES[name], size)
    if "ours_r50" in models and "torchvision_r50" in models:
        ours, theirs = models["ours_r50"], models["torchvision_r50"]
        ours.load_state_dict(theirs.state_dict())  # strict: same parameter names, shapes and buffers
        trainable = [{n for n, p in m.named_parameters() if p.requires_grad} for m in (ours, theirs)]
        assert trainable[0] == trainable[1], trainable[0] ^ trainable[1]
    return models


def synthetic_batch(batch, size, device, seed=0):
    """Random images and a few random boxes per image, the same for every model."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.rand(3, size, size, generator=g).to(device))
        xy = torch.rand(BOXES_PER_IMAGE, 2, generator=g) * size * 0.7
        wh = size * (0.05 + 0.25 * torch.rand(BOXES_PER_IMAGE, 2, generator=g))
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)
        labels = torch.randint(1, CLASSES, (BOXES_PER_IMAGE,), generator=g)
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device)})
    return images, targets


def train_step(model, optimizer, scaler, images, targets, amp):
    with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
        losses = model(images, targets)
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


@torch.no_grad()
def infer_step(model, images, amp):
    with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
        return model(images)


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def interleaved(steps, device, warmup, iters):
    """Seconds per step for each name: rounds alternate the order; same RNG seed per round for all."""
    samples, outputs = {name: [] for name in steps}, {name: [] for name in steps}
    names = list(steps)
    for i in range(warmup + iters):
        for name in (names if i % 2 == 0 else names[::-1]):
            torch.manual_seed(i)  # same RPN/RoI sampling for every model
            seconds, out = timed(steps[name], device)
            outputs[name].append(out)
            if i >= warmup:
                samples[name].append(seconds)
    return samples, outputs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--amp", action="store_true", help="fp16 autocast (+ GradScaler in training); CUDA only")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args()
    if args.amp and args.device != "cuda":
        p.error("--amp needs --device cuda")
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = {n: m.to(device) for n, m in build_models(args.models, args.size).items()}
    images, targets = synthetic_batch(args.batch, args.size, device)
    print(f"device={args.device} threads={torch.get_num_threads()} amp={args.amp} "
          f"input={args.batch}x3x{args.size}x{args.size} ({BOXES_PER_IMAGE} boxes/image) "
          f"classes={CLASSES} warmup={args.warmup} iters={args.iters} torch={torch.__version__}")

    steps = {}
    for name, model in models.items():
        model.train()
        optimizer = torch.optim.SGD([q for q in model.parameters() if q.requires_grad], lr=args.lr, momentum=0.9)
        scaler = torch.amp.GradScaler("cuda", enabled=args.amp)
        steps[name] = (lambda m=model, o=optimizer, s=scaler: train_step(m, o, s, images, targets, args.amp))
    train, losses = interleaved(steps, device, args.warmup, args.iters)
    for model in models.values():
        model.eval()
    steps = {name: (lambda m=model: infer_step(m, images, args.amp)) for name, model in models.items()}
    infer, _ = interleaved(steps, device, args.warmup, args.iters)

    if "ours_r50" in models and "torchvision_r50" in models:
        first = [losses[n][0].item() for n in ("ours_r50", "torchvision_r50")]
        print(f"same weights and inputs, first-step loss ours {first[0]:.6f} / torchvision {first[1]:.6f}")
    speed = {n: (args.batch / statistics.median(train[n]), args.batch / statistics.median(infer[n])) for n in models}
    print(f"{'model':<26} {'train img/s':>12} {'(range)':>15} {'infer img/s':>12} {'(range)':>15}")
    for name in models:
        tr = [args.batch / s for s in train[name]]
        inf = [args.batch / s for s in infer[name]]
        print(f"{MODELS[name]:<26} {speed[name][0]:12.2f} {f'{min(tr):.2f}-{max(tr):.2f}':>15} "
              f"{speed[name][1]:12.2f} {f'{min(inf):.2f}-{max(inf):.2f}':>15}")
    if "ours_r50" in speed and "torchvision_r50" in speed:
        (ot, oi), (tt, ti) = speed["ours_r50"], speed["torchvision_r50"]
        best = [min(runs["torchvision_r50"]) / min(runs["ours_r50"]) for runs in (train, infer)]
        print(f"ratio ours/torchvision, resnet50-FPN: train {ot / tt:.3f}  inference {oi / ti:.3f}  (target >= 1.0; "
              f"best iterations: train {best[0]:.3f}  inference {best[1]:.3f})")
    if "ours_r18" in speed and "torchvision_r50" in speed:
        (rt, ri), (tt, ti) = speed["ours_r18"], speed["torchvision_r50"]
        print(f"(different models, for reference) ours resnet18-FPN / torchvision resnet50-FPN: "
              f"train {rt / tt:.2f}  inference {ri / ti:.2f}")


if __name__ == "__main__":
    main()
