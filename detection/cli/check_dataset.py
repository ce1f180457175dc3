"""Check a dataset without training: counts, sizes, every problem the loader fixed, and what makes it unusable.

    python tools/check_dataset.py shapes_train
    python tools/check_dataset.py path/to/mydata.yaml --role test --vis 8 --output output/check

Reports images, instances per class (difficult/crowd apart), COCO size
buckets (small < 32², medium < 96², large, by box area), boxes clipped or
dropped, images without objects, the class balance (per class the fraction
of images holding it and the repeat factor ``data.sampler: repeat_factor``
would give it at ``--repeat-threshold``), then what makes the data unusable: ids used
twice, missing image files (a stat each), and with ``--check-images`` images
that cannot be decoded or whose size is not the declared one (slow: every
image is decoded). Exits with status 1 when any of those is found, after the
full report, so scripts can gate on it; 2 when the data cannot be loaded at all.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from backbones.errors import UserError
from backbones.ranges import at_least, check_flag
from detection.cli import command
from detection.config import RANGES, DataConfig
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset, missing_image_files
from detection.data.sampler import category_repeat_factors, repeat_factors
from detection.visualize import draw_ground_truth, save_png, tile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="dataset name, pair name or dataset .yaml")
    p.add_argument("--role", choices=("train", "test"), default="train", help="which split of a pair or YAML")
    p.add_argument("--check-images", action="store_true", help="decode every image (slow on big sets)")
    p.add_argument("--vis", type=int, default=0, help="write a PNG with the ground truth of N images")
    p.add_argument("--output", default="output/check", help="folder for the --vis PNG")
    p.add_argument("--repeat-threshold", type=float, default=DataConfig.repeat_threshold,
                   help="data.repeat_threshold of the class-balance report (the repeat factors "
                        "data.sampler: repeat_factor would use)")
    return p.parse_args(argv)


def summarise(data) -> dict:
    boxes = [r.boxes for r in data.records if len(r.boxes)]
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    labels = np.concatenate([r.labels for r in data.records]) if data.records else np.zeros(0, np.int64)
    ignore = np.concatenate([r.ignore for r in data.records]) if data.records else np.zeros(0, bool)
    area = (all_boxes[:, 2] - all_boxes[:, 0]) * (all_boxes[:, 3] - all_boxes[:, 1])
    return {
        "images": len(data.records),
        "instances": {name: int(((labels == i + 1) & ~ignore).sum()) for i, name in enumerate(data.class_names)},
        "ignored (difficult/crowd)": int(ignore.sum()),
        "sizes": {"small": int((area < 32 ** 2).sum()), "medium": int(((area >= 32 ** 2) & (area < 96 ** 2)).sum()),
                  "large": int((area >= 96 ** 2).sum())},
    }


def image_problems(dataset, skip=()) -> list:
    """Decode every image but those of ``skip``: one line per file that cannot be read or whose size is not
    the one its annotations declare (all of them, not just the first)."""
    bad = []
    for image_id in dataset.image_ids:
        if image_id in skip:
            continue
        try:
            dataset.read_image(image_id)
        except Exception as err:  # report every bad file, whatever the decoder raised
            bad.append(str(err))
    return bad


def print_summary(data):
    """Counts, sizes, and what the loader fixed (clipped, dropped, images without objects)."""
    stats = summarise(data)
    print(f"{data.name}: {stats['images']} images, {len(data.class_names)} classes")
    width = max(len(n) for n in data.class_names)
    for name, count in stats["instances"].items():
        print(f"  {name:<{width}}  {count}")
    print(f"  ignored (difficult/crowd): {stats['ignored (difficult/crowd)']}")
    print("  sizes: " + ", ".join(f"{k} {v}" for k, v in stats["sizes"].items()))
    p = data.problems
    print(f"  problems: {p.clipped_boxes} boxes clipped, {p.dropped_boxes} dropped, "
          f"{p.images_without_objects} images without objects"
          + (f", {p.mask_problems} instance masks disagreeing with their class or object" if p.mask_problems else "")
          + (f", {p.skipped_shapes} shapes left out (not objects)" if p.skipped_shapes else "")
          + (f", {p.objects_without_masks} boxes among objects with masks (the data is read as boxes only)"
             if p.objects_without_masks else ""))
    errors = p.errors()
    for line in p.details:
        if line not in errors:
            print(f"    {line}")


def print_class_balance(data, threshold):
    """Per class the fraction of training images holding it and its repeat factor r(c) under
    ``data.sampler: repeat_factor``; how many images would be repeated, and the expected epoch."""
    records = [r for r in data.records if (~r.ignore).any()]  # those training keeps (data.filter_empty_images)
    print(f"  class balance over the {len(records)} images with trainable objects "
          f"(data.sampler: repeat_factor, data.repeat_threshold: {threshold:g}):")
    if not records:
        return
    frequency, per_class = category_repeat_factors(records, threshold)
    width = max(len(n) for n in data.class_names)
    for label, name in enumerate(data.class_names, 1):
        print(f"    {name:<{width}}  in {100 * frequency.get(label, 0):.2f}% of images  "
              f"r = {per_class.get(label, 1.0):.2f}")
    factors = repeat_factors(records, threshold)
    print(f"    {int((factors > 1).sum())} of {len(records)} images have r > 1; an epoch shows "
          f"{float(factors.sum()):.1f} images on average ({len(records)} without repeats)")


def print_errors(title, count, lines, hint=""):
    """``title: count`` and its lines; ``hint`` follows when fewer lines than ``count`` are shown."""
    print(f"  {title}: {count}")
    for line in lines:
        print(f"    {line}")
    if count > len(lines):
        print(f"    ... and {count - len(lines)} more{hint}")


@command
def main(argv=None):
    """Print the report; exit with status 1 when the data cannot be used as it is (the report says why)."""
    args = parse_args(argv)
    check_flag("--vis", args.vis, at_least(0))
    check_flag("--repeat-threshold", args.repeat_threshold, RANGES["data"]["repeat_threshold"])
    data = load_dataset(args.dataset, args.role, strict=False)  # list every duplicate id instead of stopping
    dataset = DetectionDataset(data)
    print_summary(data)
    print_class_balance(data, args.repeat_threshold)
    duplicates = [line.split(": ", 1)[1] for line in data.problems.errors()]
    print_errors("duplicate ids", data.problems.duplicate_ids, duplicates)
    missing = [str(r.file_name) for r in missing_image_files(data.records)]
    print_errors("missing image files", len(missing), missing[:20],
                 hint=" (when most are missing, the images folder is probably wrong)")
    bad = []
    if args.check_images:
        absent = set(missing)  # already reported
        bad = image_problems(dataset, skip={r.image_id for r in data.records if str(r.file_name) in absent})
        print_errors("unreadable or mis-sized images", len(bad), bad)
    if args.vis:
        drawn = [draw_ground_truth(image, r, data.class_names) for image, r in readable(dataset, args.vis)]
        print(f"wrote {save_png(Path(args.output) / f'{data.name}_ground_truth.png', tile(drawn))}")
    exit_if_unusable(data.name, [("duplicate id", data.problems.duplicate_ids, duplicates),
                                 ("missing image file", len(missing), missing),
                                 ("unreadable or mis-sized image", len(bad), bad)])


def exit_if_unusable(name, found):
    """After the report, exit with status 1 when ``found`` ((what, count, lines) triples) counts anything:
    scripts can gate on the check, and the last line says what it found."""
    found = [(what, count, lines) for what, count, lines in found if count]
    if found:
        counts = ", ".join(f"{count} {what}{'s' if count > 1 else ''}" for what, count, _ in found)
        print(f"error: {name} cannot be used as it is: {counts} (see above); the first: {found[0][2][0]}",
              file=sys.stderr)
        sys.exit(1)


def readable(dataset, count) -> list:
    """``(image, record)`` of the first ``count`` images that read correctly (the others are reported)."""
    drawn = []
    for record in dataset.records:
        if len(drawn) == count:
            break
        try:
            drawn.append((dataset.read_image(record.image_id), record))
        except UserError:
            continue
    return drawn


if __name__ == "__main__":
    main()
