"""Data-parallel training with torchrun: 2 CPU processes (gloo) against one process with the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detection.detector import DetectorConfig, build_detector
from detection.engine.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]

# All anchors and proposals are used (no random subsampling), so the only difference between one process
# with 4 images and 2 processes with 2 each is how the losses are normalised over the batch.
CONFIG = """\
model: {backbone: resnet18, pretrained: none, min_size: 96, max_size: 96, fpn_channels: 32,
        box_representation_size: 32, rpn_post_nms_top_n_train: 100, rpn_post_nms_top_n_test: 50,
        rpn_batch_size_per_image: 100000, box_batch_size_per_image: 100000}
solver: {ims_per_batch: 4, base_lr: 0.01, max_iter: 4, warmup_iters: 0, steps: [100], log_period: 1,
         checkpoint_period: 2, eval_period: 4, seed: 3}
data: {train: DATA, num_workers: 0}
"""


def _run(*args):
    result = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _flat(state):
    return torch.cat([v.double().flatten() for k, v in sorted(state.items()) if v.is_floating_point()])


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(small_shapes_root, tmp_path):
    root, _ = small_shapes_root
    data = tmp_path / "shapes.yaml"
    data.write_text(f"format: coco\nimages: {root}/shapes/JPEGImages\n"
                    f"train: {{annotations: {root}/shapes/instances_train.json}}\n"
                    f"val: {{annotations: {root}/shapes/instances_val.json}}\n")
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG.replace("DATA", str(data)))
    printed = _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", 2, "tools/train_det.py",
                   "--config", config, "--output", tmp_path / "two", "--device", "cpu")
    assert "4 iterations on 2 processes" in printed
    assert "weights identical on all 2 processes" in printed  # checked by the engine on every rank
    _run("tools/train_det.py", "--config", config, "--output", tmp_path / "one", "--device", "cpu")

    two, one = (read_checkpoint(tmp_path / run / "model_final.pth") for run in ("two", "one"))
    torch.manual_seed(3)  # the initial weights, as train_det builds them
    start = _flat(build_detector(DetectorConfig.from_dict(one["config"])).state_dict())
    update = (_flat(one["model"]) - start).norm()
    difference = (_flat(two["model"]) - _flat(one["model"])).norm()
    assert update > 0.1  # the runs did train
    assert difference < 0.05 * update, f"{difference:.4f} vs update {update:.4f}"
    assert two["training_state"]["world_size"] == 2 and len(two["training_state"]["rng"]) == 2

    # evaluation during training was sharded over the 2 ranks and gathered: the same number as evaluating
    # the final weights in one process afterwards
    logged = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    during = [r["eval/bbox_AP"] for r in logged if "eval/bbox_AP" in r]
    _run("tools/eval_coco.py", "--checkpoint", tmp_path / "two" / "model_final.pth", "--dataset", data)
    after = json.loads((tmp_path / "two" / "model_final.shapes_val.eval_coco.json").read_text())["bbox"]["AP"]
    assert during == [pytest.approx(100 * after, abs=1e-9)]
