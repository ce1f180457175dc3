"""The training engine: exact resume after Ctrl-C, checkpoints kept, evaluation, failures, precision."""
import json
import os
import signal

import pytest
import torch

from backbones.errors import UserError
from detection.config import RuntimeConfig, SolverConfig
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.data.transforms import train_augmentation
from detection.detector import build_detector
from detection.engine.checkpoint import read_checkpoint
from detection.engine.precision import Precision
from detection.engine.trainer import NonFiniteLossError, train

TINY = dict(backbone="resnet18", neck="fpn", num_classes=5, pretrained="none", min_size=96, max_size=96,
            rpn_post_nms_top_n_train=100, rpn_post_nms_top_n_test=50, box_batch_size_per_image=32,
            box_representation_size=32, fpn_channels=32)


def _model(seed=0, **options):
    torch.manual_seed(seed)
    model = build_detector(**{**TINY, **options})
    return model


def _solver(**options):
    return SolverConfig(**{**dict(ims_per_batch=2, base_lr=0.01, max_iter=6, warmup_iters=2, steps=(4,),
                                  checkpoint_period=3, log_period=1, seed=5), **options})


class _SignalAt(torch.utils.data.Dataset):
    """The wrapped dataset, sending SIGINT to this process while loading the ``at``-th item: Ctrl-C mid-run."""

    def __init__(self, dataset, at):
        self.dataset, self.at, self.calls = dataset, at, 0
        self.records, self.class_names, self.category_ids = dataset.records, dataset.class_names, dataset.category_ids

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, item):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.dataset[item]


@pytest.fixture
def shapes_train(small_shapes):
    return DetectionDataset(load_dataset("shapes_train"), augment=train_augmentation((80, 96), 96, seed=5))


def _weights(path):
    return read_checkpoint(path)["model"]


def _assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=0, atol=atol), key


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_reaches_the_uninterrupted_weights(shapes_train, tmp_path, capsys):
    whole = train(_model(), shapes_train, _solver(), tmp_path / "whole", progress=False)
    assert whole.stopped_by is None and whole.checkpoint.name == "model_final.pth"

    # Ctrl-C while the 4th image (2nd batch) loads: iteration 2 completes, is saved, and the run stops
    interrupted = train(_model(), _SignalAt(shapes_train, at=4), _solver(), tmp_path / "cut", progress=False,
                        resume_command="python tools/train_det.py --output cut --resume")
    printed = capsys.readouterr().out
    assert interrupted.stopped_by == "SIGINT" and interrupted.iteration == 2
    assert interrupted.checkpoint.name == "model_0000002.pth" and interrupted.checkpoint.is_file()
    assert "resume with: python tools/train_det.py --output cut --resume" in printed
    assert (tmp_path / "cut" / "last_checkpoint").read_text().strip() == "model_0000002.pth"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    resumed = train(_model(seed=99), shapes_train, _solver(), tmp_path / "cut", progress=False, resume=True)
    assert resumed.iteration == 6
    _assert_same_weights(_weights(resumed.checkpoint), _weights(whole.checkpoint), atol=1e-6)
    # the log reads as one run: every iteration once
    logged = [json.loads(line)["iteration"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5, 6]
    state = read_checkpoint(resumed.checkpoint)["training_state"]
    assert state["world_size"] == 1 and len(state["rng"]) == 1 and state["optimizer"]["state"]


@pytest.mark.slow
def test_resume_with_data_workers_and_a_longer_schedule(shapes_train, tmp_path):
    """Resuming past the old max_iter continues the data order and LR of one long run."""
    long_run = train(_model(), shapes_train, _solver(max_iter=8), tmp_path / "long", num_workers=2, progress=False)
    train(_model(), shapes_train, _solver(max_iter=5), tmp_path / "short", num_workers=2, progress=False)
    extended = train(_model(), shapes_train, _solver(max_iter=8), tmp_path / "short", num_workers=0,
                     progress=False, resume=True)
    _assert_same_weights(_weights(extended.checkpoint), _weights(long_run.checkpoint), atol=1e-6)
    with pytest.raises(UserError, match="at iteration 8, the run ends at solver.max_iter=8; raise it"):
        train(_model(), shapes_train, _solver(max_iter=8), tmp_path / "short", progress=False, resume=True)


def test_keeps_the_last_k_periodic_checkpoints(shapes_train, tmp_path):
    train(_model(), shapes_train, _solver(max_iter=5, checkpoint_period=1, keep_last=2), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == [
        "model_0000003.pth", "model_0000004.pth", "model_final.pth"]
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_final.pth"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_evaluates_during_training_and_keeps_the_best(small_shapes, shapes_train, tmp_path):
    val = DetectionDataset(load_dataset("shapes_val"))
    result = train(_model(), shapes_train, _solver(max_iter=4, eval_period=2), tmp_path, eval_dataset=val,
                   progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/bbox_AP" in r]  # shapes is COCO JSON: COCO box AP
    assert [r["iteration"] for r in evals] == [2, 4]
    best = max(evals, key=lambda r: r["eval/bbox_AP"])
    assert result.best == {"metric": "eval/bbox_AP", "value": best["eval/bbox_AP"], "iteration": best["iteration"]}
    assert read_checkpoint(tmp_path / "model_best.pth")["iteration"] == best["iteration"]
    assert read_checkpoint(tmp_path / "model_final.pth")["training_state"]["best"] == result.best
    assert (tmp_path / "training_curves.png").stat().st_size > 1000
    assert list(tmp_path.glob("events.out.tfevents.*"))


def _nan_objectness_at(model, call):
    """``model`` whose RPN objectness loss is nan at its ``call``-th computation."""
    original = model.rpn.compute_loss
    calls = []

    def compute_loss(*args):
        objectness, box = original(*args)
        calls.append(1)
        return (objectness * float("nan") if len(calls) == call else objectness), box
    model.rpn.compute_loss = compute_loss
    return model


def test_a_non_finite_loss_names_iteration_and_term_and_keeps_the_last_checkpoint(shapes_train, tmp_path):
    model = _nan_objectness_at(_model(), 3)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan \(loss_objectness\) at iteration 3; "
                                                 r"the last checkpoint is intact"):
        train(model, shapes_train, _solver(checkpoint_period=2), tmp_path, progress=False)
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000002.pth"
    assert read_checkpoint(tmp_path / "model_0000002.pth")["iteration"] == 2


def test_a_non_finite_loss_between_log_steps_is_caught_before_the_next_checkpoint(shapes_train, tmp_path):
    # one process reads the loss flag back without waiting: a nan at iteration 3 of a run that logs every 10
    # iterations is still reported with its own iteration, and the checkpoint of iteration 4 is not written
    model = _nan_objectness_at(_model(), 3)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan \(loss_objectness\) at iteration 3"):
        train(model, shapes_train, _solver(checkpoint_period=2, log_period=10), tmp_path, progress=False)
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000002.pth"
    assert not (tmp_path / "model_0000004.pth").exists()


def test_reports_where_the_loop_time_went(shapes_train, tmp_path):
    result = train(_model(), shapes_train, _solver(max_iter=3, checkpoint_period=10), tmp_path, progress=False)
    times = result.times
    assert times["iterations"] == 3
    assert set(times) == {"iterations", "seconds", "data", "step", "eval", "other", "overhead"}
    assert times["eval"] == 0.0 and times["step"] > 0 and times["data"] > 0
    assert times["data"] + times["step"] + times["other"] == pytest.approx(times["seconds"], rel=1e-6)
    assert times["overhead"] == pytest.approx((times["data"] + times["other"]) / times["seconds"], rel=1e-6)


def test_out_of_memory_names_the_settings_to_lower(shapes_train, tmp_path, monkeypatch):
    model = _model()

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(model, "forward", no_memory)
    with pytest.raises(UserError, match=r"ran out of memory at iteration 1; lower solver.ims_per_batch \(now 2 "
                                        r"over 1 processes.*model.min_size=\(?96.*runtime.amp"):
        train(model, shapes_train, _solver(), tmp_path, progress=False)


# bf16 against fp32. Every anchor and proposal takes part in the losses (no random subsets), so the two runs
# differ by arithmetic only, not by which RoIs a sampler drew after a rounding moved a proposal's score.
ALL_SAMPLES = dict(rpn_batch_size_per_image=100_000, box_batch_size_per_image=100_000)
BF16_EPS = 2.0 ** -8  # bf16 keeps 8 significant bits: a rounding is off by at most 2^-8 = 0.39% (relative)


def _flat(state):
    return torch.cat([v.double().flatten() for k, v in sorted(state.items()) if v.is_floating_point()])


def _two_iterations(dataset, path, runtime=None, **solver):
    """2 iterations from _model()'s weights, every sample used: (logged rows, weight update, result, model)."""
    model = _model(**ALL_SAMPLES)
    start = _flat(model.state_dict())
    result = train(model, dataset, _solver(max_iter=2, **solver), path, progress=False, runtime=runtime)
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return rows, _flat(_weights(result.checkpoint)) - start, result, model


def _disagreement(run, reference) -> dict:
    """What bf16 may change, measured against an fp32 run; each must stay within BF16_TOLERANCE."""
    (rows, update), (ref_rows, ref_update) = run, reference
    first, ref_first = rows[0], ref_rows[0]  # iteration 1: the same weights, only the forward's arithmetic differs
    found = {k: abs(first[k] / ref_first[k] - 1) for k in ("loss_objectness", "loss_rpn_box_reg", "loss_classifier")}
    found["update"] = float((update - ref_update).norm() / ref_update.norm())
    found["update_norm"] = abs(float(update.norm() / ref_update.norm()) - 1)
    return found


# Measured (2 iterations, bf16 + channels_last against fp32, this CPU): iteration-1 losses objectness 2e-5,
# rpn_box_reg < 1e-5, classifier 1.4e-3 relative, all within one bf16 rounding (these losses average over
# hundreds to thousands of terms, each off by about BF16_EPS): allowed 2 * BF16_EPS. The 2-iteration update
# differs by 7.8% of its norm (6.4% with the box arithmetic kept in fp32, see the xfail below): gradients are
# sums with cancellation, so their relative error is many roundings; allowed 15%. Its length differs by 0.7%
# (element errors average out over 1.3M weights): allowed 3%, so a 5% larger learning rate (update 5% longer)
# is caught, as is another data order (solver seed: update differs by 40%).
BF16_TOLERANCE = {"loss_objectness": 2 * BF16_EPS, "loss_rpn_box_reg": 2 * BF16_EPS,
                  "loss_classifier": 2 * BF16_EPS, "update": 0.15, "update_norm": 0.03}


def _beyond_tolerance(found):
    return {k: round(v, 6) for k, v in found.items() if v > BF16_TOLERANCE[k]}


@pytest.mark.slow
def test_bf16_and_channels_last_train_like_fp32(shapes_train, tmp_path):
    fp32 = _two_iterations(shapes_train, tmp_path / "fp32")
    *bf16, result, model = _two_iterations(shapes_train, tmp_path / "bf16",
                                           runtime=RuntimeConfig(amp="bf16", channels_last=True))
    assert result.iteration == 2
    weights = _weights(result.checkpoint)
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert all(v.dtype != torch.bfloat16 for v in weights.values())  # master weights stay fp32
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)

    reference = fp32[:2]
    assert _beyond_tolerance(_disagreement(bf16, reference)) == {}
    # the tolerance can fail: fp32 with a 5% larger learning rate is outside it
    other_lr = _two_iterations(shapes_train, tmp_path / "lr", base_lr=0.0105)[:2]
    assert set(_beyond_tolerance(_disagreement(other_lr, reference))) == {"update_norm"}


@pytest.mark.xfail(strict=True, reason="bf16 box arithmetic: torchvision's AnchorGenerator and BoxCoder work in "
                   "the autocast dtype, so under bf16 anchors, proposals and regression targets are rounded to 8 "
                   "significant bits: 0.5 px steps at 64-128 px, 4-8 px at COCO's 800-1333 px")
def test_bf16_training_keeps_box_coordinates_in_fp32(small_shapes):
    dataset = DetectionDataset(load_dataset("shapes_train"))
    images, targets = map(list, zip(*(dataset[i] for i in range(2))))
    model = _model().train()
    seen = {}
    model.rpn.anchor_generator.register_forward_hook(lambda m, args, out: seen.update(anchors=out[0].dtype))
    model.roi_heads.register_forward_pre_hook(lambda m, args: seen.update(proposals=args[1][0].dtype))
    with torch.no_grad(), Precision("bf16", "cpu").autocast():
        model(images, targets)
    assert seen == {"anchors": torch.float32, "proposals": torch.float32}


def test_fp16_needs_cuda(shapes_train, tmp_path):
    with pytest.raises(UserError, match="runtime.amp=fp16 needs a CUDA device; use runtime.amp=bf16 on CPU"):
        train(_model(), shapes_train, _solver(), tmp_path, progress=False, runtime=RuntimeConfig(amp="fp16"))


def test_too_few_images_for_a_batch(shapes_train, tmp_path):
    with pytest.raises(UserError, match="fewer than one batch"):
        train(_model(), shapes_train, _solver(ims_per_batch=100), tmp_path, progress=False)
