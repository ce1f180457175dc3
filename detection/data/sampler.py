"""The order in which training sees its images: aspect-ratio grouped, reproducible, resumable, sharded.

Images in a batch are padded to the largest one, so mixing landscape and
portrait images wastes most of that padding: each epoch's indices are
shuffled, then dealt into a landscape and a portrait bucket, and a bucket
yields a batch when full (detectron2's grouping).

Everything is a function of ``(seed, epoch)``: the shuffle and one
augmentation seed per image. So the stream can start at any iteration
(resume), and with N processes each rank takes its slice of the same global
batch: the images, and how they are augmented, are those of a single
process with the same global batch, whatever the number of loader workers.
"""
import itertools

import torch


class AspectRatioGroupedBatches(torch.utils.data.Sampler):
    """One pass over the images in orientation-grouped batches of ``batch_size`` indices."""

    def __init__(self, widths, heights, batch_size, generator=None):
        self.landscape = [w >= h for w, h in zip(widths, heights)]
        self.batch_size, self.generator = batch_size, generator

    def __iter__(self):
        buckets = {True: [], False: []}
        for index in torch.randperm(len(self.landscape), generator=self.generator).tolist():
            bucket = buckets[self.landscape[index]]
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()

    def __len__(self):  # full batches only, as with drop_last
        wide = sum(self.landscape)
        return wide // self.batch_size + (len(self.landscape) - wide) // self.batch_size


def _epoch_generator(seed, epoch) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class TrainingBatches(torch.utils.data.Sampler):
    """Endless ``[(index, augmentation_seed), ...]`` batches for one rank, from iteration ``start`` on.

    ``global_batch`` images per iteration are split over ``world_size`` ranks;
    this rank gets images ``[rank * b, (rank + 1) * b)`` of each global batch.
    """

    def __init__(self, widths, heights, global_batch, seed, start=0, rank=0, world_size=1):
        if global_batch % world_size:
            raise ValueError(f"batch of {global_batch} images cannot be split over {world_size} processes")
        self.widths, self.heights = list(widths), list(heights)
        self.global_batch, self.seed, self.start = global_batch, seed, start
        self.per_rank, self.rank = global_batch // world_size, rank
        self.batches_per_epoch = len(AspectRatioGroupedBatches(self.widths, self.heights, global_batch))
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(self.widths)} images make no full batch of {global_batch} "
                             f"of one orientation")

    def epoch_batches(self, epoch) -> list:
        """The global batches of ``epoch`` with each image's augmentation seed."""
        generator = _epoch_generator(self.seed, epoch)
        batches = list(AspectRatioGroupedBatches(self.widths, self.heights, self.global_batch, generator))
        aug_seeds = torch.randint(2 ** 31 - 1, (len(self.widths),), generator=generator).tolist()
        return [[(i, aug_seeds[i]) for i in batch] for batch in batches]

    def __iter__(self):
        epoch, skip = divmod(self.start, self.batches_per_epoch)
        for epoch in itertools.count(epoch):
            for batch in self.epoch_batches(epoch)[skip:]:
                yield batch[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
            skip = 0
