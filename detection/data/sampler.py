"""Batches of images with the same orientation (detectron2's aspect-ratio grouping).

Images in a batch are padded to the largest one; mixing landscape and
portrait images wastes most of that padding. Indices are shuffled with the
given generator, then dealt into a landscape and a portrait bucket, and each
bucket yields a batch when full, so the order is reproducible from the seed.
"""
import torch


class AspectRatioGroupedBatches(torch.utils.data.Sampler):
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
