"""Cost of a whole detector: parameters, GFLOPs, peak memory and latency per image, PyTorch and ONNX.

    python tools/analyze_model.py output/demo/model_final.pth
    python tools/analyze_model.py --config configs/coco/faster_rcnn_R50_FPN_1x.yaml --backbone resnet101
    python tools/analyze_model.py --config configs/shapes_demo.yaml --input-size 192x256 --json cost.json

A checkpoint is measured with its weights; a --config builds the model a
training run of it would (frozen BatchNorm and stages when fine-tuning) with
random weights, each residual branch's last norm zeroed so that deep random
networks stay finite (the cost does not depend on the values). The score
threshold is 0 while measuring: every image gives the most detections
(box_detections_per_img), and the mask head runs on all of them. The image is a smooth random one of --input-size (default: the
configured test size, min_size x max_size, e.g. 800x1333), resized by the
model as any input is. What each number counts (FLOPs are 2 x multiply-adds,
from torch.utils.flop_counter; peak memory from the resident set of a fresh
process on the CPU, max_memory_allocated on CUDA; latency the median of
--runs after --warmup): see detection/model_cost.py. On CUDA, PyTorch is
also timed in fp16 (autocast), and onnxruntime on its CUDA provider when it
has one.
"""
import argparse
import re
import tempfile
from pathlib import Path

import torch

from backbones.atomic_files import write_text
from backbones.errors import UserError
from backbones.ranges import at_least, check_flag
from detection.cli import command
from detection.engine.checkpoint import load_detector
from detection.model_cost import analyse_model, format_report


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="a detector checkpoint (model_final.pth of a training run)")
    p.add_argument("--config", help="a training config (YAML) instead of a checkpoint: its model, random weights")
    p.add_argument("--backbone", help="with --config: a registry backbone instead of the config's (e.g. resnet101)")
    p.add_argument("--neck", help="with --config: fpn or c4 instead of the config's")
    p.add_argument("--mask", action="store_true", help="with --config: Mask R-CNN")
    p.add_argument("--num-classes", type=int, help="with --config: object classes (default: the config's, else 80)")
    p.add_argument("--input-size", help="HxW of the image, e.g. 800x1333 (default: min_size x max_size)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--runs", type=int, default=5, help="timed runs per runtime; the median is reported (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before them (default 1)")
    p.add_argument("--no-export", action="store_true", help="leave out the exported ONNX model")
    p.add_argument("--no-memory", action="store_true", help="leave out the peak memory")
    p.add_argument("--json", help="also write the report to this JSON file")
    args = p.parse_args(argv)
    check_flag("--runs", args.runs, at_least(1))
    check_flag("--warmup", args.warmup, at_least(0))
    return args


def parse_size(text):
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not match or min(int(match[1]), int(match[2])) < 32:
        raise UserError(f"--input-size {text!r} is not HxW in pixels, each at least 32, e.g. 800x1333")
    return int(match[1]), int(match[2])


def model_from_config(args):
    """The model a training run of the config builds (its defaults decided as the run decides them: frozen
    BatchNorm and stem + res2 frozen when fine-tuning ImageNet weights), with random weights."""
    from detection.detector import build_detector
    from detection.run.resolve import resolve_config
    flags = {"backbone": args.backbone, "neck": args.neck, "mask": True if args.mask else None,
             "num_classes": args.num_classes}
    cfg = resolve_config(args.config, flags={"model": flags}, log=None)
    torch.manual_seed(0)
    model = build_detector(cfg.model, load_pretrained=False).eval()
    # Random weights under frozen BatchNorm at identity statistics: every residual block adds its branch's
    # variance, and in ResNet-101 the features overflow, the RPN's boxes are not finite and the RoI heads
    # get no proposals. Zeroing each branch's last norm (Goyal et al., 2017: each block starts as the
    # identity) keeps them finite; the cost is the same (dense kernels do not skip zeros).
    with torch.no_grad():
        for block in model.backbone.modules():
            if hasattr(block, "last_norm"):
                getattr(block, block.last_norm).weight.zero_()
    return model


@command
def main(argv=None):
    args = parse_args(argv)
    if bool(args.checkpoint) == bool(args.config):
        raise UserError("give a checkpoint or --config YAML (one of them), e.g. tools/analyze_model.py "
                        "--config configs/coco/faster_rcnn_R50_FPN_1x.yaml")
    if args.checkpoint and (args.backbone or args.neck or args.mask or args.num_classes):
        raise UserError("--backbone, --neck, --mask and --num-classes go with --config; a checkpoint's model is "
                        "the one it holds")
    size = parse_size(args.input_size) if args.input_size else None
    if args.json:
        folder = Path(args.json).parent
        if not folder.is_dir():
            raise UserError(f"cannot write {args.json}: its folder {folder} does not exist; create it first")
    with tempfile.TemporaryDirectory() as tmp:
        model = load_detector(args.checkpoint)[0] if args.checkpoint else model_from_config(args)
        weights = Path(tmp) / "weights.pth"  # for the fresh process that measures memory
        torch.save(model.state_dict(), weights)
        report = analyse_model(model, size, device=args.device, runs=args.runs, warmup=args.warmup,
                               export=not args.no_export, memory=not args.no_memory, state_dict=weights,
                               log=lambda text: print(text, flush=True))
    print(format_report(report))
    if args.json:
        import json
        print(f"wrote {write_text(args.json, json.dumps(report, indent=2) + chr(10))}")


if __name__ == "__main__":
    main()
