#!/usr/bin/env python
"""Pretrain a registry backbone for classification on the object crops of a detection dataset.

    python tools/pretrain_cls.py --backbone resnet18 --dataset shapes --output output/r18_shapes.pth
    python tools/train_det.py --backbone resnet18 --dataset shapes --pretrained output/r18_shapes.pth

The written file is a plain state dict that ``--pretrained PATH`` loads.
"""
import argparse

import torch

import backbones
from backbones.pretraining import accuracy, save_backbone, train_classifier
from detection.cli import run
from detection.data.catalog import evaluation_split, load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.object_crops import ObjectCrops


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--dataset", default="shapes", help="detection dataset whose objects are cropped")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--optimizer", default="sgd", help="sgd (the paper's recipe) or adamw")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--crop-size", type=int, default=64)
    p.add_argument("--norm", default="bn", help="bn (default), gn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", required=True, help="where to write the backbone weights (.pth)")
    return p.parse_args(argv)


def _crops(name, role, size, augment):
    data = load_dataset(name if role == "train" else evaluation_split(name), role)
    return ObjectCrops(DetectionDataset(data), size=size,
                       augment=augment)


def main():
    args = parse_args()
    train_set = _crops(args.dataset, "train", args.crop_size, augment=True)
    torch.manual_seed(args.seed)  # initial weights; the data order is seeded in train_classifier
    model = backbones.build(args.backbone, norm=args.norm, num_classes=len(train_set.class_names))
    print(f"pretraining {args.backbone} on {len(train_set)} object crops of {args.dataset} "
          f"({len(train_set.class_names)} classes), {args.epochs} epochs")
    losses = train_classifier(model, train_set, epochs=args.epochs, batch_size=args.batch_size, base_lr=args.lr,
                              seed=args.seed,
                              optimizer=args.optimizer, weight_decay=args.weight_decay)
    print("epoch losses: " + ", ".join(f"{x:.3f}" for x in losses))
    val_set = _crops(args.dataset, "test", args.crop_size, augment=False)
    print(f"top-1 accuracy on {len(val_set)} held-out crops ({evaluation_split(args.dataset)}): "
          f"{100 * accuracy(model, val_set):.1f}%")
    print(f"wrote {save_backbone(model, args.output)}")


if __name__ == "__main__":
    run(main)
