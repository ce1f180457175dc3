"""Merge several detectors' prediction files on the same dataset into one: per-class NMS + box voting.

    python tools/ensemble.py a.shapes_val.predictions.json b.shapes_val.predictions.json --dataset shapes_val \\
        --output ensemble.shapes_val.predictions.json [--merge vote|nms] [--iou 0.5] [--max-detections 100]
    python tools/eval_coco.py --predictions ensemble.shapes_val.predictions.json --dataset shapes_val

Each file is a COCO results list (what eval_coco / eval_voc / predict write), checked against --dataset as
eval_coco checks it. Detections of the same image and class are pooled and merged (detection/ensemble.py):
``vote`` keeps the boxes NMS at --iou keeps and moves each to the score-weighted mean of the pooled boxes of
its class overlapping it by --iou or more (the paper's box voting, Appendix B); ``nms`` keeps them as they are.
A kept detection keeps its own mask.
"""
import argparse
from pathlib import Path

from backbones.errors import UserError
from detection.cli import command
from detection.ensemble import ensemble_predictions
from detection.evaluation.results_file import load_results, save_results
from detection.run.data import open_evaluation_dataset
from detection.tta import MERGES


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("predictions", nargs="+", help="COCO results JSON files, one per model (two or more)")
    p.add_argument("--dataset", required=True, help="the dataset the predictions are on (e.g. shapes_val)")
    p.add_argument("--output", required=True, help="where to write the merged COCO results JSON")
    p.add_argument("--merge", default="vote", choices=MERGES, help="vote (NMS, then box voting; default) or nms")
    p.add_argument("--iou", type=float, default=0.5, help="IoU of the NMS and of the voting, in (0, 1]")
    p.add_argument("--max-detections", type=int, default=100, help="per image, after merging (default 100)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    return p.parse_args(argv)


@command
def main(argv=None):
    args = parse_args(argv)
    if not 0 < args.iou <= 1:  # NaN too
        raise UserError(f"--iou {args.iou:g} is outside (0, 1]: the IoU at which boxes of a class are merged, "
                        f"e.g. 0.5 (Fast R-CNN's NMS)")
    if args.max_detections < 1:
        raise UserError(f"--max-detections {args.max_detections}: must be at least 1")
    if len(args.predictions) < 2:
        raise UserError(f"an ensemble merges two or more prediction files, got {len(args.predictions)}: "
                        f"{args.predictions[0]}")
    output = Path(args.output)
    if output.resolve() in {Path(p).resolve() for p in args.predictions}:
        raise UserError(f"--output {output} is one of the prediction files; write the ensemble elsewhere")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} exists; pass --overwrite to replace it, or choose another --output")
    dataset = open_evaluation_dataset(args.dataset)
    models = [load_results(path, dataset) for path in args.predictions]  # every file checked before writing
    merged = ensemble_predictions(models, args.merge, args.iou, args.max_detections)
    counts = [sum(len(p["scores"]) for p in m.values()) for m in models]
    written = save_results(output, dataset, merged)
    print(f"ensemble of {len(models)} models on {len(dataset)} images of {dataset.name} ({args.merge}, IoU "
          f"{args.iou:g}): {' + '.join(map(str, counts))} detections -> "
          f"{sum(len(p['scores']) for p in merged.values())}")
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
