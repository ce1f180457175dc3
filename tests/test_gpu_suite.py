"""bench/gpu_suite.sh, the suite for whoever has a GPU: checked here that it runs and writes what it says."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_suite.sh"


def _run(*args):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_without_a_gpu_it_says_what_to_run_instead(tmp_path):
    done = _run("--output", str(tmp_path / "suite.json"))
    assert done.returncode != 0 and not (tmp_path / "suite.json").exists()
    assert "no CUDA device" in done.stderr and "--device cpu --smoke" in done.stderr


@pytest.mark.slow
def test_smoke_run_on_cpu_writes_every_configuration(tmp_path):
    out = tmp_path / "suite.json"
    # Mask R-CNN only (the Faster R-CNN rows run the same code without the mask head): half the time
    done = _run("--device", "cpu", "--smoke", "--models", "mask", "--output", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    configs = {(r["model"], r["mode"], r["precision"], r["channels_last"]) for r in result["rows"]}
    assert configs == {("mask", "train", "fp32", False), ("mask", "train", "fp32", True),
                       ("mask", "infer", "fp32", False)}
    assert result["skipped"] == [] and result["smoke"] is True
    for row in result["rows"]:
        assert set(row["sides"]) == {"ours", "torchvision", "detectron2"} and row["batch"] == 2
        for side in row["sides"].values():
            low, median, high = side["seconds_per_iter"]
            assert 0 < low <= median <= high and side["images_per_s"] > 0
            assert side["peak_memory_gib"] is None  # CPU: no GPU memory to report
            assert len(side["counts"]["proposals"]) == 2  # per image
        # the same work on our side and detectron2's: proposals, RoIs (and mask RoIs) per image
        assert row["equal_work"], row["sides"]
        ours, d2 = row["sides"]["ours"], row["sides"]["detectron2"]
        assert row["ratio_vs_detectron2"] == pytest.approx(ours["images_per_s"] / d2["images_per_s"], rel=1e-2)
        if row["model"] == "mask":
            assert len(ours["counts"]["mask_rois"]) == 2
    assert result["targets"] == {"faster_fp16_train_images_per_s": 40.0, "ratio_vs_detectron2": 1.0}
    assert "ours/d2" in done.stdout
    loop = result["loop_overhead"]
    assert loop["iterations"] == 3 and 0 <= loop["overhead"] < 1 and loop["step"] > 0
