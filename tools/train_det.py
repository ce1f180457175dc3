#!/usr/bin/env python
"""Train a Faster R-CNN / Mask R-CNN on a registry backbone.

    python tools/train_det.py --backbone resnet101 --dataset coco
    python tools/train_det.py --config configs/shapes_demo.yaml --output output/demo

Settings come from the defaults, then ``--config``, then these flags.
"""
import argparse
import json
from pathlib import Path

import torch

from backbones.errors import UserError
from detection.cli import run
from detection.config import load_config, parse_overrides
from detection.data.catalog import PAIRS, load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.transforms import train_augmentation
from detection.detector import build_detector
from detection.engine.trainer import train


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with model/solver/data sections")
    p.add_argument("--backbone", help="registry backbone, e.g. resnet50 (see backbones.names())")
    p.add_argument("--dataset", help="training dataset name, e.g. coco or shapes")
    p.add_argument("--neck", help="fpn or c4 (the paper's design)")
    p.add_argument("--mask", action="store_true", default=None, help="train Mask R-CNN")
    p.add_argument("--pretrained", help="backbone weights: torchvision, none, or a file "
                   "(default: torchvision; none for the shapes dataset)")
    p.add_argument("--max-iter", type=int, help="number of training iterations")
    p.add_argument("--output", default="output/train", help="folder for checkpoints and metrics")
    p.add_argument("--overwrite", action="store_true", help="reuse an output folder that holds another run")
    p.add_argument("--num-workers", type=int, help="data loading processes")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides applied last, e.g. solver.base_lr=0.01 model.min_size=[640,800]")
    return p.parse_args(argv)


def resolve_config(args):
    model = {k: v for k, v in (("backbone", args.backbone), ("neck", args.neck), ("mask", args.mask),
                               ("pretrained", args.pretrained)) if v is not None}
    data = {k: v for k, v in (("train", args.dataset), ("num_workers", args.num_workers)) if v is not None}
    solver = {"max_iter": args.max_iter} if args.max_iter is not None else {}
    flags = {"model": model, "data": data, "solver": solver}
    for section, values in parse_overrides(args.overrides).items():
        flags[section] = {**flags.get(section, {}), **values}
    cfg = load_config(args.config, flags)
    if cfg.model.pretrained is None:  # ImageNet weights by default, except on the synthetic data
        cfg.model.pretrained = "none" if cfg.data.train in PAIRS["shapes"] + ("shapes",) else "torchvision"
    return cfg


# what a run and its evaluations write; --overwrite removes these and nothing else
RUN_FILES = ("config.json", "metrics.jsonl", "model_*.pth", "model_*.pth.tmp", "model_*.*.json", "model_*.*.png")


def remove_previous_run(output):
    for pattern in RUN_FILES:
        for path in output.glob(pattern):
            path.unlink()


def report_problems(data):
    p = data.problems
    if p.clipped_boxes or p.dropped_boxes or p.images_without_objects:
        print(f"{data.name}: clipped {p.clipped_boxes} boxes to their image, dropped {p.dropped_boxes} empty "
              f"boxes, {p.images_without_objects} images without objects (see tools/check_dataset.py)")


def main():
    args = parse_args()
    cfg = resolve_config(args)
    cfg.model.validate()
    output = Path(args.output)
    if (output / "config.json").exists() and not args.overwrite:
        raise UserError(f"{output} already holds a run; pass --overwrite or another --output")
    data = load_dataset(cfg.data.train, "train")
    report_problems(data)
    if cfg.data.filter_empty_images:
        data.records = [r for r in data.records if (~r.ignore).any()]
    augment = train_augmentation(cfg.model.min_size, cfg.model.max_size, cfg.data.hflip_prob, cfg.data.color_jitter,
                                 seed=cfg.solver.seed)
    dataset = DetectionDataset(data, augment=augment, with_masks=cfg.model.mask,
                               skip_unreadable=cfg.data.skip_unreadable_images)
    cfg.model.num_classes = len(dataset.class_names)
    torch.manual_seed(cfg.solver.seed)  # the initial weights too
    model = build_detector(cfg.model)
    cfg.model = model.config  # defaults resolved (norm, freeze_at, normalisation)
    model.transform._skip_resize = True  # training images are resized by the data pipeline
    output.mkdir(parents=True, exist_ok=True)
    if args.overwrite:
        remove_previous_run(output)
    (output / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    print(f"training {cfg.model.backbone}-{cfg.model.neck} {'Mask' if cfg.model.mask else 'Faster'} R-CNN "
          f"on {data.name} ({len(dataset)} images, {len(dataset.class_names)} classes), "
          f"pretrained={cfg.model.pretrained}, norm={cfg.model.norm}, {cfg.solver.max_iter} iterations -> {output}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    path = train(model, dataset, cfg.solver, output, num_workers=cfg.data.num_workers,
                 train_config=cfg.to_dict(), device=device)
    print(f"wrote {path}")


if __name__ == "__main__":
    run(main)
