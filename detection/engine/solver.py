"""Optimizer and learning-rate schedule: the paper's SGD recipe and Detectron's named schedules.

A named schedule (``solver.schedule``) is a recipe written for a reference
batch size; the linear scaling rule (Goyal et al.) adapts it to the batch
actually used: with ``k = ims_per_batch / reference_batch_size`` the learning
rate is multiplied by ``k`` and every iteration count divided by ``k``, so
the run sees the same number of epochs at the same per-image step size.
"""
import dataclasses

import torch
from torchvision.ops.misc import FrozenBatchNorm2d

from backbones.errors import check_choice

OPTIMIZERS = ("sgd", "adamw")

# Each schedule is written for ``reference_batch_size`` images per iteration; keys the user
# sets explicitly win over these.
SCHEDULES = {
    # Detectron / detectron2 schedules: 16 images per iteration, about 12 (1x), 24 (2x), 37 (3x) COCO epochs
    "1x": dict(base_lr=0.02, max_iter=90000, steps=(60000, 80000), warmup_iters=1000, reference_batch_size=16),
    "2x": dict(base_lr=0.02, max_iter=180000, steps=(120000, 160000), warmup_iters=1000, reference_batch_size=16),
    "3x": dict(base_lr=0.02, max_iter=270000, steps=(210000, 250000), warmup_iters=1000, reference_batch_size=16),
    # The paper's COCO recipe (appendix A): 8 GPUs, lr 0.001 for 240k iterations then 0.0001 for 80k.
    # (The paper trained RPN and Fast R-CNN in alternating steps; here the same schedule drives joint training.)
    "paper_coco": dict(base_lr=0.001, max_iter=320000, steps=(240000,), warmup_iters=0, reference_batch_size=8),
    # The paper follows Faster R-CNN [32] on VOC: one image per iteration, lr 0.001 for 60k then 0.0001 for 20k.
    "paper_voc": dict(base_lr=0.001, max_iter=80000, steps=(60000,), warmup_iters=0, reference_batch_size=1),
}

# iteration counts the linear scaling rule divides by k
_ITERATION_KEYS = ("max_iter", "warmup_iters", "checkpoint_period", "eval_period")


def apply_schedule(values: dict) -> dict:
    """Solver settings with the named schedule's values filled in where ``values`` leaves them unset."""
    name = values.get("schedule")
    if name is None:
        return values
    check_choice("solver.schedule", name, SCHEDULES)
    return {**SCHEDULES[name], **values}


def scale_to_batch(solver):
    """The linear scaling rule: ``solver`` adapted from ``reference_batch_size`` to ``ims_per_batch``.

    Returns the solver unchanged when no reference is set or the sizes agree;
    otherwise a copy whose reference equals its batch, so scaling twice is a no-op.
    """
    ref = solver.reference_batch_size
    if not ref or ref == solver.ims_per_batch:
        return solver
    k = solver.ims_per_batch / ref
    scaled = {key: max(1, round(getattr(solver, key) / k)) if getattr(solver, key) else getattr(solver, key)
              for key in _ITERATION_KEYS}
    return dataclasses.replace(solver, base_lr=solver.base_lr * k, steps=tuple(round(s / k) for s in solver.steps),
                               reference_batch_size=solver.ims_per_batch, **scaled)


def _is_norm(module) -> bool:
    return isinstance(module, (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)) \
        or isinstance(module, FrozenBatchNorm2d) or type(module).__name__ == "FrozenBatchNorm2d"  # detectron2's


def parameter_groups(model, solver) -> list:
    """Trainable parameters grouped by weight decay: norm layers and biases may have their own (detectron2's)."""
    decay_of = {"norm": solver.weight_decay if solver.weight_decay_norm is None else solver.weight_decay_norm,
                "bias": solver.weight_decay if solver.weight_decay_bias is None else solver.weight_decay_bias,
                "other": solver.weight_decay}
    groups, seen = {}, set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            kind = "norm" if _is_norm(module) else "bias" if name == "bias" else "other"
            groups.setdefault(decay_of[kind], []).append(param)
    return [{"params": params, "weight_decay": decay} for decay, params in groups.items()]


def build_optimizer(model, solver):
    check_choice("optimizer", solver.optimizer, OPTIMIZERS)
    groups = parameter_groups(model, solver)
    if solver.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=solver.base_lr, weight_decay=solver.weight_decay)
    return torch.optim.SGD(groups, lr=solver.base_lr, momentum=solver.momentum, weight_decay=solver.weight_decay)


def lr_factor(iteration, solver) -> float:
    """Multiplier of base_lr at ``iteration``: linear warmup, then x gamma at each step."""
    decay = solver.gamma ** sum(iteration >= s for s in solver.steps)
    if iteration < solver.warmup_iters:
        alpha = iteration / solver.warmup_iters
        return decay * (solver.warmup_factor * (1 - alpha) + alpha)
    return decay


def build_scheduler(optimizer, solver):
    # a lambda on purpose: LambdaLR saves only its position, so a resumed run follows the
    # schedule of its current config (e.g. a longer max_iter), not a copy frozen in the checkpoint
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, solver))


def restore_scheduler(optimizer, solver, iteration):
    """A scheduler at ``iteration`` of the current config's schedule (the LR is a function of the iteration)."""
    for group in optimizer.param_groups:
        group["initial_lr"] = solver.base_lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, solver), last_epoch=iteration - 1)


def load_optimizer_state(optimizer, state):
    """Momentum buffers and step counts from ``state``; hyper-parameters stay those of the current config."""
    settings = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, values in zip(optimizer.param_groups, settings):
        group.update(values)
