"""COCO-format loading, augmentation consistency and the dataset catalog."""
import json

import numpy as np
import pytest
import torch

from backbones.errors import UnknownNameError, UserError
from detection.data.catalog import evaluation_split, get_dataset_spec
from detection.data.coco_format import CocoFormatDataset
from detection.data.transforms import train_augmentation


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_catalog_pairs_and_generation_on_first_use(small_shapes):
    train, test = get_dataset_spec("shapes", "train"), get_dataset_spec("shapes", "test")
    assert (train.name, test.name) == ("shapes_train", "shapes_val")
    assert train.annotations == small_shapes / "shapes" / "instances_train.json"
    assert get_dataset_spec("shapes_val").name == "shapes_val"


def test_evaluation_split_of_a_training_set():
    assert evaluation_split("shapes") == "shapes_val"
    assert evaluation_split("shapes_train") == "shapes_val"
    assert evaluation_split("coco_2017_train") == "coco_2017_val"
    assert evaluation_split("shapes_val") == "shapes_val"


def test_unknown_and_missing_datasets(tmp_path, monkeypatch):
    with pytest.raises(UnknownNameError, match="unknown dataset 'shape'. Did you mean 'shapes'"):
        get_dataset_spec("shape")
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path))
    with pytest.raises(UserError, match=r"coco_2017_val: .*instances_val2017.json does not exist"):
        get_dataset_spec("coco_2017_val")


def test_targets_match_the_annotations(small_shapes):
    spec = get_dataset_spec("shapes_train")
    dataset = CocoFormatDataset(spec.annotations, spec.images)
    coco = json.loads(spec.annotations.read_text())
    assert dataset.class_names == [c["name"] for c in coco["categories"]]
    image, target = dataset[0]
    image_id = dataset.image_ids[0]
    anns = [a for a in coco["annotations"] if a["image_id"] == image_id]
    assert image.dtype == torch.float32 and image.shape == (3, 192, 192) and 0 <= image.min() <= image.max() <= 1
    want = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
    assert target["boxes"].tolist() == want
    assert target["labels"].tolist() == [a["category_id"] for a in anns]  # ids are already 1..5
    for box, mask in zip(target["boxes"].tolist(), target["masks"].numpy()):
        assert _tight_box(mask) == box


def test_flip_keeps_boxes_masks_and_image_consistent(small_shapes):
    spec = get_dataset_spec("shapes_train")
    plain = CocoFormatDataset(spec.annotations, spec.images)
    flipped = CocoFormatDataset(spec.annotations, spec.images, augment=train_augmentation(hflip_prob=1.0))
    for i in range(3):
        (img, tgt), (fimg, ftgt) = plain[i], flipped[i]
        assert torch.equal(fimg, img.flip(-1))
        assert torch.equal(ftgt["masks"], tgt["masks"].flip(-1))
        w = img.shape[-1]
        expected = tgt["boxes"][:, [2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) + torch.tensor([w, 0, w, 0])
        assert torch.allclose(ftgt["boxes"], expected)
        # albumentations round-trips boxes through normalised float32 coordinates (~1e-5 px)
        for box, mask in zip(ftgt["boxes"].tolist(), ftgt["masks"].numpy()):
            assert np.allclose(_tight_box(mask), box, atol=1e-3)


def test_bad_files_are_named(tmp_path, small_shapes):
    spec = get_dataset_spec("shapes_val")
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [,]}')
    with pytest.raises(UserError, match=r"broken.json is not valid COCO JSON: .*line 1 column 13"):
        CocoFormatDataset(broken, spec.images)
    images = tmp_path / "images"
    images.mkdir()
    dataset = CocoFormatDataset(spec.annotations, images)
    first = dataset.coco.imgs[dataset.image_ids[0]]["file_name"]
    (images / first).write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=f"cannot read image .*{first} \\(missing or corrupt\\)"):
        dataset[0]
