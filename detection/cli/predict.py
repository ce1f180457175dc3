"""Run a trained detector on your own images, folders, glob patterns and videos.

    python tools/predict.py output/demo/model_final.pth datasets/shapes/JPEGImages --output output/demo/predicted --draw
    python tools/predict.py model_final.pth photos/ clip.mp4 --output out --recursive --score-threshold 0.3 --csv
    python tools/predict.py model_final.pth new_photos/ --output out --pseudo-labels coco   # labels to correct

Writes predictions.json (COCO results, each naming its file_name) with
images.json (the images list and categories), predictions.jsonl (one line per
image), predictions.csv (--csv), drawn images and annotated videos in drawn/
(--draw), and with --pseudo-labels a dataset (COCO JSON or VOC XML plus
dataset.yaml) that tools/check_dataset.py and tools/train_det.py --dataset take.
A file inside a folder that cannot be decoded is reported by name and skipped.
"""
import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from backbones.errors import UserError
from backbones.ranges import at_least, between, check_flag
from detection.cli import add_tta_arguments, command, tta_settings
from detection.predict import PRECISIONS, Predictor
from detection.predict.inputs import count_images, expand, frames, video_info
from detection.predict.outputs import PredictionFiles
from detection.predict.pseudo_labels import FORMATS, write_pseudo_labels
from detection.tta import checkpoint_tta


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a detector checkpoint (model_final.pth of a training run)")
    p.add_argument("inputs", nargs="+", help="image files, folders, glob patterns (quoted) or video files")
    p.add_argument("--output", required=True, help="folder for the prediction files")
    p.add_argument("--recursive", action="store_true", help="also search the folders' subfolders (and ** in globs)")
    p.add_argument("--score-threshold", type=float, help="keep detections scoring at least this, in [0, 1] "
                   "(default: the model's box_score_thresh, 0.05)")
    p.add_argument("--classes", nargs="+", metavar="NAME", help="keep only these classes")
    p.add_argument("--max-detections", type=int, help="per image (default: the model's, 100)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32")
    p.add_argument("--batch-size", type=int, default=2, help="images per forward pass")
    add_tta_arguments(p)
    p.add_argument("--csv", action="store_true", help="also write predictions.csv, one row per detection")
    p.add_argument("--draw", action="store_true", help="draw the detections on each image (and video) in drawn/")
    p.add_argument("--draw-threshold", type=float, default=0.5, help="draw detections scoring at least this")
    p.add_argument("--pseudo-labels", choices=FORMATS, help="also write the predictions as a dataset to correct "
                   "and train on (in <output>/pseudo_labels)")
    p.add_argument("--pseudo-threshold", type=float, default=0.5, help="detections scoring at least this become "
                   "pseudo-label objects")
    args = p.parse_args(argv)
    for flag in ("--score-threshold", "--draw-threshold", "--pseudo-threshold"):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            check_flag(flag, value, between(0, 1))
    for flag, value in (("--max-detections", args.max_detections), ("--batch-size", args.batch_size)):
        if value is not None:
            check_flag(flag, value, at_least(1))
    return args


@command
def main(argv=None):
    args = parse_args(argv)
    tta = tta_settings(args)  # checked before anything is loaded
    if not Path(args.checkpoint).is_file():
        raise UserError(f"checkpoint {args.checkpoint} does not exist; pass a model_final.pth written by "
                        f"tools/train_det.py")
    sources = expand(args.inputs, args.recursive)  # every input checked before the model is loaded
    if args.pseudo_labels and any(s.video for s in sources):
        raise UserError("--pseudo-labels is written for image files, and the inputs include a video; extract its "
                        "frames as images first (e.g. `ffmpeg -i clip.mp4 frames/%06d.jpg`)")
    predictor = Predictor(args.checkpoint, device=args.device, precision=args.precision,
                          score_threshold=args.score_threshold, classes=args.classes,
                          max_detections=args.max_detections, batch_size=args.batch_size)
    if tta is not None:
        predictor.set_tta(checkpoint_tta(predictor.train_config, predictor.config, tta))
        print(predictor.tta.describe())
    files = PredictionFiles(args.output, predictor.class_names, predictor.category_ids, csv_file=args.csv,
                            draw=args.draw, draw_threshold=args.draw_threshold,
                            video_fps={s.name: video_info(s.path)[0] for s in sources if s.video})
    skipped, kept, count = [], [], 0
    start = time.perf_counter()

    def skip(frame):
        skipped.append(frame.name)
        tqdm.write(f"warning: skipped {frame.name}: {frame.error}", file=sys.stderr)

    try:
        bar = tqdm(predictor.predict_frames(frames(sources), on_skip=skip), total=count_images(sources) or None,
                   unit="img", desc="predict")
        for result in bar:
            files.add(result)
            count += 1
            if args.pseudo_labels:
                kept.append({k: v for k, v in result.items() if k != "image"})
    except BaseException:
        files.abandon()
        raise
    written = files.finish()
    seconds = time.perf_counter() - start
    if args.pseudo_labels:
        dataset = write_pseudo_labels(args.pseudo_labels, Path(args.output) / "pseudo_labels", kept,
                                      predictor.class_names, predictor.category_ids, args.pseudo_threshold)
        print(f"pseudo-labels: {dataset} (check with tools/check_dataset.py {dataset}; train with "
              f"tools/train_det.py --dataset {dataset})")
    detections = len(files.results)
    print(f"predicted {count} image{'s' if count != 1 else ''} in {seconds:.1f} s "
          f"({count / max(seconds, 1e-9):.2f} images/s), {detections} detections"
          + (f"; skipped {len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''}: "
             f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}" if skipped else ""))
    print(f"wrote {', '.join(str(p) for p in written)}" + (f" and {len(files.drawn)} drawn images in "
                                                           f"{Path(args.output) / 'drawn'}" if files.drawn else ""))


if __name__ == "__main__":
    main()
