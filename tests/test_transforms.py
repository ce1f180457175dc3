"""The training pipeline: shortest-edge resize (multi-scale), flip, colour jitter, seeded workers."""
import numpy as np
import pytest
import torch

from detection.config import SolverConfig
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.transforms import train_augmentation
from detection.engine.trainer import _loader


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


@pytest.mark.parametrize("min_size, max_size, expected", [
    (96, 1000, (96, 96)),     # 192x192 -> shorter side 96
    (320, 1000, (320, 320)),  # upscaling too
    (320, 256, (256, 256)),   # the longer side caps the scale
])
def test_resize_scales_boxes_and_masks_together(small_shapes, min_size, max_size, expected):
    data = load_dataset("shapes_train")
    plain = DetectionDataset(data, with_masks=True)
    resized = DetectionDataset(data, augment=train_augmentation(min_size, max_size, hflip_prob=0.0),
                               with_masks=True)
    for i in range(3):
        (img, tgt), (rimg, rtgt) = plain[i], resized[i]
        assert tuple(rimg.shape[1:]) == expected and tuple(rtgt["masks"].shape[1:]) == expected
        scale = torch.tensor([expected[1] / img.shape[2], expected[0] / img.shape[1]] * 2)
        assert torch.allclose(rtgt["boxes"], tgt["boxes"] * scale, atol=1e-3)
        assert torch.equal(rtgt["labels"], tgt["labels"])
        for box, mask in zip(rtgt["boxes"].numpy(), rtgt["masks"].numpy()):
            # nearest-neighbour masks stay within a pixel of the scaled box
            assert np.abs(_tight_box(mask) - box).max() <= max(1.0, 0.5 * expected[0] / 192 + 0.5)


def test_multi_scale_draws_every_size_and_is_seeded(small_shapes):
    data = load_dataset("shapes_train")
    sizes = set()
    runs = []
    for _ in range(2):
        dataset = DetectionDataset(data, augment=train_augmentation((96, 128, 160), 1000, seed=7))
        shapes = [tuple(dataset[i][0].shape[1:]) for i in range(24)]
        runs.append(shapes)
        sizes |= {s[0] for s in shapes}
    assert sizes == {96, 128, 160} and runs[0] == runs[1]


def test_colour_jitter_changes_pixels_not_boxes(small_shapes):
    data = load_dataset("shapes_train")
    plain = DetectionDataset(data, augment=train_augmentation(hflip_prob=0.0))
    jitter = DetectionDataset(data, augment=train_augmentation(hflip_prob=0.0, color_jitter=0.4, seed=1))
    changed = 0
    for i in range(5):
        (img, tgt), (jimg, jtgt) = plain[i], jitter[i]
        assert torch.equal(tgt["boxes"], jtgt["boxes"])
        changed += not torch.equal(img, jimg)
    assert changed >= 3  # p=0.8 per image


def test_batches_are_the_same_with_any_number_of_loader_workers(small_shapes):
    data = load_dataset("shapes_train")
    solver = SolverConfig(ims_per_batch=4, seed=3)

    def first_batches(workers):
        dataset = DetectionDataset(data, augment=train_augmentation((96, 160), 1000, seed=solver.seed))
        batches = iter(_loader(dataset, solver, workers, start=0))
        return [[(t["image_id"], tuple(im.shape), float(im.sum())) for im, t in zip(*next(batches))]
                for _ in range(12)]

    a = first_batches(2)
    assert a == first_batches(2) == first_batches(0)  # augmentation is seeded per image, not per worker
    a = [[(i, shape) for i, shape, _ in batch] for batch in a]
    # 12 batches of 4 over 24 images are two epochs: the second is reshuffled and re-augmented
    first, second = sum(a[:6], []), sum(a[6:], [])
    assert sorted(i for i, _ in first) == sorted(i for i, _ in second)
    assert [i for i, _ in first] != [i for i, _ in second]
    assert dict(first) != dict(second)  # some image gets another scale


def test_batches_group_images_of_one_orientation():
    from detection.data.sampler import AspectRatioGroupedBatches
    widths = [100, 50, 100, 50, 100, 50, 100, 100, 50]
    heights = [50, 100, 50, 100, 50, 100, 50, 50, 100]
    sampler = AspectRatioGroupedBatches(widths, heights, 2, torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4  # 5 landscape -> 2 batches, 4 portrait -> 2 batches
    for batch in batches:
        assert len({widths[i] >= heights[i] for i in batch}) == 1
    again = list(AspectRatioGroupedBatches(widths, heights, 2, torch.Generator().manual_seed(0)))
    assert again == batches and len({i for b in batches for i in b}) == 8


def test_training_batches_resume_and_split_over_ranks():
    from detection.data.sampler import TrainingBatches
    widths, heights = [100] * 7 + [50] * 5, [50] * 7 + [100] * 5
    stream = TrainingBatches(widths, heights, 4, seed=1)
    assert stream.batches_per_epoch == 2  # 7 landscape -> 1 batch, 5 portrait -> 1
    whole = [b for b, _ in zip(stream, range(9))]
    # starting at iteration 5 gives the same batches, augmentation seeds included
    assert [b for b, _ in zip(TrainingBatches(widths, heights, 4, seed=1, start=5), range(4))] == whole[5:]
    # rank r of 2 gets images [2r, 2r + 2) of every global batch
    ranks = [[b for b, _ in zip(TrainingBatches(widths, heights, 4, seed=1, rank=r, world_size=2), range(9))]
             for r in range(2)]
    assert [a + b for a, b in zip(*ranks)] == whole
    assert all(len({widths[i] >= heights[i] for i, _ in batch}) == 1 for batch in whole)
    assert whole[0] != whole[2]  # reshuffled and reseeded every epoch
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        TrainingBatches(widths, heights, 4, seed=1, world_size=3)
