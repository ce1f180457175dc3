#!/usr/bin/env python
"""Training data pipeline speed: ours (OpenCV + albumentations) against plain torchvision transforms.

Both sides decode the same images, decode the same masks, resize the shorter
side to one of the training sizes (longer side capped), flip, convert to float
tensors and collate batches; rounds are interleaved so both see the same
machine noise. Prints images/s and the ratio (ours / torchvision).

    python bench/data_pipeline.py [--dataset shapes_train] [--images 200] [--workers 0]
"""
import argparse
import time

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.io import decode_image, read_file
from torchvision.transforms import v2

from detection.config import DataConfig
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset, collate, decode_segmentation
from detection.data.transforms import train_augmentation
from detection.detector import DetectorConfig


class TorchvisionPipeline(torch.utils.data.Dataset):
    """The reference: torchvision.io decoding and transforms.v2 on tv_tensors."""

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
        target = {"boxes": tv_tensors.BoundingBoxes(rec.boxes[keep], format="XYXY", canvas_size=(rec.height, rec.width)),
                  "masks": tv_tensors.Mask(torch.from_numpy(np.stack(masks))), "labels": torch.from_numpy(rec.labels[keep])}
        return self.transform(image, target)


def images_per_second(dataset, batch, workers, count):
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(count)), batch_size=batch,
                                         num_workers=workers, collate_fn=collate)
    start = time.perf_counter()
    seen = sum(len(images) for images, _ in loader)
    return seen / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="shapes_train")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    sizes, max_size, flip = DetectorConfig.min_size, DetectorConfig.max_size, DataConfig.hflip_prob
    sizes = (sizes,) if isinstance(sizes, int) else sizes
    data = load_dataset(args.dataset)
    ours = DetectionDataset(data, augment=train_augmentation(sizes, max_size, flip), with_masks=True)
    reference = TorchvisionPipeline(data, sizes, max_size, flip)
    count = min(args.images, len(data.records))
    print(f"{data.name}: {count} images, shorter side {sizes}, max {max_size}, flip {flip}, masks decoded, "
          f"batch {args.batch}, workers {args.workers}, threads {torch.get_num_threads()}")
    theirs, mine = [], []
    for _ in range(args.rounds):
        theirs.append(images_per_second(reference, args.batch, args.workers, count))
        mine.append(images_per_second(ours, args.batch, args.workers, count))
    t, o = max(theirs), max(mine)
    print(f"torchvision transforms.v2: {t:7.1f} images/s")
    print(f"ours (OpenCV+albumentations): {o:7.1f} images/s")
    print(f"ratio ours / torchvision: {o / t:.2f}")


if __name__ == "__main__":
    main()
