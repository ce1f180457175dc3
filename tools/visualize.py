#!/usr/bin/env python
"""Save a PNG of a trained detector's predictions on evaluation images.

    python tools/visualize.py --checkpoint output/demo/model_final.pth --output output/demo/predictions.png
"""
import argparse
from pathlib import Path

import torch

from detection.cli import run
from detection.data.catalog import get_dataset_spec
from detection.data.coco_format import CocoFormatDataset
from detection.engine.checkpoint import load_detector
from detection.engine.inference import predict
from detection.evaluation.checkpoint_eval import default_test_dataset
from detection.visualize import draw_predictions, save_png, tile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", help="dataset name (default: the evaluation split of the training data)")
    p.add_argument("--num-images", type=int, default=12)
    p.add_argument("--score-threshold", type=float, default=0.5)
    p.add_argument("--output", help="PNG path (default: predictions.png next to the checkpoint)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    model, payload = load_detector(args.checkpoint)
    spec = get_dataset_spec(args.dataset or default_test_dataset(payload), "test")
    dataset = CocoFormatDataset(spec.annotations, spec.images, with_masks=False)
    subset = torch.utils.data.Subset(dataset, range(min(args.num_images, len(dataset))))
    predictions = predict(model, subset, progress=False)
    drawn = [draw_predictions(dataset.read_image(i), predictions[i], payload["class_names"], args.score_threshold)
             for i in dataset.image_ids[:len(subset)]]
    out = save_png(args.output or Path(args.checkpoint).with_name("predictions.png"), tile(drawn))
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
