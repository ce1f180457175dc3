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

``data.sampler: repeat_factor`` (class imbalance, LVIS's rule as detectron2's
``RepeatFactorTrainingSampler``): an image whose rarest class is rare is
seen more than once per epoch. Per class c, f(c) is the fraction of training
images holding a trainable object of c and r(c) = max(1, sqrt(t / f(c)));
an image's factor r(I) is the largest r(c) of its classes. Each epoch an
image is taken floor(r(I)) times plus once more with probability
r(I) - floor(r(I)) (stochastic rounding), drawn from the epoch's generator
first, so epochs differ in length but stay a function of ``(seed, epoch)``.
"""
import itertools
import math
from collections import Counter

import torch

SAMPLERS = ("default", "repeat_factor")


def category_repeat_factors(records, threshold) -> tuple:
    """``({label: f(c)}, {label: r(c)})`` over ``records``: the fraction of images holding a trainable
    (not ignored) object of each class, and its repeat factor max(1, sqrt(threshold / f(c)))."""
    counts = Counter(label for r in records for label in set(r.labels[~r.ignore].tolist()))
    frequency = {label: count / len(records) for label, count in counts.items()}
    return frequency, {label: max(1.0, math.sqrt(threshold / f)) for label, f in frequency.items()}


def repeat_factors(records, threshold) -> torch.Tensor:
    """Per image r(I) = the largest r(c) of its trainable classes (1 for an image without any), float32
    as detectron2's ``repeat_factors_from_category_frequency``, which gives the same numbers."""
    _, per_class = category_repeat_factors(records, threshold)
    return torch.tensor([max((per_class[label] for label in set(r.labels[~r.ignore].tolist())), default=1.0)
                         for r in records], dtype=torch.float32)


def repeated_indices(factors: torch.Tensor, generator) -> list:
    """One epoch's image indices, image i ``floor(r) + (u < r - floor(r))`` times, u drawn from
    ``generator`` (detectron2's stochastic rounding, in index order)."""
    whole = torch.trunc(factors)
    counts = whole + (torch.rand(len(factors), generator=generator) < factors - whole).float()
    return torch.repeat_interleave(torch.arange(len(factors)), counts.long()).tolist()


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

    def __init__(self, widths, heights, global_batch, seed, start=0, rank=0, world_size=1, repeat_factors=None):
        if global_batch % world_size:
            raise ValueError(f"batch of {global_batch} images cannot be split over {world_size} processes")
        self.widths, self.heights = list(widths), list(heights)
        self.global_batch, self.seed, self.start = global_batch, seed, start
        self.per_rank, self.rank = global_batch // world_size, rank
        self.batches_per_epoch = len(AspectRatioGroupedBatches(self.widths, self.heights, global_batch))
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(self.widths)} images make no full batch of {global_batch} "
                             f"of one orientation")
        # None: every image once per epoch; else r(I) per image (:func:`repeat_factors`), at least 1, so
        # an epoch never has fewer batches than ``batches_per_epoch``
        self.repeat_factors = None if repeat_factors is None else torch.as_tensor(repeat_factors, dtype=torch.float32)
        if self.repeat_factors is not None and len(self.repeat_factors) != len(self.widths):
            raise ValueError(f"{len(self.repeat_factors)} repeat factors for {len(self.widths)} images")

    def _epoch_indices(self, generator) -> list:
        """The images of an epoch, with repeats; the first draw from the epoch's generator."""
        if self.repeat_factors is None:
            return list(range(len(self.widths)))
        return repeated_indices(self.repeat_factors, generator)

    def epoch_length(self, epoch) -> int:
        """The number of global batches of ``epoch`` (all the same without repeat factors)."""
        if self.repeat_factors is None:
            return self.batches_per_epoch
        indices = self._epoch_indices(_epoch_generator(self.seed, epoch))
        wide = sum(self.widths[i] >= self.heights[i] for i in indices)
        return wide // self.global_batch + (len(indices) - wide) // self.global_batch

    def _position(self, iteration) -> tuple:
        """``(epoch, batch within it)`` of global batch number ``iteration``."""
        if self.repeat_factors is None:
            return divmod(iteration, self.batches_per_epoch)
        epoch, length = 0, self.epoch_length(0)
        while iteration >= length:
            iteration -= length
            epoch += 1
            length = self.epoch_length(epoch)
        return epoch, iteration

    def epoch_batches(self, epoch) -> list:
        """The global batches of ``epoch`` with each image's augmentation seed."""
        generator = _epoch_generator(self.seed, epoch)
        if self.repeat_factors is None:  # as it always was, so runs of the default sampler resume unchanged
            batches = list(AspectRatioGroupedBatches(self.widths, self.heights, self.global_batch, generator))
            aug_seeds = torch.randint(2 ** 31 - 1, (len(self.widths),), generator=generator).tolist()
            return [[(i, aug_seeds[i]) for i in batch] for batch in batches]
        indices = self._epoch_indices(generator)
        batches = list(AspectRatioGroupedBatches([self.widths[i] for i in indices], [self.heights[i] for i in indices],
                                                 self.global_batch, generator))
        aug_seeds = torch.randint(2 ** 31 - 1, (len(indices),), generator=generator).tolist()  # one per repeat
        return [[(indices[k], aug_seeds[k]) for k in batch] for batch in batches]

    def __iter__(self):
        epoch, skip = self._position(self.start)
        for epoch in itertools.count(epoch):
            for batch in self.epoch_batches(epoch)[skip:]:
                yield batch[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
            skip = 0
