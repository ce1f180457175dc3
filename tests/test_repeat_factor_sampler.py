"""data.sampler: repeat_factor (LVIS's repeat-factor sampling): detectron2's factors, exact resume and DDP slices,
stochastic rounding from the epoch's generator, the config keys and check_dataset's class-balance report."""
import json
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from backbones.errors import UserError
from detection.data.records import ImageRecord
from detection.data.sampler import TrainingBatches, category_repeat_factors, repeat_factors


def _record(index, labels, ignore=None, width=100, height=50):
    labels = np.array(labels, np.int64)
    return ImageRecord(image_id=index, file_name=f"{index}.jpg", width=width, height=height,
                       boxes=np.tile(np.array([[1, 1, 9, 9]], np.float32), (len(labels), 1)), labels=labels,
                       ignore=np.zeros(len(labels), bool) if ignore is None else np.array(ignore, bool))


def _detectron2_factors(records, category_ids, threshold):
    """detectron2 0.6's own numbers, on dataset dicts of the records' trainable objects."""
    from detectron2.data.samplers import RepeatFactorTrainingSampler
    dicts = [{"annotations": [{"category_id": category_ids[label - 1]} for label in r.labels[~r.ignore].tolist()]}
             for r in records]
    return RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, threshold)


def _imbalanced():
    """20 images: class 1 in all, class 2 in 5, class 3 in 1 (and crowd-only in another), class 4 nowhere."""
    records = [_record(i, [1] + ([2] if i % 4 == 0 else []), width=100 if i % 3 else 40) for i in range(18)]
    records.append(_record(18, [1, 3, 3]))
    records.append(_record(19, [1, 3], ignore=[False, True]))  # a crowd region of class 3 is not trained on
    return records


def test_factors_are_detectron2s():
    records = _imbalanced()
    frequency, per_class = category_repeat_factors(records, 0.3)
    assert frequency == {1: 1.0, 2: 0.25, 3: 0.05}
    assert per_class == {1: 1.0, 2: pytest.approx(np.sqrt(0.3 / 0.25)), 3: pytest.approx(np.sqrt(6))}
    factors = repeat_factors(records, 0.3)
    assert factors.dtype == torch.float32
    assert torch.equal(factors, _detectron2_factors(records, [1, 2, 3, 4], 0.3))
    assert factors[18].item() == pytest.approx(np.sqrt(6)) and factors[19].item() == 1.0
    assert torch.equal(repeat_factors(records, 0.001), torch.ones(20))  # no class below LVIS's threshold


def test_stochastic_rounding_is_detectron2s():
    """The indices of an epoch are those detectron2's sampler draws from the same generator state."""
    from detectron2.data.samplers import RepeatFactorTrainingSampler
    from detection.data.sampler import repeated_indices
    factors = repeat_factors(_imbalanced(), 0.6)
    theirs = RepeatFactorTrainingSampler(factors, seed=0)
    for seed in range(5):
        expected = theirs._get_epoch_indices(torch.Generator().manual_seed(seed)).tolist()
        assert repeated_indices(factors, torch.Generator().manual_seed(seed)) == expected
        assert len(expected) > 20


def test_factors_on_the_shapes_set_match_detectron2(small_shapes):
    from detection.data.catalog import load_dataset
    data = load_dataset("shapes_train")
    for threshold in (0.001, 0.3, 0.6, 1.0):
        factors = repeat_factors(data.records, threshold)
        assert torch.equal(factors, _detectron2_factors(data.records, data.category_ids, threshold))
    assert (repeat_factors(data.records, 0.6) > 1).sum() > 0


def test_stochastic_rounding_per_epoch():
    records = _imbalanced()
    factors = repeat_factors(records, 0.3)  # image 18: sqrt(6) = 2.449...
    widths, heights = [r.width for r in records], [r.height for r in records]
    sampler = TrainingBatches(widths, heights, 2, seed=3, repeat_factors=factors)
    seen, lengths = [], set()
    for epoch in range(200):
        indices = [i for batch in sampler.epoch_batches(epoch) for i, _ in batch]
        assert len(indices) == 2 * sampler.epoch_length(epoch)
        seen.append(Counter(indices))
        lengths.add(sampler.epoch_length(epoch))
    assert len(lengths) > 1  # epochs differ in length
    rare = [c[18] for c in seen]
    assert set(rare) <= {1, 2, 3} and 2.3 < np.mean(rare) < 2.6  # floor(r) or floor(r) + 1 when its batch fills
    # an image with r = 1 is never repeated within an epoch
    assert max(c[1] for c in seen) == 1
    # a repeated image gets its own augmentation seed each time
    batch_seeds = [s for batch in sampler.epoch_batches(0) for i, s in batch if i == 18]
    assert len(set(batch_seeds)) == len(batch_seeds)


def test_resume_and_ranks_see_the_same_images():
    records = _imbalanced()
    factors = repeat_factors(records, 0.6)
    widths, heights = [r.width for r in records], [r.height for r in records]
    stream = TrainingBatches(widths, heights, 4, seed=1, repeat_factors=factors)
    whole = [b for b, _ in zip(stream, range(40))]
    boundaries = np.cumsum([stream.epoch_length(e) for e in range(6)])
    assert len(set(np.diff(boundaries))) > 1 and boundaries[3] < 40  # several epochs of different lengths
    for start in (1, int(boundaries[0]), int(boundaries[1]) + 1, 33):  # mid-epoch and at an epoch's start
        resumed = TrainingBatches(widths, heights, 4, seed=1, start=start, repeat_factors=factors)
        assert [b for b, _ in zip(resumed, range(40 - start))] == whole[start:]
    ranks = [[b for b, _ in zip(TrainingBatches(widths, heights, 4, seed=1, rank=r, world_size=2,
                                                repeat_factors=factors), range(40))] for r in range(2)]
    assert [a + b for a, b in zip(*ranks)] == whole
    assert all(len({widths[i] >= heights[i] for i, _ in batch}) == 1 for batch in whole)
    with pytest.raises(ValueError, match="3 repeat factors for 20 images"):
        TrainingBatches(widths, heights, 4, seed=1, repeat_factors=[1.0, 1.0, 2.0])


def test_config_keys_and_training_wiring():
    from detection.config import load_config
    from detection.engine.trainer import _loader
    from detection.run.data import training_repeat_factors
    from detection.config import SolverConfig
    cfg = load_config(None, {"data": {"sampler": "repeat_factor", "repeat_threshold": 0.3}})
    assert (cfg.data.sampler, cfg.data.repeat_threshold) == ("repeat_factor", 0.3)
    assert load_config().data.sampler == "default" and load_config().data.repeat_threshold == 0.001
    with pytest.raises(UserError, match="data.sampler"):
        load_config(None, {"data": {"sampler": "repeat"}})
    with pytest.raises(UserError, match="repeat_threshold"):
        load_config(None, {"data": {"repeat_threshold": 0}})

    class Dataset(list):
        records = _imbalanced()
    dataset = Dataset(range(20))
    factors = training_repeat_factors(cfg, dataset)
    assert torch.equal(factors, repeat_factors(dataset.records, 0.3))
    assert training_repeat_factors(load_config(), dataset) is None
    solver = SolverConfig(ims_per_batch=2, seed=0)
    assert torch.equal(_loader(dataset, solver, 0, 0, factors).batch_sampler.repeat_factors, factors)
    assert _loader(dataset, solver, 0, 0).batch_sampler.repeat_factors is None


def test_check_dataset_reports_class_balance(tmp_path, capsys):
    from detection.cli import check_dataset
    images = [f"{i}.jpg" for i in range(10)]
    for name in images:
        cv2.imwrite(str(tmp_path / name), np.zeros((40, 40, 3), np.uint8))
    annotations = [{"id": i + 1, "image_id": i, "category_id": 1, "bbox": [2, 2, 10, 10], "iscrowd": 0}
                   for i in range(9)]
    annotations.append({"id": 20, "image_id": 0, "category_id": 2, "bbox": [2, 2, 10, 10], "iscrowd": 0})
    annotations.append({"id": 21, "image_id": 1, "category_id": 2, "bbox": [2, 2, 10, 10], "iscrowd": 1})
    gt = {"images": [{"id": i, "file_name": f, "width": 40, "height": 40} for i, f in enumerate(images)],
          "annotations": annotations, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "d.yaml").write_text("format: coco\nannotations: gt.json\nimages: .\n")
    check_dataset.main([str(tmp_path / "d.yaml"), "--repeat-threshold", "0.4"])
    out = capsys.readouterr().out
    # image 9 has no object: 9 training images; dog in 1 of them (the crowd one does not count): sqrt(0.4 / (1/9))
    assert ("  class balance over the 9 images with trainable objects (data.sampler: repeat_factor, "
            "data.repeat_threshold: 0.4):\n"
            "    cat  in 100.00% of images  r = 1.00\n"
            "    dog  in 11.11% of images  r = 1.90\n"
            "    1 of 9 images have r > 1; an epoch shows 9.9 images on average (9 without repeats)\n") in out
    with pytest.raises(SystemExit) as exit_:
        check_dataset.main([str(tmp_path / "d.yaml"), "--repeat-threshold", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: --repeat-threshold 0: must be in (0, 1]\n"
