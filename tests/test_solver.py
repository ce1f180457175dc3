"""Learning-rate schedule and optimizer choice."""
import pytest
import torch

from backbones.errors import UnknownNameError
from detection.config import SolverConfig
from detection.engine.solver import build_optimizer, build_scheduler, lr_factor


def test_warmup_then_steps():
    s = SolverConfig(base_lr=0.02, warmup_iters=10, warmup_factor=0.001, steps=(20, 30), gamma=0.1)
    assert lr_factor(0, s) == pytest.approx(0.001)
    assert lr_factor(5, s) == pytest.approx(0.001 * 0.5 + 0.5)
    assert [lr_factor(i, s) for i in (10, 19, 20, 29, 30, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_scheduler_drives_the_optimizer():
    model = torch.nn.Linear(2, 2)
    s = SolverConfig(base_lr=0.5, warmup_iters=0, steps=(2,), gamma=0.5)
    opt = build_optimizer(model, s)
    sched = build_scheduler(opt, s)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [0.5, 0.5, 0.25, 0.25]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9


def test_optimizer_choice():
    model = torch.nn.Linear(2, 2)
    assert isinstance(build_optimizer(model, SolverConfig(optimizer="adamw")), torch.optim.AdamW)
    with pytest.raises(UnknownNameError, match="unknown optimizer 'adam'.*adamw, sgd"):
        build_optimizer(model, SolverConfig(optimizer="adam"))
