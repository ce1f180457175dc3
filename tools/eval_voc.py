#!/usr/bin/env python
"""PASCAL VOC mAP (VOC devkit rules) of a trained detector or of saved predictions.

    python tools/eval_voc.py --checkpoint output/demo/model_final.pth [--dataset shapes_val]
    python tools/eval_voc.py --predictions output/demo/predictions.json --dataset shapes_val

Prints per-class AP and mAP and writes them to a JSON file. Run on a
checkpoint, it also saves the predictions (COCO results JSON) next to it.
"""
import argparse
import math
from pathlib import Path

from detection.cli import run
from detection.evaluation.checkpoint_eval import add_source_arguments, get_predictions, output_path, write_json
from detection.evaluation.dataset_eval import voc_metrics


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--metric", choices=("area", "11point"), default="area",
                   help="area: VOC2010+ (default); 11point: VOC2007")
    p.add_argument("--iou-threshold", type=float, default=0.5)
    p.add_argument("--output-json", help="where to write the numbers (default: <input>.<dataset>.eval_voc.json)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    dataset, predictions, source = get_predictions(args)
    result = voc_metrics(dataset, predictions, metric=args.metric, iou_threshold=args.iou_threshold)
    print(f"VOC {args.metric} AP@{args.iou_threshold:g} on {len(dataset)} images")
    width = max(len(n) for n in result["per_class"])
    for name, ap in result["per_class"].items():
        print(f"  {name:<{width}}  {'n/a' if math.isnan(ap) else f'{100 * ap:6.2f}'}")
    print(f"  {'mAP':<{width}}  {100 * result['mAP']:6.2f}")
    out = write_json(args.output_json or output_path(source, dataset.name, "eval_voc.json"),
                     {"metric": result["metric"], "iou_threshold": result["iou_threshold"], "source": str(source),
                      "dataset": dataset.name,
                      "images": len(dataset), "per_class": result["per_class"], "mAP": result["mAP"]})
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
