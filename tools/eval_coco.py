#!/usr/bin/env python
"""COCO mAP@[.5,.95] (pycocotools) of a trained detector or of saved predictions, boxes and masks.

    python tools/eval_coco.py --checkpoint output/demo/model_final.pth [--dataset shapes_val]
    python tools/eval_coco.py --predictions output/demo/predictions.json --dataset shapes_val

Mask predictions are evaluated as ``segm`` as well as ``bbox``.
"""
import argparse

from detection.cli import run
from detection.evaluation.checkpoint_eval import add_source_arguments, get_predictions, output_path, write_json
from detection.evaluation.dataset_eval import coco_metrics

SHOWN = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--output-json", help="where to write the numbers (default: <input>.<dataset>.eval_coco.json)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    dataset, predictions, source = get_predictions(args)
    with_masks = any("rles" in p for p in predictions.values())
    results = coco_metrics(dataset, predictions, ("bbox", "segm") if with_masks else ("bbox",))
    print(f"COCO evaluation on {len(dataset)} images")
    print(f"  {'':<5}" + "".join(f"{k:>8}" for k in SHOWN))
    for iou_type, stats in results.items():
        print(f"  {iou_type:<5}" + "".join(f"{100 * stats[k]:8.2f}" for k in SHOWN))
    out = write_json(args.output_json or output_path(source, dataset.name, "eval_coco.json"),
                     {"source": str(source), "dataset": dataset.name, "images": len(dataset),
                      **{t: {k: v for k, v in s.items() if k != "summary_text"} for t, s in results.items()}})
    print(f"wrote {out}")


if __name__ == "__main__":
    run(main)
