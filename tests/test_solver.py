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


def test_named_schedule_fills_what_the_config_leaves_unset():
    from detection.config import load_config
    cfg = load_config(overrides={"solver": {"schedule": "3x", "ims_per_batch": 16}})
    assert (cfg.solver.base_lr, cfg.solver.max_iter, tuple(cfg.solver.steps)) == (0.02, 270000, (210000, 250000))
    assert cfg.solver.reference_batch_size == 16
    mine = load_config(overrides={"solver": {"schedule": "1x", "max_iter": 1000}})
    assert mine.solver.max_iter == 1000 and tuple(mine.solver.steps) == (60000, 80000)  # explicit keys win
    paper = load_config(overrides={"solver": {"schedule": "paper_coco", "ims_per_batch": 8}})
    assert (paper.solver.base_lr, paper.solver.max_iter, tuple(paper.solver.steps)) == (0.001, 320000, (240000,))
    with pytest.raises(UnknownNameError, match="unknown solver.schedule '1X'"):
        load_config(overrides={"solver": {"schedule": "1X"}})


def test_linear_scaling_rule():
    from detection.engine.solver import scale_to_batch
    one_x = SolverConfig(schedule="1x", ims_per_batch=2, reference_batch_size=16, base_lr=0.02, max_iter=90000,
                         steps=(60000, 80000), warmup_iters=1000, checkpoint_period=5000, eval_period=10000)
    s = scale_to_batch(one_x)
    # 8x fewer images per iteration: 8x lower LR, 8x more iterations
    assert s.base_lr == pytest.approx(0.0025)
    assert (s.max_iter, tuple(s.steps), s.warmup_iters) == (720000, (480000, 640000), 8000)
    assert (s.checkpoint_period, s.eval_period, s.reference_batch_size) == (40000, 80000, 2)
    assert scale_to_batch(s) is s  # saved configs are not scaled twice
    assert scale_to_batch(SolverConfig()) == SolverConfig()  # no reference: unchanged
    bigger = scale_to_batch(SolverConfig(ims_per_batch=32, reference_batch_size=16, eval_period=0))
    assert bigger.base_lr == pytest.approx(0.04) and bigger.max_iter == 45000 and bigger.eval_period == 0


def test_norm_and_bias_weight_decay_groups():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.GroupNorm(2, 4))
    model[0].weight.requires_grad_(False)  # frozen parameters are left out
    opt = build_optimizer(model, SolverConfig(weight_decay=1e-4, weight_decay_norm=0.0, weight_decay_bias=0.0))
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay == {id(model[0].bias): 0.0, id(model[1].weight): 0.0, id(model[1].bias): 0.0,
                     id(model[2].weight): 0.0, id(model[2].bias): 0.0}
    default = build_optimizer(model, SolverConfig(weight_decay=1e-4))
    assert [g["weight_decay"] for g in default.param_groups] == [1e-4]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # LR only, no training here
def test_restored_scheduler_and_optimizer_continue_where_they_were():
    from detection.engine.solver import load_optimizer_state, restore_scheduler
    s = SolverConfig(base_lr=0.1, warmup_iters=4, steps=(6,), gamma=0.1)
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, s)
    sched = build_scheduler(opt, s)
    for _ in range(5):
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        sched.step()
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(3):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    fresh = build_optimizer(model, s)
    load_optimizer_state(fresh, opt.state_dict())
    restored = restore_scheduler(fresh, s, 5)
    again = [fresh.param_groups[0]["lr"]]
    for _ in range(3):
        restored.step()
        again.append(fresh.param_groups[0]["lr"])
    assert again == pytest.approx(lrs) and again[0] == pytest.approx(0.1 * lr_factor(5, s))
    assert torch.equal(fresh.state[model.weight]["momentum_buffer"], opt.state[model.weight]["momentum_buffer"])
    # hyper-parameters follow the current config, not the checkpoint
    changed = SolverConfig(base_lr=0.1, momentum=0.5, warmup_iters=4, steps=(6,))
    other = build_optimizer(model, changed)
    load_optimizer_state(other, opt.state_dict())
    assert other.param_groups[0]["momentum"] == 0.5
