"""Image-classification pretraining of a registry backbone (the paper's ImageNet stage, Sec. 3.4).

SGD with momentum 0.9 and weight decay 1e-4 as in the paper; a linear warmup
then cosine decay keeps short runs stable. The result is a state dict with
torchvision parameter names, which ``backbones.build(name, pretrained=PATH)``
loads (the classifier is dropped there when the class count differs).
"""
import math
import os
from pathlib import Path

import torch
from tqdm import tqdm

from .errors import UserError, check_choice
from .pretrained import IMAGENET_MEAN, IMAGENET_STD


def _normalise(images):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def train_classifier(model, train_set, epochs=4, batch_size=64, base_lr=0.1, weight_decay=1e-4,
                     optimizer="sgd", warmup_fraction=0.05, seed=0, num_workers=0, progress=True):
    """Train ``model.classify`` with cross-entropy; returns the per-epoch mean losses.

    ``optimizer="sgd"`` is the paper's recipe; ``"adamw"`` converges in far
    fewer steps, which is what a minutes-long CPU run has.
    """
    if len(train_set) < batch_size:
        raise UserError(f"{len(train_set)} training samples are fewer than one batch of {batch_size}; "
                        f"lower the batch size")
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                                         generator=generator, num_workers=num_workers)
    check_choice("optimizer", optimizer, ("sgd", "adamw"))
    if optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=0.9, weight_decay=weight_decay)
    total = epochs * len(loader)
    warmup = max(1, int(warmup_fraction * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: (it + 1) / warmup if it < warmup else 0.5 * (1 + math.cos(math.pi * it / total)))
    model.train()
    losses = []
    bar = tqdm(total=total, desc="pretrain", disable=not progress, dynamic_ncols=True)
    for _ in range(epochs):
        running = []
        for images, labels in loader:
            loss = torch.nn.functional.cross_entropy(model.classify(_normalise(images)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update(1)
        losses.append(sum(running) / len(running))
    bar.close()
    return losses


@torch.no_grad()
def accuracy(model, dataset, batch_size=128) -> float:
    model.eval()
    correct = 0
    for images, labels in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        correct += (model.classify(_normalise(images)).argmax(1) == labels).sum().item()
    return correct / max(1, len(dataset))


def save_backbone(model, path) -> Path:
    """Write the state dict atomically (torchvision names; loads with weights_only=True)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return path
