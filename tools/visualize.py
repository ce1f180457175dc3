#!/usr/bin/env python
"""Save a PNG of predictions (boxes, masks, class names, scores) on evaluation images.

    python tools/visualize.py --checkpoint output/demo/model_final.pth
    python tools/visualize.py --predictions output/demo/predictions.json --dataset shapes_val --output preds.png
"""
import argparse
from pathlib import Path

import torch

from backbones.errors import UserError
from detection.cli import run
from detection.engine.checkpoint import load_detector
from detection.engine.inference import predict
from detection.evaluation.checkpoint_eval import add_source_arguments, default_test_dataset, load_results, open_dataset
from detection.visualize import draw_predictions, save_png, tile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--num-images", type=int, default=12)
    p.add_argument("--score-threshold", type=float, default=0.5)
    p.add_argument("--output", help="PNG path (default: predictions.png beside the input)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    if args.predictions:
        if not args.dataset:
            raise UserError("--predictions needs --dataset")
        dataset = open_dataset(args.dataset)
        predictions, source = load_results(args.predictions, dataset), Path(args.predictions)
    elif args.checkpoint:
        model, payload = load_detector(args.checkpoint)
        dataset, source = open_dataset(args.dataset or default_test_dataset(payload)), Path(args.checkpoint)
        subset = torch.utils.data.Subset(dataset, range(min(args.num_images, len(dataset))))
        predictions = predict(model, subset, progress=False)
    else:
        raise UserError("pass --checkpoint CKPT or --predictions RESULTS.json --dataset NAME")
    ids = dataset.image_ids[:args.num_images]
    drawn = [draw_predictions(dataset.read_image(i), predictions[i], dataset.class_names, args.score_threshold)
             for i in ids]
    out = save_png(args.output or source.with_name("predictions.png"), tile(drawn))
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
