#!/usr/bin/env python
"""Training data pipeline speed, instance masks included: ours (OpenCV + albumentations) against torchvision
transforms v2 and detectron2's DatasetMapper.

Every side reads the same images and objects (crowd regions left out), resizes the shorter side to one of the
training sizes drawn per image ("choice" sampling; longer side capped at --max-size), flips left-right with the
same probability, and returns the image with boxes, labels and (N, H, W) instance masks at the augmented size,
batched by a torch DataLoader with --workers processes (0: the main process, where OpenCV and torch use their
own threads). How each side makes its masks:

- ours: ``DetectionDataset(with_masks=True)`` with ``train_augmentation``: albumentations resizes and flips the
  image and boxes, then masks are made at the augmented size (detection/data/mask_raster.py): polygons scaled and
  rasterised by pycocotools, each on a canvas around its box, RLE masks decoded at their size and resized with
  OpenCV (nearest); uint8 masks, uint8 image (the detector's transform scales it, as detectron2's model does).
- torchvision: every mask decoded at full size (pycocotools, ``decode_segmentation``), resized (nearest) and
  flipped by transforms.v2 as a ``tv_tensors.Mask``; uint8 masks, float image (``v2.ToDtype``).
- detectron2: ``DatasetMapper`` with ``INPUT.MASK_FORMAT = "bitmask"`` (``--detectron2-masks``), augmentations
  ``ResizeShortestEdge(sizes, max_size, "choice")`` and ``RandomFlip``: polygons are transformed, then rasterised
  at the augmented size one object at a time (``polygons_to_bitmask``), RLE masks decoded at full size and resized
  (PIL, nearest); ``gt_masks`` is a ``BitMasks`` (N, H, W) bool tensor, the same form as the others'. detectron2's
  default, "polygon", returns no pixel masks at all (``PolygonMasks``; its model rasterises them later, per
  sampled proposal, at 28x28): not the same output, but ``--detectron2-masks polygon`` measures it too. Its image
  stays uint8 (its model converts it), as ours does: torchvision's alone pays the float conversion here.

Rounds are interleaved, in an order rotated every round, so that all sides see the same machine noise; each round
builds a fresh loader (worker start-up included, alike for all). Prints images/s (median and range) and the
ratios of the medians, ours / torchvision and ours / detectron2. The dataset's images are cycled when --images
is larger than it.

    python bench/data_pipeline.py [--dataset shapes_train] [--images 200] [--workers 0] [--rounds 5]
    python bench/data_pipeline.py --coco tests/data/coco_instances_sample.json tests/data --images 40

shapes_train has RLE masks (192x192 images); the COCO sample (full-size 640-pixel photos, polygons) is where
masks are polygons.
"""
import argparse
import logging
import statistics
import time
import warnings

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.io import decode_image, read_file
from torchvision.transforms import v2

from detection.config import DataConfig
from detection.data.catalog import load_dataset
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset, collate, decode_segmentation
from detection.data.transforms import train_augmentation
from detection.detector import DetectorConfig


class TorchvisionPipeline(torch.utils.data.Dataset):
    """torchvision.io decoding and transforms.v2 on tv_tensors, masks decoded at full size."""

    def __init__(self, data, sizes, max_size, hflip_prob):
        self.records = data.records
        self.transform = v2.Compose([v2.RandomShortestSize(min_size=list(sizes), max_size=max_size),
                                     v2.RandomHorizontalFlip(hflip_prob), v2.ToDtype(torch.float32, scale=True)])

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        rec = self.records[index]
        image = tv_tensors.Image(decode_image(read_file(str(rec.file_name))))
        keep = ~rec.ignore
        masks = [decode_segmentation(s, rec.height, rec.width) for s, k in zip(rec.segmentations, keep) if k]
        masks = np.stack(masks) if masks else np.zeros((0, rec.height, rec.width), np.uint8)
        target = {"boxes": tv_tensors.BoundingBoxes(rec.boxes[keep], format="XYXY",
                                                    canvas_size=(rec.height, rec.width)),
                  "masks": tv_tensors.Mask(torch.from_numpy(masks)), "labels": torch.from_numpy(rec.labels[keep])}
        return self.transform(image, target)


def detectron2_pipeline(data, sizes, max_size, hflip_prob, mask_format):
    """detectron2's training data path: dataset dicts (from the same records: boxes XYXY_ABS, the same
    segmentations, crowd flags) in its ``DatasetFromList``, mapped by ``DatasetMapper``."""
    from detectron2.data import DatasetMapper, transforms as T
    from detectron2.data.common import DatasetFromList, MapDataset
    from detectron2.structures import BoxMode

    logging.getLogger("detectron2").setLevel(logging.WARNING)  # its mapper logs its augmentations
    # torch.from_numpy on pycocotools' read-only masks, once per image (BitMasks copies them anyway)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    dicts = [{"file_name": str(rec.file_name), "height": rec.height, "width": rec.width, "image_id": rec.image_id,
              "annotations": [{"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": label - 1,
                               "segmentation": segmentation, "iscrowd": int(crowd)}
                              for box, label, crowd, segmentation in zip(rec.boxes.tolist(), rec.labels.tolist(),
                                                                         rec.ignore.tolist(), rec.segmentations)]}
             for rec in data.records]
    mapper = DatasetMapper(is_train=True, augmentations=[T.ResizeShortestEdge(sizes, max_size, "choice"),
                                                         T.RandomFlip(prob=hflip_prob)],
                           image_format="RGB", use_instance_mask=True, instance_mask_format=mask_format)
    return MapDataset(DatasetFromList(dicts, copy=False), mapper)


def detectron2_collate(batch):
    return batch  # detectron2's trivial_batch_collator


def images_per_second(dataset, collate_fn, indices, batch, workers):
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch,
                                         num_workers=workers, collate_fn=collate_fn)
    start = time.perf_counter()
    seen = sum(len(images) for images in loader)
    return seen / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="shapes_train", help="a dataset name or YAML file (default: %(default)s)")
    p.add_argument("--coco", nargs=2, metavar=("ANNOTATIONS", "IMAGES"),
                   help="a COCO instances JSON and its image folder, instead of --dataset")
    p.add_argument("--images", type=int, default=200, help="images per round and side")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", help="shorter-side choices (default: the detector's min_size)")
    p.add_argument("--max-size", type=int, default=DetectorConfig.max_size)
    p.add_argument("--detectron2-masks", choices=("bitmask", "polygon"), default="bitmask",
                   help="detectron2's INPUT.MASK_FORMAT (default: %(default)s, pixel masks like the others)")
    args = p.parse_args()
    sizes = args.sizes or DetectorConfig.min_size
    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    flip = DataConfig.hflip_prob
    data = load_coco(*args.coco) if args.coco else load_dataset(args.dataset)
    sides = {
        "ours": (DetectionDataset(data, augment=train_augmentation(sizes, args.max_size, flip), with_masks=True),
                 collate),
        "torchvision": (TorchvisionPipeline(data, sizes, args.max_size, flip), collate),
        "detectron2": (detectron2_pipeline(data, sizes, args.max_size, flip, args.detectron2_masks),
                       detectron2_collate),
    }
    indices = [i % len(data.records) for i in range(args.images)]
    objects = sum(int((~data.records[i].ignore).sum()) for i in indices)
    print(f"{data.name}: {args.images} images ({len(data.records)} distinct), {objects} objects with masks, "
          f"shorter side {sizes}, max {args.max_size}, flip {flip}, batch {args.batch}, workers {args.workers}, "
          f"torch threads {torch.get_num_threads()}, detectron2 masks {args.detectron2_masks}")
    speeds = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            dataset, collate_fn = sides[name]
            speeds[name].append(images_per_second(dataset, collate_fn, indices, args.batch, args.workers))
    median = {name: statistics.median(values) for name, values in speeds.items()}
    labels = {"ours": "ours (OpenCV + albumentations)", "torchvision": "torchvision transforms.v2",
              "detectron2": f"detectron2 DatasetMapper ({args.detectron2_masks})"}
    for name, values in speeds.items():
        print(f"{labels[name]:<40} {median[name]:7.1f} images/s (median of {len(values)}; "
              f"range {min(values):.1f}-{max(values):.1f})")
    print(f"ratio ours / torchvision: {median['ours'] / median['torchvision']:.2f}")
    print(f"ratio ours / detectron2:  {median['ours'] / median['detectron2']:.2f}")


if __name__ == "__main__":
    main()
