"""Fault injection: what a run folder goes through in real life, and what must survive it.

Overwrite safety, failed resumes, two runs on one folder, a whole process group
signalled (as Slurm, Kubernetes and systemd do), a full disk while saving, a
torn metrics file. Each case reproduces a fault that once lost or corrupted data.
"""
import errno
import importlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import backbones
from backbones.errors import UserError
from detection.engine.metrics_log import read_metrics
from detection.engine.run_folder import MANIFEST, files_read_from, remove_previous_run, written_files
from detection.engine.run_lock import LOCK_FILE, RunLock
from pretraining.trainer import save_backbone

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ("model: {backbone: resnet18, pretrained: none, min_size: 96, max_size: 96, fpn_channels: 32,\n"
            "        box_representation_size: 32, rpn_post_nms_top_n_train: 100, box_batch_size_per_image: 32}\n"
            "solver: {ims_per_batch: 2, base_lr: 0.005, warmup_iters: 1, steps: [100], max_iter: 100,\n"
            "         log_period: 1, checkpoint_period: 1}\n"
            "data: {train: shapes, num_workers: 0}\n")


def _tool(name, *args, monkeypatch):
    argv = [str(a) for a in args]
    monkeypatch.setattr(sys, "argv", [f"tools/{name}.py", *argv])
    importlib.import_module(f"detection.cli.{name}").main(argv)


def _fails(name, *args, monkeypatch, capsys) -> str:
    """Run a program that must refuse; returns what it printed to stderr (one error line, no traceback)."""
    with pytest.raises(SystemExit) as exit_:
        _tool(name, *args, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1, err
    return err


@pytest.fixture
def tiny(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN)
    return config


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# --- --overwrite removes what the run wrote, and nothing else ------------------------------------------
def test_overwrite_keeps_the_users_files_and_removes_the_old_runs(small_shapes, tiny, tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    weights = save_backbone(backbones.build("resnet18", num_classes=3), out / "model_imagenet_r18.pth")
    notes = out / "model_notes.txt"
    notes.write_text("mine")
    _tool("train_det", "--config", tiny, "--pretrained", weights, "--max-iter", 2, "--output", out,
          monkeypatch=monkeypatch)
    recorded = written_files(out)
    assert {"config.yaml", "metrics.jsonl", "last_checkpoint", "model_0000001.pth", "model_final.pth",
            "training_curves.png"} <= set(recorded)
    assert any(n.startswith("events.out.tfevents.") for n in recorded)
    assert weights.name not in recorded and notes.name not in recorded
    # evaluation outputs beside the checkpoint belong to the run too
    _tool("eval_voc", "--checkpoint", out / "model_final.pth", monkeypatch=monkeypatch)
    _tool("visualize", "--checkpoint", out / "model_final.pth", "--num-images", 2, monkeypatch=monkeypatch)
    evaluated = set(written_files(out)) - set(recorded)
    assert {"model_final.shapes_val.predictions.json", "model_final.shapes_val.eval_voc.json",
            "model_final.shapes_val.voc_results/comp4_det_shapes_val_circle.txt",
            "model_final.shapes_val.predictions.png"} <= evaluated
    assert all((out / name).is_file() for name in evaluated)

    before = weights.read_bytes()
    _tool("train_det", "--config", tiny, "--pretrained", weights, "--max-iter", 1, "--output", out, "--overwrite",
          monkeypatch=monkeypatch)
    assert weights.read_bytes() == before and notes.read_text() == "mine"
    assert not (out / "model_0000001.pth").exists()  # the old run's, not rewritten by the new one
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 1
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    assert not any((out / name).exists() for name in evaluated)  # the old model's evaluations went with it
    assert not (out / "model_final.shapes_val.voc_results").exists()


def test_overwrite_never_removes_a_recorded_file_the_new_run_reads(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("weights.pth", "model_final.pth", "metrics.jsonl"):
        (out / name).write_text(name)
    (out / MANIFEST).write_text("weights.pth\nmodel_final.pth\nmetrics.jsonl\n")
    config = {"model": {"pretrained": f"torchvision:{out / 'weights.pth'}"}, "data": {"train": "shapes"}}
    assert files_read_from(out, config) == [out / "weights.pth"]
    printed = []
    remove_previous_run(out, keep=files_read_from(out, config), log=printed.append)
    assert sorted(p.name for p in out.iterdir()) == ["weights.pth"]
    assert printed == [f"--overwrite: keeping {out / 'weights.pth'}: this run reads it"]


def test_overwrite_refuses_a_run_folder_without_a_manifest(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("")
    (out / "model_mine.pth").write_text("user's")
    with pytest.raises(UserError, match="without a record of which files it wrote"):
        remove_previous_run(out)
    assert (out / "model_mine.pth").read_text() == "user's"


# --- a refused --resume changes nothing ------------------------------------------------------------------
def test_a_failed_resume_leaves_the_run_folder_as_it_was(small_shapes, tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _tool("train_det", "--config", tiny, "--max-iter", 2, "--output", out, monkeypatch=monkeypatch)
    before = _snapshot(out)
    capsys.readouterr()
    err = _fails("train_det", "--output", out, "--resume", "--backbone", "resnet34",
                 monkeypatch=monkeypatch, capsys=capsys)
    assert "was written for another model" in err
    assert _snapshot(out) == before  # config.yaml, metrics, checkpoints: untouched
    _tool("train_det", "--output", out, "--resume", "solver.max_iter=3", monkeypatch=monkeypatch)
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 3


# --- one process per run folder ------------------------------------------------------------------------
HOLD_LOCK = ("import sys, time\nfrom detection.engine.run_lock import RunLock\n"
             "lock = RunLock(sys.argv[1]).__enter__()\nprint('locked', flush=True)\ntime.sleep(120)\n")


def _hold_lock(path):
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_run_on_the_same_folder_is_refused_until_the_first_is_gone(small_shapes, tiny, tmp_path,
                                                                            monkeypatch, capsys):
    out = tmp_path / "run"
    holder = _hold_lock(out / LOCK_FILE)
    try:
        err = _fails("train_det", "--config", tiny, "--max-iter", 1, "--output", out,
                     monkeypatch=monkeypatch, capsys=capsys)
        assert f"is in use by process {holder.pid} on {socket.gethostname()}" in err
        assert not (out / "config.yaml").exists() and not (out / "metrics.jsonl").exists()
        # pretraining and the reproduction runner take the same kind of lock
        weights = tmp_path / "r18.pth"
        pretrain_lock = _hold_lock(tmp_path / "r18.lock")
        try:
            err = _fails("pretrain_cls", "--config", "configs/pretrain/shapes_crops.yaml", "--output", weights,
                         monkeypatch=monkeypatch, capsys=capsys)
            assert f"process {pretrain_lock.pid}" in err and "pretraining run" in err
        finally:
            pretrain_lock.kill()
            pretrain_lock.wait()
        err = _fails("reproduce", "--suite", "shapes", "--runs", out, "--report", tmp_path / "report",
                     monkeypatch=monkeypatch, capsys=capsys)
        assert f"process {holder.pid}" in err and "--runs" in err
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, stale
        holder.wait()
    assert (out / LOCK_FILE).is_file()
    _tool("train_det", "--config", tiny, "--max-iter", 1, "--output", out, monkeypatch=monkeypatch)
    assert f"process {holder.pid} on {socket.gethostname()}, which no longer runs; taking it over" in \
        capsys.readouterr().out
    assert not (out / LOCK_FILE).exists()  # released at the end


def test_the_lock_holder_is_named_and_the_lock_is_released(tmp_path):
    path = tmp_path / "run" / LOCK_FILE
    with RunLock(path):
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert not path.exists()
    with RunLock(path):  # taken again at once
        pass


# --- a signal to the whole process group, with loader workers ------------------------------------------
def _train_det_command(small_shapes, tiny, tmp_path, *args):
    """(argv, env) of train_det as its own process on the small shapes tree, writing to tmp_path/run."""
    data = tmp_path / "shapes.yaml"
    data.write_text(f"format: coco\nimages: {small_shapes}/shapes/JPEGImages\n"
                    f"annotations: {small_shapes}/shapes/instances_train.json\n")
    env = {**os.environ, "DETECTION_DATASETS": str(small_shapes), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "tools/train_det.py", "--config", str(tiny), "--dataset", str(data),
            "--output", str(tmp_path / "run"), *map(str, args)]
    return argv, env


@pytest.mark.slow
def test_sigterm_to_the_process_group_with_workers_saves_and_exits_143(small_shapes, tiny, tmp_path):
    out = tmp_path / "run"
    argv, env = _train_det_command(small_shapes, tiny, tmp_path, "--max-iter", 1000, "--num-workers", 2,
                                   "solver.checkpoint_period=1000")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)  # the main process and both workers, as a cluster stops a job
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 143, stderr
    assert "killed by signal" not in stderr and "Traceback" not in stderr
    stopped_at = int(stdout.split("stopped by SIGTERM after iteration ")[1].split(";")[0])
    assert (out / "last_checkpoint").read_text().strip() == f"model_{stopped_at:07d}.pth"
    assert torch.load(out / f"model_{stopped_at:07d}.pth", weights_only=True)["iteration"] == stopped_at


# --- a full disk while saving --------------------------------------------------------------------------
def test_disk_full_while_saving_keeps_the_previous_checkpoint(small_shapes, tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save, saves = torch.save, []

    def save_until_the_disk_is_full(obj, f, *args, **kwargs):
        saves.append(Path(f).name)
        if len(saves) < 2:
            return real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(b"\0" * 4096)  # part of it made it to disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    err = _fails("train_det", "--config", tiny, "--max-iter", 3, "--output", out,
                 monkeypatch=monkeypatch, capsys=capsys)
    assert saves == ["model_0000001.pth.tmp", "model_0000002.pth.tmp"]
    assert f"could not write {out / 'model_0000002.pth'}: No space left on device (" in err
    assert "free on its disk, about" in err and "needed)" in err
    assert not list(out.glob("*.tmp"))
    assert (out / "last_checkpoint").read_text().strip() == "model_0000001.pth"
    assert torch.load(out / "model_0000001.pth", weights_only=True)["iteration"] == 1
    monkeypatch.setattr(torch, "save", real_save)
    _tool("train_det", "--output", out, "--resume", monkeypatch=monkeypatch)  # continues from iteration 1
    assert "resuming from" in capsys.readouterr().out


def _limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_real_failed_write_gives_one_error_and_no_partial_file(small_shapes, tiny, tmp_path):
    """Files may grow to 2 MB in this process: checkpoints (about 60 MB) fail in torch.save's own writer."""
    out = tmp_path / "run"
    argv, env = _train_det_command(small_shapes, tiny, tmp_path, "--max-iter", 2)
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                            preexec_fn=_limit_file_size(2_000_000))
    assert result.returncode == 2, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith(f"error: could not write {out / 'model_0000001.pth'}: ")
    assert "MB needed)" in errors[0]
    assert not list(out.glob("*.tmp")) and not (out / "model_0000001.pth").exists()
    assert not (out / "last_checkpoint").exists()


# --- a torn metrics file --------------------------------------------------------------------------------
def test_a_torn_last_metrics_line_is_dropped_on_resume(small_shapes, tiny, tmp_path, monkeypatch):
    out = tmp_path / "run"
    _tool("train_det", "--config", tiny, "--max-iter", 2, "--output", out, monkeypatch=monkeypatch)
    metrics = out / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"iteration": 3, "total_lo')  # the crash came mid-write
    assert [r["iteration"] for r in read_metrics(metrics)] == [1, 2]
    _tool("train_det", "--output", out, "--resume", "solver.max_iter=3", monkeypatch=monkeypatch)
    lines = metrics.read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2, 3]


def test_a_bad_line_inside_the_metrics_file_is_named(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"iteration": 1}\nnot json\n{"iteration": 2}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl, line 2, is not a metrics record"):
        read_metrics(metrics)


# --- where a run may write ------------------------------------------------------------------------------
def test_an_output_this_user_cannot_write_is_refused_before_anything_runs(tmp_path, monkeypatch):
    """Root writes anywhere, so the permission itself is simulated; the message path is what is tested."""
    from detection.engine import run_folder
    monkeypatch.setattr(run_folder.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match="is not writable by this user"):
        run_folder.check_output_folder(tmp_path / "run", resume=False, overwrite=False)
