"""Data-parallel training with torchrun: 2 CPU processes (gloo) against one process with the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detection.config import SolverConfig
from detection.data.coco_format import load_coco
from detection.data.dataset import DetectionDataset
from detection.data.transforms import train_augmentation
from detection.detector import DetectorConfig, build_detector
from detection.engine import distributed
from detection.engine.checkpoint import read_checkpoint
from detection.engine.trainer import train

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


# --- one step's gradients: 2 processes against 1, where nothing may differ -------------------------------
# Normalisation cannot differ: GroupNorm (the from-scratch default; no batch statistics), images of one size
# (192 px, resized to 96 by the model: no padding that depends on which images share a process), and every
# loss normalised per image: the samplers draw exactly rpn_batch_size_per_image anchors and
# box_batch_size_per_image RoIs of each image (checked below), so a mean over the 4 images of one process is
# the mean over ranks (DDP's gradient average) of the means over 2. Sampling cannot differ: each image's
# subsets are drawn from a generator seeded by its image id, not from the process's stream. Arithmetic
# barely differs: both runs are subprocesses with one thread each (OMP_NUM_THREADS=1). Measured: 5e-7 of
# the gradient's norm; with 2 threads in the one-process run, 8e-4 (another summation order rounds
# differently, which can tip discrete choices: which proposals pass NMS and the top-100, which RoIs match).
STEP_MODEL = dict(backbone="resnet18", neck="fpn", pretrained="none", min_size=96, max_size=96,
                  fpn_channels=32, box_representation_size=32, rpn_post_nms_top_n_train=100,
                  rpn_batch_size_per_image=256, box_batch_size_per_image=32)


class _SeededPerImage:
    """A torchvision fg/bg sampler drawing each image's subset with a generator seeded by that image's id."""

    def __init__(self, sampler, image_ids, salt, counts):
        self.sampler, self.image_ids, self.salt, self.counts = sampler, image_ids, salt, counts

    def __call__(self, matched_idxs):
        positive, negative = [], []
        for image_id, matched in zip(self.image_ids, matched_idxs, strict=True):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(1000 * int(image_id) + self.salt)
                (pos,), (neg,) = self.sampler([matched])
            positive.append(pos)
            negative.append(neg)
            self.counts.append(int(pos.sum() + neg.sum()))
        return positive, negative


def one_step_gradients(data_root, output):
    """One iteration of the engine's ``train`` (DDP under torchrun) on 4 shapes images; returns
    ({parameter name: gradient}, {"rpn"/"roi": samples drawn per image, "images": the image ids})."""
    images = DetectionDataset(load_coco(data_root / "shapes" / "instances_train.json",
                                        data_root / "shapes" / "JPEGImages"), augment=train_augmentation(seed=1))
    torch.manual_seed(0)
    model = build_detector(**STEP_MODEL, num_classes=len(images.class_names))
    image_ids, counts = [], {"rpn": [], "roi": [], "images": []}

    def note_images(module, args):
        image_ids[:] = [t["image_id"] for t in args[1]]
        counts["images"] += image_ids
    model.register_forward_pre_hook(note_images)
    model.rpn.fg_bg_sampler = _SeededPerImage(model.rpn.fg_bg_sampler, image_ids, 1, counts["rpn"])
    model.roi_heads.fg_bg_sampler = _SeededPerImage(model.roi_heads.fg_bg_sampler, image_ids, 2, counts["roi"])
    solver = SolverConfig(ims_per_batch=4, base_lr=0.01, max_iter=1, warmup_iters=0, steps=(100,),
                          checkpoint_period=100, log_period=1, seed=3)
    train(model, images, solver, output, progress=False)
    # after the step the gradients are still there: zero_grad comes before the next backward
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}, counts


@pytest.mark.slow
def test_one_step_gradients_of_two_gloo_processes_equal_one_process_gradients(small_shapes_root, tmp_path):
    root, _ = small_shapes_root
    _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", 2, Path(__file__), root, tmp_path / "two")
    two = [torch.load(tmp_path / "two" / f"rank{r}.pt") for r in range(2)]
    _run(Path(__file__), root, tmp_path / "one")
    one, counts = torch.load(tmp_path / "one" / "rank0.pt")

    # the ranks split the one process's batch, and every image weighs the same in every loss
    assert counts["images"] == two[0][1]["images"] + two[1][1]["images"] and len(set(counts["images"])) == 4
    assert (counts["rpn"], counts["roi"]) == ([256] * 4, [32] * 4)
    assert [(c["rpn"], c["roi"]) for _, c in two] == [([256] * 2, [32] * 2)] * 2
    assert two[0][0].keys() == two[1][0].keys() == one.keys() and len(one) > 50
    for name in one:
        assert torch.equal(two[0][0][name], two[1][0][name]), name  # DDP gives every rank the average
    flat_two = torch.cat([two[0][0][name].double().flatten() for name in sorted(one)])
    flat_one = torch.cat([one[name].double().flatten() for name in sorted(one)])
    error = float((flat_two - flat_one).norm() / flat_one.norm())
    print(f"relative gradient difference {error:.2e}")
    assert error < 1e-5


if __name__ == "__main__":  # a torchrun worker of the test above: python tests/test_distributed.py DATA_ROOT OUT
    distributed.init_from_env("cpu")
    data_root, out = map(Path, sys.argv[1:3])
    gradients, sample_counts = one_step_gradients(data_root, out)
    torch.save((gradients, sample_counts), out / f"rank{distributed.rank()}.pt")
    distributed.shutdown()
