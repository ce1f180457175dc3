#!/usr/bin/env python
"""Train a Faster R-CNN / Mask R-CNN on a registry backbone.

    python tools/train_det.py --backbone resnet101 --dataset coco solver.schedule=1x
    python tools/train_det.py --config configs/shapes_demo.yaml --output output/demo
    torchrun --nproc_per_node 8 tools/train_det.py --config ... --output ...   # data-parallel
    python tools/train_det.py --output output/demo --resume                    # continue a run

Settings come from the defaults, then ``--config`` (or, with --resume, the
run's saved config.yaml), then these flags, then ``section.key=value``
overrides. Ctrl-C saves a checkpoint and prints the command that resumes.
"""
import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

import torch

from backbones.errors import UserError
from detection.cli import run
from detection.config import load_config, parse_overrides
from detection.data.catalog import PAIRS, evaluation_split, load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.transforms import train_augmentation
from detection.detector import build_detector
from detection.engine import distributed
from detection.engine.checkpointer import Checkpointer
from detection.engine.device import resolve_device
from detection.engine.run_folder import (CONFIG_FILE, check_output_folder, config_differences, remove_previous_run,
                                         write_config)
from detection.engine.solver import scale_to_batch
from detection.engine.trainer import train


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with model/solver/data/runtime sections")
    p.add_argument("--backbone", help="registry backbone, e.g. resnet50 (see backbones.names())")
    p.add_argument("--dataset", help="training dataset name, e.g. coco or shapes")
    p.add_argument("--neck", help="fpn or c4 (the paper's design)")
    p.add_argument("--mask", action="store_true", default=None, help="train Mask R-CNN")
    p.add_argument("--pretrained", help="backbone weights: a source of the backbone (torchvision, torchvision_v2, "
                   "msra, timm_a1_in1k, detectron2_...), none, a file (.pth/.pkl/.safetensors, layout "
                   "recognised), or SOURCE:FILE for a local copy of a source (default: torchvision; "
                   "none for the shapes dataset)")
    p.add_argument("--max-iter", type=int, help="number of training iterations")
    p.add_argument("--output", default="output/train", help="folder for checkpoints and metrics")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again in an output folder that holds a run")
    p.add_argument("--num-workers", type=int, help="data loading processes")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides applied last, e.g. solver.base_lr=0.01 model.min_size=[640,800]")
    return p.parse_args(argv)


def resolve_config(args, saved=None):
    """The run's settings; ``saved``: the config.yaml of the run being resumed."""
    model = {k: v for k, v in (("backbone", args.backbone), ("neck", args.neck), ("mask", args.mask),
                               ("pretrained", args.pretrained)) if v is not None}
    data = {k: v for k, v in (("train", args.dataset), ("num_workers", args.num_workers)) if v is not None}
    flags = {"model": model, "data": data, "solver": {"max_iter": args.max_iter} if args.max_iter else {},
             "runtime": {"device": args.device} if args.device else {}}
    for section, values in parse_overrides(args.overrides).items():
        flags[section] = {**flags.get(section, {}), **values}
    cfg = load_config(args.config or saved, flags)
    if saved and args.config:
        differences = config_differences(load_config(saved).to_dict(), cfg.to_dict())
        if differences:
            raise UserError(f"--resume: {args.config} differs from the run's {saved} in "
                            f"{'; '.join(differences)}; resume without --config to use the saved one "
                            f"(key=value overrides for deliberate changes) or pass another --output")
    if cfg.model.pretrained is None:  # ImageNet weights by default, except on the synthetic data
        cfg.model.pretrained = "none" if cfg.data.train in PAIRS["shapes"] + ("shapes",) else "torchvision"
    scaled = scale_to_batch(cfg.solver)
    if scaled is not cfg.solver and distributed.is_main():
        print(f"linear scaling rule: batch {cfg.solver.ims_per_batch} vs reference {cfg.solver.reference_batch_size}"
              f" -> base_lr {scaled.base_lr:g}, max_iter {scaled.max_iter}, steps {list(scaled.steps)}")
    cfg.solver = scaled
    return cfg


def report_problems(data):
    p = data.problems
    if p.clipped_boxes or p.dropped_boxes or p.images_without_objects:
        print(f"{data.name}: clipped {p.clipped_boxes} boxes to their image, dropped {p.dropped_boxes} empty "
              f"boxes, {p.images_without_objects} images without objects (see tools/check_dataset.py)")


def training_dataset(cfg):
    data = load_dataset(cfg.data.train, "train")
    if distributed.is_main():
        report_problems(data)
    if cfg.data.filter_empty_images:
        data.records = [r for r in data.records if (~r.ignore).any()]
    augment = train_augmentation(cfg.model.min_size, cfg.model.max_size, cfg.data.hflip_prob, cfg.data.color_jitter,
                                 seed=cfg.solver.seed)
    return DetectionDataset(data, augment=augment, with_masks=cfg.model.mask,
                            skip_unreadable=cfg.data.skip_unreadable_images)


def evaluation_dataset(cfg, class_names):
    """The data evaluated every solver.eval_period iterations (None when it is 0)."""
    if not cfg.solver.eval_period:
        return None
    name = cfg.data.test or evaluation_split(cfg.data.train)
    dataset = DetectionDataset(load_dataset(name, "test"))
    if list(dataset.class_names) != list(class_names):
        raise UserError(f"data.test {name} has classes {dataset.class_names}, the training data {class_names}")
    return dataset


def build_model(cfg, resuming):
    torch.manual_seed(cfg.solver.seed)  # the initial weights too
    if not resuming:
        return build_detector(cfg.model)
    # the weights come from the checkpoint: do not fetch the backbone's again
    model = build_detector(dataclasses.replace(cfg.model, pretrained="none"))
    model.config.pretrained = cfg.model.pretrained
    return model


def resume_command() -> str:
    prefix = ["python"]
    if distributed.launched_by_torchrun():
        prefix = ["torchrun", f"--nproc_per_node={distributed.world_size()}"]
    argv = [a for a in sys.argv if a not in ("--resume", "--overwrite")]
    return " ".join(shlex.quote(a) for a in prefix + argv + ["--resume"])


def main():
    args = parse_args()
    output = Path(args.output)
    check_output_folder(output, args.resume, args.overwrite)
    saved = output / CONFIG_FILE if args.resume and (output / CONFIG_FILE).is_file() else None
    cfg = resolve_config(args, saved)
    cfg.model.validate()
    device = distributed.init_from_env(resolve_device(cfg.runtime.device))
    dataset = training_dataset(cfg)
    cfg.model.num_classes = len(dataset.class_names)
    eval_dataset = evaluation_dataset(cfg, dataset.class_names)
    resuming = saved is not None and Checkpointer(output).last() is not None
    model = build_model(cfg, resuming)
    cfg.model = model.config  # defaults resolved (norm, freeze_at, normalisation)
    model.transform._skip_resize = True  # training images are resized by the data pipeline
    if distributed.is_main():
        output.mkdir(parents=True, exist_ok=True)
        if args.overwrite:
            remove_previous_run(output)
        write_config(output, cfg.to_dict())
        world = f" on {distributed.world_size()} processes" if distributed.world_size() > 1 else ""
        print(f"training {cfg.model.backbone}-{cfg.model.neck} {'Mask' if cfg.model.mask else 'Faster'} R-CNN "
              f"on {dataset.name} ({len(dataset)} images, {len(dataset.class_names)} classes), "
              f"pretrained={cfg.model.pretrained}, norm={cfg.model.norm}, {cfg.solver.max_iter} iterations"
              f"{world} -> {output}")
    distributed.barrier()  # the folder is ready before any rank writes
    result = train(model.to(device), dataset, cfg.solver, output, runtime=cfg.runtime,
                   num_workers=cfg.data.num_workers, train_config=cfg.to_dict(), eval_dataset=eval_dataset,
                   resume=args.resume, resume_command=resume_command())
    main_process = distributed.is_main()
    distributed.shutdown()
    if result.stopped_by:
        sys.exit(143 if result.stopped_by == "SIGTERM" else 130)
    if main_process:
        best = f" (best {result.best['metric']} {result.best['value']:.1f} at {result.best['iteration']})" \
            if result.best else ""
        print(f"wrote {result.checkpoint}{best}")


if __name__ == "__main__":
    run(main)
