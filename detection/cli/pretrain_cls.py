"""Pretrain a registry backbone for image classification; the weights load with --pretrained PATH.

The data is an ImageFolder tree (ImageNet's layout: ROOT/train/<class>/*.jpg,
ROOT/val/<class>/*.jpg) or a detection dataset, whose object crops become the
classes. The default settings are the paper's ImageNet recipe (He et al. 2015,
Sec. 3.4; configs/pretrain/imagenet_resnet_paper.yaml): SGD momentum 0.9,
weight decay 1e-4, batch 256, lr 0.1 divided by 10 on plateaus of the
validation error, scale augmentation [256, 480] with 224 crops and flips,
PCA colour noise, 10-crop evaluation. A detection dataset without --config
takes configs/pretrain/shapes_crops.yaml (the demo's recipe) instead.

    # ImageNet with the paper's recipe (ImageFolder tree at datasets/imagenet or any path)
    python tools/pretrain_cls.py --config configs/pretrain/imagenet_resnet_paper.yaml \\
        --backbone resnet50 --dataset /data/imagenet --output output/r50_imagenet.pth
    python tools/pretrain_cls.py --config configs/pretrain/imagenet_resnet_paper.yaml \\
        --backbone resnet50 --dataset /data/imagenet --output output/r50_imagenet.pth --resume   # after a stop

    # the built-in data: object crops of `shapes` (what `make demo` runs)
    python tools/pretrain_cls.py --config configs/pretrain/shapes_crops.yaml --output output/r18_shapes.pth
    python tools/train_det.py --backbone resnet18 --dataset shapes --pretrained output/r18_shapes.pth

    # any setting as section.key=value after the flags
    python tools/pretrain_cls.py --dataset /data/imagenet --output out.pth solver.schedule=step eval.final=center

Settings: the defaults, then --config FILE (YAML with model/solver/data/eval/runtime
sections, `_base_` inheritance), then the flags, then section.key=value overrides.
Writes OUTPUT (the backbone's state dict), OUTPUT's stem + .checkpoint.pth (after
every epoch, for --resume) and + .metrics.json (per-epoch loss and top-1/top-5).
"""
import argparse

from detection.cli import command
from detection.run.pretrain import pretrain, resolve_pretrain_run

# flag -> (section, key); every flag defaults to None: the config's value
FLAGS = {"backbone": ("model", "backbone"), "norm": ("model", "norm"), "dataset": ("data", "dataset"),
         "epochs": ("solver", "epochs"), "batch_size": ("solver", "batch_size"), "lr": ("solver", "base_lr"),
         "optimizer": ("solver", "optimizer"), "weight_decay": ("solver", "weight_decay"),
         "crop_size": ("data", "crop_size"), "seed": ("solver", "seed"), "workers": ("data", "num_workers"),
         "device": ("runtime", "device")}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML settings (see configs/pretrain/)")
    p.add_argument("--backbone", help="model.backbone, a registry name")
    p.add_argument("--dataset", help="data.dataset: an ImageFolder root, or a detection dataset (object crops)")
    p.add_argument("--epochs", type=int, help="solver.epochs")
    p.add_argument("--batch-size", type=int, help="solver.batch_size")
    p.add_argument("--lr", type=float, help="solver.base_lr")
    p.add_argument("--optimizer", help="solver.optimizer: sgd (the paper's recipe) or adamw")
    p.add_argument("--weight-decay", type=float, help="solver.weight_decay")
    p.add_argument("--crop-size", type=int, help="data.crop_size (training crop side)")
    p.add_argument("--norm", help="model.norm: bn or gn")
    p.add_argument("--seed", type=int, help="solver.seed")
    p.add_argument("--workers", type=int, help="data.num_workers")
    p.add_argument("--device", help="runtime.device: cpu, cuda (default: cuda when available)")
    p.add_argument("--output", required=True, help="where to write the backbone weights (.pth)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT's checkpoint when there is one")
    p.add_argument("--overwrite", action="store_true", help="discard an unfinished run's checkpoint")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="settings after the flags")
    return p.parse_args(argv)


@command
def main(argv=None):
    args = parse_args(argv)
    flags = {}
    for flag, (section, key) in FLAGS.items():
        flags.setdefault(section, {})[key] = getattr(args, flag)
    run = resolve_pretrain_run(args.output, args.config, flags, args.overrides, resume=args.resume,
                               overwrite=args.overwrite)
    pretrain(run)


if __name__ == "__main__":
    main()
