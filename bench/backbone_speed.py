#!/usr/bin/env python
"""Forward speed of registry backbones against torchvision's own models, in one run.

Both sides hold the same weights and run the same ops, so the ratio
(torchvision time / ours) should be ~1.0: anything lower is overhead of our
stage bookkeeping. Timings interleave the two sides to share machine noise.

    python bench/backbone_speed.py [--size 224] [--batch 2] [--repeats 10] [--device cpu]
"""
import argparse
import statistics
import time

import torch
import torchvision

import backbones


def _time(fn, x, repeats):
    samples = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--names", nargs="+", default=["resnet18", "resnet50", "resnet101"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(f"device={args.device} threads={torch.get_num_threads()} input={args.batch}x3x{args.size}x{args.size}")
    print(f"{'backbone':<10} {'torchvision ms':>15} {'ours ms':>9} {'ratio':>7}")
    for name in args.names:
        reference = getattr(torchvision.models, name)().eval().to(args.device)
        ours = backbones.build(name).eval().to(args.device)
        ours.load_state_dict(reference.state_dict())
        x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
        ours.classify(x), reference(x)  # warm up
        theirs, mine = [], []
        for _ in range(3):  # interleave rounds
            theirs.append(_time(reference, x, args.repeats))
            mine.append(_time(ours.classify, x, args.repeats))
        t, o = min(theirs), min(mine)
        print(f"{name:<10} {1000 * t:15.1f} {1000 * o:9.1f} {t / o:7.2f}")


if __name__ == "__main__":
    main()
