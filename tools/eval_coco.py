#!/usr/bin/env python
"""COCO mAP@[.5,.95] of a trained detector with pycocotools, for boxes and (Mask R-CNN) masks.

    python tools/eval_coco.py --checkpoint output/demo/model_final.pth --dataset shapes_val
"""
import argparse
from pathlib import Path

from detection.cli import run
from detection.evaluation.checkpoint_eval import predict_checkpoint, write_json
from detection.evaluation.dataset_eval import coco_metrics

SHOWN = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="file written by tools/train_det.py")
    p.add_argument("--dataset", help="dataset name (default: the evaluation split of the training data)")
    p.add_argument("--output-json", help="where to write the numbers (default: next to the checkpoint)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    model, _, dataset, predictions = predict_checkpoint(args.checkpoint, args.dataset)
    iou_types = ("bbox", "segm") if model.config.mask else ("bbox",)
    results = coco_metrics(dataset, predictions, iou_types)
    print(f"COCO evaluation on {len(dataset)} images")
    print(f"  {'':<5}" + "".join(f"{k:>8}" for k in SHOWN))
    for iou_type, stats in results.items():
        print(f"  {iou_type:<5}" + "".join(f"{100 * stats[k]:8.2f}" for k in SHOWN))
    out = args.output_json or Path(args.checkpoint).with_name("eval_coco.json")
    write_json(out, {"dataset": args.dataset, "checkpoint": str(args.checkpoint),
                     **{t: {k: v for k, v in s.items() if k != "summary_text"} for t, s in results.items()}})
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
