"""What every dataset format's end-to-end test does: train Mask R-CNN 2 iterations from the format's YAML, then
score the checkpoint with eval_coco, in this process (so the tests' small settings apply)."""
import importlib
import json
import sys

import cv2
import numpy as np

TINY = ("model: {{min_size: {min_size}, max_size: {max_size}, rpn_post_nms_top_n_test: 30,"
        " box_representation_size: 32, box_score_thresh: 0.0}}\n"
        "solver: {{ims_per_batch: 2, base_lr: 0.001, warmup_iters: 1}}\n")


def run_tool(name, *args, monkeypatch):
    """Run the program detection.cli.<name> with these arguments, as `tools/<name>.py` would."""
    argv = [str(a) for a in args]
    monkeypatch.setattr(sys, "argv", [f"tools/{name}.py", *argv])  # what a stopped run prints to resume
    importlib.import_module(f"detection.cli.{name}").main(argv)


def train_and_evaluate(tmp_path, dataset_yaml, monkeypatch, capsys, size=(96, 128), eval_dataset=False):
    """Train Mask R-CNN (resnet18, random weights) for 2 iterations on `dataset_yaml`, evaluate the checkpoint
    with eval_coco (on the YAML's val split, or with --dataset YAML when `eval_dataset`); returns what training
    printed and the evaluation JSON."""
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.format(min_size=size[0], max_size=size[1]))
    out = tmp_path / "run"
    run_tool("train_det", "--backbone", "resnet18", "--mask", "--dataset", dataset_yaml, "--config", config,
             "--max-iter", 2, "--pretrained", "none", "--output", out, monkeypatch=monkeypatch)
    printed = capsys.readouterr().out
    run_tool("eval_coco", "--checkpoint", out / "model_final.pth",
             *(("--dataset", dataset_yaml) if eval_dataset else ()), monkeypatch=monkeypatch)
    written = sorted(out.glob("model_final.*.eval_coco.json"))
    assert len(written) == 1, written
    return printed, json.loads(written[0].read_text())



def polygon_image(rng, size, colour):
    """A size x size gray image with one 12-point polygon filled in BGR ``colour`` at a random centre and
    radius from ``rng``; returns (image, xs, ys), the polygon's integer vertices."""
    image = np.full((size, size, 3), 60, np.uint8)
    cx, cy, r = (int(v) for v in rng.integers(30, 66, 2).tolist() + [int(rng.integers(12, 24))])
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    xs, ys = np.round(cx + r * np.cos(t)).astype(int), np.round(cy + r * np.sin(t)).astype(int)
    cv2.fillPoly(image, [np.stack([xs, ys], 1).astype(np.int32)], colour)
    return image, xs, ys
