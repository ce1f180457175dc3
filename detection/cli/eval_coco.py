"""COCO mAP@[.5,.95] (COCOeval) of a trained detector or of saved predictions, boxes and masks.

    python tools/eval_coco.py --checkpoint output/demo/model_final.pth [--dataset shapes_val]
    python tools/eval_coco.py --checkpoint output/demo/model_final.pth --tta [--tta-merge nms]
    python tools/eval_coco.py --predictions output/demo/model_final.shapes_val.predictions.json --dataset shapes_val
    python tools/eval_coco.py --annotations instances_val2017.json --predictions results.json --iou-type bbox

Mask predictions are evaluated as ``segm`` as well as ``bbox``. Writes the 12
COCO numbers by name and per-class AP to a JSON file and per-class
precision-recall curves (IoU 0.5) to a PNG. With --tta (test-time augmentation,
detection.tta) the files are named <ckpt>.<dataset>.tta.*.

--backend auto (the default) runs faster-coco-eval's COCOeval where it is
installed (the same numbers to 1e-9, bench/eval_speed.py), else pycocotools';
the one that ran is printed and written to the JSON ("backend").
"""
import argparse
from pathlib import Path

from backbones.errors import UserError
from detection.cli import add_source_arguments, add_tta_arguments, command, tta_settings
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset
from detection.evaluation.results_file import json_numbers, load_results, output_path, percent, warn, write_json
from detection.evaluation.coco import BACKENDS, defined_stats
from detection.evaluation.dataset_eval import coco_metrics, has_ground_truth_masks
from detection.evaluation.plots import plot_precision_recall
from detection.run.evaluate import get_predictions

SHOWN = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    add_tta_arguments(p)
    p.add_argument("--annotations", help="a COCO ground-truth JSON to score --predictions against")
    p.add_argument("--iou-type", choices=("bbox", "segm", "both"), help="default: segm too when masks are present")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="COCOeval implementation; auto: faster-coco-eval when installed, else pycocotools")
    p.add_argument("--output-json", help="where to write the numbers (default: <input>.<dataset>.eval_coco.json)")
    return p.parse_args(argv)


def choose_iou_types(requested, predictions, dataset) -> tuple:
    """bbox, and segm where both sides have masks. Masks on the results alone (a Mask R-CNN scored on VOC or
    on box-only COCO JSON) are evaluated as boxes with a warning; asking for segm then is an error."""
    with_masks = any("rles" in p for p in predictions.values())
    if requested in ("segm", "both"):
        if not with_masks:
            raise UserError(f"--iou-type {requested} needs mask predictions (a 'segmentation' in every result)")
        if not has_ground_truth_masks(dataset):
            raise UserError(f"--iou-type {requested} needs ground-truth masks, and {dataset.name} has none (an "
                            f"object without 'segmentation'); use --iou-type bbox")
        return {"segm": ("segm",), "both": ("bbox", "segm")}[requested]
    if requested is None and with_masks:
        if has_ground_truth_masks(dataset):
            return ("bbox", "segm")
        warn(f"the results carry masks but {dataset.name} has no ground-truth masks (an object without "
             f"'segmentation'); evaluating boxes only")
    return ("bbox",)


@command
def main(argv=None):
    args = parse_args(argv)
    tta = tta_settings(args)
    if args.annotations:
        if not args.predictions:
            raise UserError("--annotations needs --predictions RESULTS.json")
        dataset = DetectionDataset(load_coco(args.annotations, Path(args.annotations).parent,
                                             Path(args.annotations).stem))
        predictions, source = load_results(args.predictions, dataset), Path(args.predictions)
    else:
        dataset, predictions, source = get_predictions(args.checkpoint, args.predictions, args.dataset, args.device,
                                                       tta=tta, refine=args.box_refinement)
    iou_types = choose_iou_types(args.iou_type, predictions, dataset)
    results = coco_metrics(dataset, predictions, iou_types, backend=args.backend)
    shown = {t: defined_stats(s) for t, s in results.items()}  # n/a and null, not -1, where a range has no objects
    backend = next(iter(results.values()))["backend"]  # the one "auto" resolved to
    print(f"COCO evaluation on {len(dataset)} images of {dataset.name} ({backend})")
    print(f"  {'':<5}" + "".join(f"{k:>8}" for k in SHOWN))
    for iou_type, stats in shown.items():
        print(f"  {iou_type:<5}" + "".join(percent(stats[k]) for k in SHOWN))
    width = max(len(n) for n in dataset.class_names)
    print(f"  per-class AP@[.5:.95]  {'':<{max(0, width - 20)}}" + "".join(f"{t:>8}" for t in results))
    for name in dataset.class_names:
        print(f"  {name:<{max(width, 21)}}" + "".join(percent(s["per_class"][name]) for s in shown.values()))
    out = write_json(args.output_json or output_path(source, dataset.name, "eval_coco.json"), json_numbers(
                     {"source": str(source), "dataset": dataset.name, "images": len(dataset), "backend": backend,
                      **{t: {k: v for k, v in s.items() if k not in ("summary_text", "precision_recall", "backend")}
                         for t, s in shown.items()}}))
    print(f"wrote {out}")
    for iou_type, stats in results.items():
        png = plot_precision_recall(stats["precision_recall"], stats["per_class"],
                                    Path(out).with_suffix(f".pr_{iou_type}.png"),
                                    f"{dataset.name}: COCO {iou_type}, precision at IoU 0.5 (legend: AP)")
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
