"""Classification pretraining on object crops, and loading its weights into a backbone."""
import numpy as np
import torch

import backbones
from backbones.pretraining import accuracy, save_backbone, train_classifier
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.object_crops import ObjectCrops


def _crops(split, **kw):
    return ObjectCrops(DetectionDataset(load_dataset(f"shapes_{split}")), **kw)


def test_one_sample_per_object_centred_on_its_box(small_shapes):
    crops = _crops("train", size=64, context=0.0)
    source = crops.source
    assert len(crops) == sum(len(source.annotations(i)["boxes"]) for i in source.image_ids)
    image, label = crops[0]
    image_id, (x1, y1, x2, y2), first_label = crops.items[0]
    assert image.shape == (3, 64, 64) and label == first_label - 1
    # with no context the crop's centre pixel is the box centre pixel of the image
    full = source.read_image(image_id)
    centre = full[int((y1 + y2) / 2), int((x1 + x2) / 2)] / 255
    assert np.allclose(image[:, 32, 32].numpy(), centre, atol=0.1)


def test_training_lowers_the_loss_and_weights_load_into_the_registry(small_shapes, tmp_path):
    torch.manual_seed(0)
    crops = _crops("train", size=32)
    model = backbones.build("resnet18", num_classes=5)
    losses = train_classifier(model, crops, epochs=3, batch_size=8, base_lr=1e-3, optimizer="adamw",
                              progress=False)
    assert losses[-1] < losses[0]
    path = save_backbone(model, tmp_path / "r18.pth")
    loaded = backbones.build("resnet18", pretrained=str(path))  # 1000-way fc: the 5-way one is dropped
    assert torch.equal(loaded.layer4[1].conv2.weight, model.layer4[1].conv2.weight)
    assert torch.equal(loaded.bn1.running_mean, model.bn1.running_mean)
    assert loaded.fc.out_features == 1000


def test_accuracy_counts_correct_predictions():
    class Fixed(torch.nn.Module):  # predicts classes 0, 1, 2, 2 for the four images in order
        def classify(self, x):
            return torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 2])[:len(x)], 3).float()
    data = list(zip(torch.zeros(4, 3, 2, 2), [0, 1, 1, 2]))
    assert accuracy(Fixed(), data) == 0.75
