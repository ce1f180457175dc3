"""The classification training loop of a registry backbone (the paper's ImageNet stage, Sec. 3.4).

He et al. 2015, Sec. 3.4: SGD with a mini-batch of 256, momentum 0.9 and
weight decay 1e-4; the learning rate starts from 0.1 and is divided by 10
when the error plateaus, for up to 60e4 iterations; scale and colour
augmentation (:mod:`backbones.classification_data`); 10-crop testing.
:func:`fit_classifier` is the loop (schedules, validation, exact resume);
:func:`pretraining.run.run_pretraining` runs a whole
:class:`~pretraining.config.PretrainConfig` around it.

The result is a state dict with torchvision parameter names, which
``backbones.build(name, pretrained=PATH)`` loads (the classifier is dropped
there when the class count differs).
"""
import math
from pathlib import Path

import torch
from tqdm import tqdm

from backbones.atomic_files import save_torch
from backbones.errors import UserError, check_choice
from backbones.pretrained import IMAGENET_MEAN, IMAGENET_STD

from .config import OPTIMIZERS, SCHEDULES

CHECKPOINT_FORMAT = "resnet-detection-transfer/pretrain-checkpoint/v1"


def normalise(images, model=None):
    """``(images - mean) / std`` with the model's ``pixel_mean``/``pixel_std`` (RGB, [0, 1]; default ImageNet's)."""
    mean = torch.tensor(getattr(model, "pixel_mean", IMAGENET_MEAN), dtype=images.dtype, device=images.device)
    std = torch.tensor(getattr(model, "pixel_std", IMAGENET_STD), dtype=images.dtype, device=images.device)
    return (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def _device_of(model):
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _lr_factor(schedule, total, warmup, iters_per_epoch, gamma, steps):
    """The LR multiplier of iteration ``it`` for the per-iteration schedules (cosine, step)."""
    def warm(it):
        return (it + 1) / warmup if it < warmup else None
    if schedule == "cosine":  # linear warmup, then cosine decay over all iterations
        return lambda it: warm(it) or 0.5 * (1 + math.cos(math.pi * it / total))
    return lambda it: (warm(it) or 1.0) * gamma ** sum(it >= s * iters_per_epoch for s in steps)


def read_pretrain_checkpoint(path) -> dict:
    """A checkpoint written by :func:`fit_classifier`, loaded with ``weights_only=True``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path} is not a pretraining checkpoint that can be loaded safely "
                        f"({type(err).__name__}); delete it or pass --overwrite to start over") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a pretraining checkpoint of this toolkit; delete it or pass --overwrite")
    return payload


def fit_classifier(model, train_set, epochs=4, batch_size=64, base_lr=0.1, weight_decay=1e-4, optimizer="sgd",
                   warmup_fraction=0.05, seed=0, num_workers=0, progress=True, *, momentum=0.9,
                   schedule="cosine", gamma=0.1, steps=(), plateau_patience=5, plateau_threshold=1e-3,
                   min_lr=0.0, val_set=None, eval_period=1, eval_batch_size=None, device=None,
                   checkpoint=None, resume=False, checkpoint_extra=None, on_epoch_end=None):
    """Train ``model.classify`` with cross-entropy; returns one record per epoch (all epochs, resumed ones too).

    A record holds ``epoch`` (1-based), ``loss`` (the epoch's mean), ``lr`` (its last), ``train_top1`` (the
    accuracy on the epoch's training batches as they were trained), and with a
    ``val_set``, every ``eval_period`` epochs and after the last, ``top1`` (and ``top5`` with 5+ classes).

    Schedules: ``cosine`` (linear warmup over ``warmup_fraction`` of the iterations, then cosine decay),
    ``step`` (warmup, then times ``gamma`` at each epoch in ``steps``), ``plateau`` (times ``gamma`` when
    the validation top-1 error has not fallen by ``plateau_threshold`` for ``plateau_patience``
    validated epochs, not before ``min_lr``; needs ``val_set``).

    ``checkpoint``: a path rewritten atomically after every epoch with the weights, optimizer, schedule,
    data order, RNG states and records (plus ``checkpoint_extra``); ``resume=True`` continues from it
    when it exists, reaching the weights an uninterrupted run reaches. ``on_epoch_end(records)`` is
    called after each epoch's checkpoint.
    """
    if len(train_set) < batch_size:
        raise UserError(f"{len(train_set)} training samples are fewer than one batch of {batch_size}; "
                        f"lower the batch size")
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("schedule", schedule, SCHEDULES)
    if schedule == "plateau" and (val_set is None or not eval_period):
        raise UserError("the plateau schedule lowers the lr when the validation error stops falling; "
                        "it needs a validation set evaluated every epoch or few (eval period >= 1)")
    device = torch.device(device) if device is not None else _device_of(model)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                                         generator=generator, num_workers=num_workers,
                                         pin_memory=device.type == "cuda")
    if optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=momentum, weight_decay=weight_decay)
    iters = len(loader)
    total = epochs * iters
    if schedule == "plateau":  # the optimizer's lr is the state; warmup (if any) sets it directly
        warmup = int(warmup_fraction * total)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=gamma, patience=plateau_patience, threshold=plateau_threshold,
            threshold_mode="abs", min_lr=min_lr)
    else:
        warmup = max(1, int(warmup_fraction * total))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_factor(schedule, total, warmup, iters, gamma, tuple(steps)))

    records, start = [], 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = read_pretrain_checkpoint(checkpoint)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise UserError(f"checkpoint {checkpoint} holds another model than the one configured "
                            f"({str(err).splitlines()[0]}); resume with the run's own settings or pass "
                            f"--overwrite to start over") from None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if state["data_state"] is not None and hasattr(train_set, "load_state_dict"):
            train_set.load_state_dict(state["data_state"])
        records, start = list(state["records"]), int(state["epoch"])

    model.train()
    bar = tqdm(total=total, initial=min(total, start * iters), desc="pretrain", disable=not progress,
               dynamic_ncols=True)
    try:
        for epoch in range(start, epochs):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            running, lr, hits, seen = [], optimizer.param_groups[0]["lr"], 0, 0
            for i, (images, labels) in enumerate(loader):
                it = epoch * iters + i
                if schedule == "plateau" and it <= warmup and warmup:
                    for group in optimizer.param_groups:
                        group["lr"] = base_lr * min(1.0, (it + 1) / warmup)
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                logits = model.classify(normalise(images, model))
                loss = torch.nn.functional.cross_entropy(logits, labels)
                value = loss.item()
                hits += (logits.detach().argmax(1) == labels).sum().item()
                seen += len(labels)
                if not math.isfinite(value):
                    raise UserError(f"the loss became {value} at epoch {epoch + 1}, iteration {i + 1} "
                                    f"(lr {optimizer.param_groups[0]['lr']:.3g}); lower the learning rate "
                                    f"(solver.base_lr) or add warmup (solver.warmup_fraction)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                if schedule != "plateau":
                    scheduler.step()
                running.append(value)
                bar.set_postfix(loss=f"{value:.3f}")
                bar.update(1)
            # train_top1: on the epoch's augmented crops as they were trained (train mode), like Fig. 4's
            # training error; it lags the end-of-epoch weights by half an epoch
            record = {"epoch": epoch + 1, "loss": sum(running) / len(running), "lr": lr, "train_top1": hits / seen}
            if val_set is not None and eval_period and ((epoch + 1) % eval_period == 0 or epoch + 1 == epochs):
                record.update(evaluate(model, val_set, batch_size=eval_batch_size or batch_size, device=device,
                                       num_workers=num_workers))
                model.train()
                if schedule == "plateau" and (epoch + 1) * iters > warmup:  # no verdicts during warmup
                    scheduler.step(1.0 - record["top1"])
            records.append(record)
            if checkpoint is not None:
                save_torch({
                    "format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "epochs": epochs, "records": records,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "data_state": train_set.state_dict() if hasattr(train_set, "state_dict") else None,
                    **(checkpoint_extra or {})}, checkpoint)
            if on_epoch_end is not None:
                on_epoch_end(records)
    finally:
        bar.close()  # before any error message
    return records


def train_classifier(model, train_set, epochs=4, batch_size=64, base_lr=0.1, weight_decay=1e-4,
                     optimizer="sgd", warmup_fraction=0.05, seed=0, num_workers=0, progress=True, **options):
    """Train ``model.classify`` with cross-entropy; returns the per-epoch mean losses.

    ``optimizer="sgd"`` is the paper's recipe; ``"adamw"`` converges in far
    fewer steps, which is what a minutes-long CPU run has. ``options``: the
    keyword-only arguments of :func:`fit_classifier` (schedule, validation, checkpoints).
    """
    records = fit_classifier(model, train_set, epochs=epochs, batch_size=batch_size, base_lr=base_lr,
                             weight_decay=weight_decay, optimizer=optimizer, warmup_fraction=warmup_fraction,
                             seed=seed, num_workers=num_workers, progress=progress, **options)
    return [r["loss"] for r in records]


@torch.no_grad()
def _scores(model, dataset, batch_size, device, num_workers=0):
    """Yields (scores, labels) per batch: logits for (N, 3, H, W) batches; for multi-crop batches
    (N, K, 3, H, W), the softmax probabilities averaged over the K crops."""
    model.eval()
    for images, labels in torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        images = images.to(device)
        if images.dim() == 5:
            n, k = images.shape[:2]
            logits = model.classify(normalise(images.flatten(0, 1), model))
            yield logits.softmax(1).view(n, k, -1).mean(1), torch.as_tensor(labels).to(device)
        else:
            yield model.classify(normalise(images, model)), torch.as_tensor(labels).to(device)


@torch.no_grad()
def predict_scores(model, dataset, batch_size=128, device=None) -> torch.Tensor:
    """(N, classes): logits, or for multi-crop samples (10-crop) the mean of the crops' softmax."""
    return torch.cat([s.cpu() for s, _ in _scores(model, dataset, batch_size, device or _device_of(model))])


@torch.no_grad()
def evaluate(model, dataset, batch_size=128, device=None, num_workers=0) -> dict:
    """``{"top1": ..}`` and, with 5 or more classes, ``"top5"`` (fractions), over ``dataset``."""
    correct1 = correct5 = count = classes = 0
    for scores, labels in _scores(model, dataset, batch_size, device or _device_of(model), num_workers):
        classes = scores.shape[1]
        correct1 += (scores.argmax(1) == labels).sum().item()
        if classes >= 5:
            correct5 += (scores.topk(5, dim=1).indices == labels[:, None]).any(1).sum().item()
        count += len(labels)
    result = {"top1": correct1 / max(1, count)}
    if classes >= 5:
        result["top5"] = correct5 / max(1, count)
    return result


def accuracy(model, dataset, batch_size=128) -> float:
    """Top-1 accuracy (a fraction) of ``model.classify`` over ``dataset``."""
    return evaluate(model, dataset, batch_size=batch_size)["top1"]


def save_backbone(model, path) -> Path:
    """Write the state dict atomically (torchvision names, CPU tensors; loads with weights_only=True)."""
    return save_torch({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
