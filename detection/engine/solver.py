"""SGD with linear warmup and step decay: the schedule of the paper and of Detectron."""
import torch

from backbones.errors import check_choice


OPTIMIZERS = ("sgd", "adamw")


def build_optimizer(model, solver):
    check_choice("optimizer", solver.optimizer, OPTIMIZERS)
    params = [p for p in model.parameters() if p.requires_grad]
    if solver.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=solver.base_lr, weight_decay=solver.weight_decay)
    return torch.optim.SGD(params, lr=solver.base_lr, momentum=solver.momentum,
                           weight_decay=solver.weight_decay)


def lr_factor(iteration, solver) -> float:
    """Multiplier of base_lr at ``iteration``: linear warmup, then x gamma at each step."""
    decay = solver.gamma ** sum(iteration >= s for s in solver.steps)
    if iteration < solver.warmup_iters:
        alpha = iteration / solver.warmup_iters
        return decay * (solver.warmup_factor * (1 - alpha) + alpha)
    return decay


def build_scheduler(optimizer, solver):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, solver))
