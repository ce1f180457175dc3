"""Check a dataset without training: counts, sizes, and every problem the loader fixed.

    python tools/check_dataset.py shapes_train
    python tools/check_dataset.py path/to/mydata.yaml --role test --vis 8 --output output/check

Reports images, instances per class (difficult/crowd apart), COCO size
buckets (small < 32², medium < 96², large, by box area), boxes clipped or
dropped, images without objects, and unreadable images (``--check-images``).
"""
import argparse
from pathlib import Path

import numpy as np

from detection.cli import command
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.visualize import draw_ground_truth, save_png, tile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="dataset name, pair name or dataset .yaml")
    p.add_argument("--role", choices=("train", "test"), default="train", help="which split of a pair or YAML")
    p.add_argument("--check-images", action="store_true", help="decode every image (slow on big sets)")
    p.add_argument("--vis", type=int, default=0, help="write a PNG with the ground truth of N images")
    p.add_argument("--output", default="output/check", help="folder for the --vis PNG")
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


def unreadable_images(dataset) -> list:
    bad = []
    for image_id in dataset.image_ids:
        try:
            dataset.read_image(image_id)
        except Exception as err:  # report every unreadable file, not just the first
            bad.append(str(err))
    return bad


@command
@command
def main(argv=None):
    args = parse_args(argv)
    data = load_dataset(args.dataset, args.role)
    dataset = DetectionDataset(data)
    stats = summarise(data)
    print(f"{data.name}: {stats['images']} images, {len(data.class_names)} classes")
    width = max(len(n) for n in data.class_names)
    for name, count in stats["instances"].items():
        print(f"  {name:<{width}}  {count}")
    print(f"  ignored (difficult/crowd): {stats['ignored (difficult/crowd)']}")
    print("  sizes: " + ", ".join(f"{k} {v}" for k, v in stats["sizes"].items()))
    p = data.problems
    print(f"  problems: {p.clipped_boxes} boxes clipped, {p.dropped_boxes} dropped, "
          f"{p.images_without_objects} images without objects")
    for line in p.details:
        print(f"    {line}")
    if args.check_images:
        bad = unreadable_images(dataset)
        print(f"  unreadable images: {len(bad)}")
        for line in bad[:20]:
            print(f"    {line}")
    if args.vis:
        drawn = [draw_ground_truth(dataset.read_image(r.image_id), r, data.class_names) for r in data.records[:args.vis]]
        print(f"wrote {save_png(Path(args.output) / f'{data.name}_ground_truth.png', tile(drawn))}")


if __name__ == "__main__":
    main()
