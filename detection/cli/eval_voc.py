"""PASCAL VOC mAP (VOC devkit rules) of a trained detector, saved predictions, or devkit results files.

    python tools/eval_voc.py --checkpoint output/demo/model_final.pth [--dataset shapes_val]
    python tools/eval_voc.py --checkpoint output/demo/model_final.pth --tta [--tta-scales 160 192 224]
    python tools/eval_voc.py --predictions output/demo/model_final.shapes_val.predictions.json --dataset shapes_val
    python tools/eval_voc.py --voc-root datasets/VOCdevkit/VOC2007 --split test --predictions results/

The last form reads the devkit's comp4_det_<split>_<class>.txt files (lines
"image_id score x1 y1 x2 y2", 1-based). Prints per-class AP and mAP, writes
them to a JSON file and the precision-recall curves to a PNG. Run on a
checkpoint, it also saves the predictions as a COCO results JSON and as
devkit results files, beside the checkpoint. With --tta (test-time augmentation,
detection.tta) every file it writes is named <ckpt>.<dataset>.tta.*.
"""
import argparse
from pathlib import Path

from backbones.errors import UserError
from detection.cli import add_source_arguments, add_tta_arguments, command, tta_settings
from detection.data.dataset import DetectionDataset
from detection.data.voc_format import load_voc
from detection.evaluation.results_file import json_numbers, output_path, percent, write_json
from detection.evaluation.dataset_eval import voc_metrics
from detection.evaluation.plots import plot_precision_recall
from detection.evaluation.voc_results import read_voc_results, write_voc_results
from detection.run.evaluate import get_predictions


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    add_tta_arguments(p)
    p.add_argument("--voc-root", help="a VOC<year> folder whose annotations the --predictions folder is scored on")
    p.add_argument("--split", help="with --voc-root: the ImageSets/Main list, e.g. test")
    p.add_argument("--classes", nargs="+", help="with --voc-root: class names (default: the 20 VOC classes)")
    p.add_argument("--metric", choices=("area", "11point"), default="area",
                   help="area: VOC2010+ (default); 11point: VOC2007")
    p.add_argument("--iou-threshold", type=float, default=0.5)
    p.add_argument("--exclusive-threshold", action="store_true",
                   help="match at IoU > threshold (py-faster-rcnn) instead of >= (the official devkit)")
    p.add_argument("--output-json", help="where to write the numbers (default: <input>.<dataset>.eval_voc.json)")
    return p.parse_args(argv)


def devkit_predictions(args):
    if not (args.split and args.predictions):
        raise UserError("--voc-root needs --split and --predictions FOLDER (of comp4_det_<split>_<class>.txt files)")
    if not Path(args.predictions).is_dir():
        raise UserError(f"{args.predictions} is not a folder of devkit results files")
    root = Path(args.voc_root)
    data = load_voc(root, args.split, name=f"{root.name}_{args.split}",
                    **({"class_names": tuple(args.classes)} if args.classes else {}))
    dataset = DetectionDataset(data)
    return dataset, read_voc_results(args.predictions, args.split, dataset.class_names, dataset.image_ids), \
        Path(args.predictions)


def check_iou_threshold(value, exclusive):
    """A match threshold in (0, 1]: at 0 or below every detection matches any ground truth of its image, above 1
    (or NaN) none does, and either way the mAP printed looks like a result."""
    if not 0 < value <= 1:
        raise UserError(f"--iou-threshold {value:g} is outside (0, 1]: it is the IoU a detection needs to match a "
                        f"ground-truth box, e.g. 0.5 (VOC) or 0.7")
    if exclusive and value == 1:
        raise UserError("--iou-threshold 1 with --exclusive-threshold matches nothing (IoU > 1 never holds); "
                        "give a threshold below 1, or drop --exclusive-threshold to match identical boxes")


@command
def main(argv=None):
    args = parse_args(argv)
    check_iou_threshold(args.iou_threshold, args.exclusive_threshold)
    tta = tta_settings(args)
    if args.voc_root:
        dataset, predictions, source = devkit_predictions(args)
    elif args.predictions and Path(args.predictions).is_dir():
        raise UserError("a folder of devkit results files needs --voc-root and --split")
    else:
        dataset, predictions, source = get_predictions(args.checkpoint, args.predictions, args.dataset, args.device,
                                                       tta=tta, refine=args.box_refinement)
        if args.checkpoint:
            folder = output_path(source, dataset.name, "voc_results")
            split = dataset.data.split or dataset.name  # VOC data knows its ImageSets list
            write_voc_results(folder, predictions, dataset.class_names, split)
            print(f"wrote {folder}/comp4_det_{split}_<class>.txt")
    result = voc_metrics(dataset, predictions, metric=args.metric, iou_threshold=args.iou_threshold,
                         inclusive_threshold=not args.exclusive_threshold)
    side = ">" if args.exclusive_threshold else ">="
    print(f"VOC {args.metric} AP, match at IoU {side} {args.iou_threshold:g}, on {len(dataset)} images of "
          f"{dataset.name}")
    width = max(len(n) for n in result["per_class"])
    for name, ap in result["per_class"].items():  # n/a: a class without ground truth has no AP
        print(f"  {name:<{width}}  {percent(ap, 6)}")
    print(f"  {'mAP':<{width}}  {percent(result['mAP'], 6)}")
    coco_style = result["voc_style_coco_ap"]
    print(f"  VOC-style AP over IoU .5:.95 (as detectron2 reports; not COCO's AP): {percent(coco_style['AP'], 0)} "
          f"(AP50 {percent(coco_style['AP50'], 0)}, AP75 {percent(coco_style['AP75'], 0)})")
    out = write_json(args.output_json or output_path(source, dataset.name, "eval_voc.json"), json_numbers(
                     {"metric": result["metric"], "iou_threshold": result["iou_threshold"], "source": str(source),
                      "dataset": dataset.name, "images": len(dataset), "match": f"IoU {side} {args.iou_threshold:g}",
                      "per_class": result["per_class"], "mAP": result["mAP"],
                      "voc_style_ap_50_95": coco_style}))
    print(f"wrote {out}")
    png = plot_precision_recall(result["precision_recall"], result["per_class"],
                                Path(out).with_suffix(".pr.png") if args.output_json
                                else output_path(source, dataset.name, "pr_voc.png"),
                                f"{dataset.name}: VOC {args.metric} AP@{args.iou_threshold:g}")
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
