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


def test_a_non_finite_loss_names_iteration_and_term_and_keeps_the_last_checkpoint(shapes_train, tmp_path):
    model = _model()
    original = model.rpn.compute_loss
    calls = []

    def compute_loss(*args):
        objectness, box = original(*args)
        calls.append(1)
        return (objectness * float("nan") if len(calls) == 3 else objectness), box
    model.rpn.compute_loss = compute_loss
    with pytest.raises(NonFiniteLossError, match=r"loss became nan \(loss_objectness\) at iteration 3; "
                                                 r"the last checkpoint is intact"):
        train(model, shapes_train, _solver(checkpoint_period=2), tmp_path, progress=False)
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000002.pth"
    assert read_checkpoint(tmp_path / "model_0000002.pth")["iteration"] == 2


def test_out_of_memory_names_the_settings_to_lower(shapes_train, tmp_path, monkeypatch):
    model = _model()

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(model, "forward", no_memory)
    with pytest.raises(UserError, match=r"ran out of memory at iteration 1; lower solver.ims_per_batch \(now 2 "
                                        r"over 1 processes.*model.min_size=\(?96.*runtime.amp"):
        train(model, shapes_train, _solver(), tmp_path, progress=False)


def test_bf16_autocast_and_channels_last_on_cpu(shapes_train, tmp_path):
    model = _model()
    result = train(model, shapes_train, _solver(max_iter=2), tmp_path, progress=False,
                   runtime=RuntimeConfig(amp="bf16", channels_last=True))
    assert result.iteration == 2
    weights = _weights(result.checkpoint)
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert all(v.dtype != torch.bfloat16 for v in weights.values())  # master weights stay fp32
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


def test_fp16_needs_cuda(shapes_train, tmp_path):
    with pytest.raises(UserError, match="runtime.amp=fp16 needs a CUDA device; use runtime.amp=bf16 on CPU"):
        train(_model(), shapes_train, _solver(), tmp_path, progress=False, runtime=RuntimeConfig(amp="fp16"))


def test_too_few_images_for_a_batch(shapes_train, tmp_path):
    with pytest.raises(UserError, match="fewer than one batch"):
        train(_model(), shapes_train, _solver(ims_per_batch=100), tmp_path, progress=False)
