#!/usr/bin/env python
"""PASCAL VOC mAP of a trained detector (VOC devkit rules, IoU 0.5).

    python tools/eval_voc.py --checkpoint output/demo/model_final.pth --dataset shapes_val

Prints per-class AP and mAP and writes them to a JSON file.
"""
import argparse
import math
from pathlib import Path

from detection.cli import run
from detection.evaluation.checkpoint_eval import predict_checkpoint, write_json
from detection.evaluation.dataset_eval import voc_metrics


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="file written by tools/train_det.py")
    p.add_argument("--dataset", help="dataset name (default: the evaluation split of the training data)")
    p.add_argument("--metric", choices=("area", "11point"), default="area",
                   help="area: VOC2010+ (default); 11point: VOC2007")
    p.add_argument("--iou-threshold", type=float, default=0.5)
    p.add_argument("--output-json", help="where to write the numbers (default: next to the checkpoint)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    _, _, dataset, predictions = predict_checkpoint(args.checkpoint, args.dataset)
    result = voc_metrics(dataset, predictions, metric=args.metric, iou_threshold=args.iou_threshold)
    print(f"VOC {args.metric} AP@{args.iou_threshold:g} on {len(dataset)} images")
    width = max(len(n) for n in result["per_class"])
    for name, ap in result["per_class"].items():
        print(f"  {name:<{width}}  {'n/a' if math.isnan(ap) else f'{100 * ap:6.2f}'}")
    print(f"  {'mAP':<{width}}  {100 * result['mAP']:6.2f}")
    out = args.output_json or Path(args.checkpoint).with_name("eval_voc.json")
    write_json(out, {"metric": result["metric"], "iou_threshold": result["iou_threshold"],
                     "dataset": args.dataset, "checkpoint": str(args.checkpoint),
                     "per_class": result["per_class"], "mAP": result["mAP"]})
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
