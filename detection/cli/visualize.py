"""Save a PNG of predictions (boxes, masks, class names, scores) on evaluation images.

    python tools/visualize.py --checkpoint output/demo/model_final.pth
    python tools/visualize.py --predictions output/demo/model_final.shapes_val.predictions.json --dataset shapes_val
"""
import argparse

from backbones.ranges import at_least, between, check_flag
from detection.cli import add_source_arguments, command
from detection.evaluation.results_file import output_path
from detection.run.evaluate import get_predictions
from detection.visualize import draw_predictions, save_png, tile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--num-images", type=int, default=12, help="draw the first N images of the dataset (>= 1)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="draw detections scoring at least this "
                   "(in [0, 1])")
    p.add_argument("--output", help="PNG path (default: <input>.<dataset>.predictions.png beside the input)")
    args = p.parse_args(argv)
    check_flag("--num-images", args.num_images, at_least(1))
    check_flag("--score-threshold", args.score_threshold, between(0, 1))
    return args


@command
def main(argv=None):
    args = parse_args(argv)
    dataset, predictions, source = get_predictions(args.checkpoint, args.predictions, args.dataset, args.device,
                                                  limit=args.num_images)
    drawn = [draw_predictions(dataset.read_image(i), predictions[i], dataset.class_names, args.score_threshold)
             for i in dataset.image_ids[:args.num_images]]
    out = save_png(args.output or output_path(source, dataset.name, "predictions.png"), tile(drawn))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
