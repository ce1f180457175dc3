"""The command-line tools end to end: train, evaluate (VOC and COCO), draw; user errors without tracebacks."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from detection.cli import train_det
from detection.run import resolve_config

ROOT = Path(__file__).resolve().parents[1]


def _tool(name, *args, monkeypatch):
    """Run the program detection.cli.<name> in this process (so the small shapes fixture applies)."""
    argv = [str(a) for a in args]
    monkeypatch.setattr(sys, "argv", [f"tools/{name}.py", *argv])  # what a stopped run prints to resume
    importlib.import_module(f"detection.cli.{name}").main(argv)


def _cli(*args, env_root):
    import os
    env = {**os.environ, "DETECTION_DATASETS": str(env_root)}
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_train_evaluate_and_draw(small_shapes, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model: {min_size: 128, max_size: 128, rpn_post_nms_top_n_train: 100, rpn_post_nms_top_n_test: 50,\n"
        "        box_batch_size_per_image: 32, box_representation_size: 64}\n"
        "solver: {ims_per_batch: 2, base_lr: 0.005, warmup_iters: 2, steps: [4], log_period: 2,\n"
        "         checkpoint_period: 3}\n")
    backbone = tmp_path / "r18_cls.pth"
    _tool("pretrain_cls", "--backbone", "resnet18", "--dataset", "shapes", "--epochs", 1, "--crop-size", 32,
          "--optimizer", "adamw", "--lr", 1e-3, "--output", backbone, monkeypatch=monkeypatch)
    assert "top-1 accuracy on" in capsys.readouterr().out
    _tool("train_det", "--backbone", "resnet18", "--dataset", "shapes", "--mask", "--config", config,
          "--max-iter", 6, "--output", out, "--pretrained", backbone, monkeypatch=monkeypatch)
    assert (out / "model_final.pth").is_file() and (out / "model_0000003.pth").is_file()
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [2, 4, 6] and "loss_mask" in metrics[0]
    assert list(out.glob("events.out.tfevents.*")) and (out / "training_curves.png").stat().st_size > 1000
    saved = yaml.safe_load((out / "config.yaml").read_text())
    # fine-tuning defaults: frozen BN, stem and res2 frozen
    assert saved["model"]["pretrained"] == str(backbone) and saved["model"]["norm"] == "frozen_bn"
    assert saved["model"]["freeze_at"] == 2
    assert saved["model"]["num_classes"] == 5

    ckpt = out / "model_final.pth"
    _tool("eval_voc", "--checkpoint", ckpt, monkeypatch=monkeypatch)
    voc = json.loads((out / "model_final.shapes_val.eval_voc.json").read_text())
    assert set(voc["per_class"]) == {"circle", "square", "triangle", "star", "hexagon"}
    assert voc["mAP"] == pytest.approx(np.nanmean(list(voc["per_class"].values())))
    saved_predictions = out / "model_final.shapes_val.predictions.json"
    results = json.loads(saved_predictions.read_text())
    assert results and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(results[0])
    # the saved predictions give the same numbers without the model
    _tool("eval_voc", "--predictions", saved_predictions, "--dataset", "shapes_val", "--output-json",
          tmp_path / "voc_again.json", monkeypatch=monkeypatch)
    assert json.loads((tmp_path / "voc_again.json").read_text())["per_class"] == voc["per_class"]
    _tool("eval_voc", "--predictions", saved_predictions, "--dataset", "shapes_val", "--metric", "11point",
          monkeypatch=monkeypatch)
    assert json.loads((out / "model_final.shapes_val.eval_voc.json").read_text())["metric"] == "11point"
    _tool("eval_coco", "--checkpoint", ckpt, monkeypatch=monkeypatch)
    coco = json.loads((out / "model_final.shapes_val.eval_coco.json").read_text())
    assert set(coco) >= {"bbox", "segm"}
    assert set(coco["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "per_class"}
    _tool("eval_coco", "--predictions", saved_predictions, "--dataset", "shapes_val",
          "--output-json", tmp_path / "again.json", monkeypatch=monkeypatch)
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["bbox"]["AP"] == coco["bbox"]["AP"] and again["segm"]["AP"] == coco["segm"]["AP"]
    _tool("visualize", "--checkpoint", ckpt, "--num-images", 4, monkeypatch=monkeypatch)
    assert (out / "model_final.shapes_val.predictions.png").stat().st_size > 1000
    _tool("visualize", "--predictions", saved_predictions, "--dataset", "shapes_val",
          "--output", tmp_path / "p.png", monkeypatch=monkeypatch)
    assert (tmp_path / "p.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "mAP" in printed and "segm" in printed

    with pytest.raises(SystemExit) as exit_:
        _tool("train_det", "--dataset", "shapes", "--output", out, monkeypatch=monkeypatch)
    assert exit_.value.code == 2
    assert "already holds a run; pass --resume to continue it, --overwrite" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    _tool("train_det", "--dataset", "shapes", "--config", config, "--max-iter", 2, "--output", out,
          "--overwrite", monkeypatch=monkeypatch)
    assert (out / "notes.txt").exists() and not (out / "model_0000003.pth").exists()
    assert not (out / "model_final.shapes_val.eval_voc.json").exists()
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["norm"] == "gn"  # from scratch


def _coco_result(image_id, category_id, box, score):
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"image_id": image_id, "category_id": category_id, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}


def test_evaluation_tools_give_known_ap_for_fixed_predictions(small_shapes, tmp_path, monkeypatch):
    """eval_voc / eval_coco on hand-made results files whose AP is known without the code under test."""
    from detection.data.catalog import load_dataset
    from detection.data.dataset import DetectionDataset
    dataset = DetectionDataset(load_dataset("shapes_val", "test"))
    names = dataset.class_names
    truth = [(rec.image_id, dataset.category_ids[label - 1], box)
             for rec in dataset.records for box, label, ignore in zip(rec.boxes, rec.labels, rec.ignore)
             if not ignore]
    count = {name: sum(c == dataset.category_ids[k] for _, c, _ in truth) for k, name in enumerate(names)}
    circle, square = dataset.category_ids[names.index("circle")], dataset.category_ids[names.index("square")]
    assert count["circle"] == 3 and count["square"] == 4 and min(count.values()) > 0  # what the design needs
    no_circle = next(rec.image_id for rec in dataset.records if circle not in
                     [dataset.category_ids[label - 1] for label in rec.labels])

    def evaluate(results, stem):
        path = tmp_path / f"{stem}.json"
        path.write_text(json.dumps(results))
        _tool("eval_voc", "--predictions", path, "--dataset", "shapes_val", "--output-json",
              tmp_path / f"{stem}.voc.json", monkeypatch=monkeypatch)
        _tool("eval_coco", "--predictions", path, "--dataset", "shapes_val", "--output-json",
              tmp_path / f"{stem}.coco.json", monkeypatch=monkeypatch)
        return (json.loads((tmp_path / f"{stem}.voc.json").read_text()),
                json.loads((tmp_path / f"{stem}.coco.json").read_text())["bbox"])

    # 1. every ground-truth box as a detection of score 1: every AP is 1 (IoU 1 at every threshold)
    voc, coco = evaluate([_coco_result(i, c, box, 1.0) for i, c, box in truth], "perfect")
    assert voc["per_class"] == pytest.approx(dict.fromkeys(names, 1.0), abs=1e-6)
    assert voc["mAP"] == pytest.approx(1.0, abs=1e-6)
    assert coco["per_class"] == pytest.approx(dict.fromkeys(names, 1.0), abs=1e-6)
    assert coco["AP"] == pytest.approx(1.0, abs=1e-6) and coco["AP50"] == pytest.approx(1.0, abs=1e-6)

    # 2. designed: triangle, star, hexagon as above (AP 1).
    # circle (3 objects): ranked TP 0.9, FP 0.8 (a box in an image without circles), TP 0.7, TP 0.6:
    #   recall 1/3, 1/3, 2/3, 1 at precision 1, 1/2, 2/3, 3/4; the precision envelope is 1 up to recall 1/3,
    #   then 3/4. VOC area AP = 1/3 * 1 + 2/3 * 3/4 = 5/6.
    #   COCO (101 recall points 0, .01, ..., 1, the same at every IoU threshold since TPs have IoU 1 and the
    #   FP IoU 0): points 0..0.33 (34) get 1, points 0.34..1 (67) get 3/4: (34 + 67 * 3/4) / 101 = 84.25 / 101.
    # square (4 objects): only the first 2 detected (score 1): precision 1 up to recall 1/2, nothing beyond.
    #   VOC area AP = 1/2; COCO: points 0..0.50 (51) get 1, the rest 0: 51 / 101.
    results, circles, squares = [], [], []
    for i, c, box in truth:
        if c == circle:
            circles.append((i, c, box))
        elif c == square:
            squares.append((i, c, box))
        else:
            results.append(_coco_result(i, c, box, 1.0))
    results += [_coco_result(*circles[0], 0.9), _coco_result(no_circle, circle, [0, 0, 10, 10], 0.8),
                _coco_result(*circles[1], 0.7), _coco_result(*circles[2], 0.6)]
    results += [_coco_result(*squares[0], 1.0), _coco_result(*squares[1], 1.0)]
    voc, coco = evaluate(results, "designed")
    # tolerance 1e-6: circle's VOC 5/6 and COCO 84.25/101 differ by only 8e-4
    voc_expected = {"circle": 5 / 6, "square": 1 / 2, "triangle": 1.0, "star": 1.0, "hexagon": 1.0}
    assert voc["per_class"] == pytest.approx(voc_expected, abs=1e-6)
    assert voc["mAP"] == pytest.approx((5 / 6 + 1 / 2 + 3) / 5, abs=1e-6)  # 0.8667
    coco_expected = {"circle": 84.25 / 101, "square": 51 / 101, "triangle": 1.0, "star": 1.0, "hexagon": 1.0}
    assert coco["per_class"] == pytest.approx(coco_expected, abs=1e-6)
    assert coco["AP"] == pytest.approx((84.25 / 101 + 51 / 101 + 3) / 5, abs=1e-6)  # 0.8678


@pytest.mark.parametrize("args, message", [
    (["tools/train_det.py", "--backbone", "resnet5", "--dataset", "shapes"],
     "error: unknown backbone 'resnet5'. Did you mean 'resnet50'? Valid choices: plain18, plain34, resnet101"),
    (["tools/train_det.py", "--dataset", "cocoa"], "error: unknown dataset 'cocoa'. Did you mean 'coco'?"),
    (["tools/train_det.py", "--dataset", "shapes", "--neck", "c5"], "error: unknown neck 'c5'"),
    (["tools/eval_voc.py", "--checkpoint", "missing.pth"], "error: checkpoint missing.pth does not exist"),
    (["tools/eval_coco.py", "--checkpoint", "README.md"], "error: README.md is not a checkpoint"),
    (["tools/eval_voc.py", "--predictions", "x.json"], "error: --predictions needs --dataset"),
])
def test_user_mistakes_get_one_line_errors(args, message, tmp_path):
    result = _cli(*args, env_root=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("argv, pretrained", [
    (["--dataset", "shapes"], "none"),
    (["--dataset", "coco"], "torchvision"),
    (["--dataset", "coco", "--pretrained", "none"], "none"),
    (["--dataset", "shapes", "--pretrained", "w.pth"], "w.pth"),
    (["--dataset", "shapes_train"], "none"),
    (["--dataset", "shapes_like.yaml"], "torchvision"),  # a user's data, not the built-in set
])
def test_default_backbone_weights_depend_on_the_data(argv, pretrained):
    args = train_det.parse_args(argv)
    assert resolve_config(args.config, train_det.flags(args), args.overrides).model.pretrained == pretrained


def _train_on_voc_yaml(small_shapes, tmp_path, monkeypatch, splits):
    """Train 2 iterations on the shapes tree read as a user's VOC folder given only by a YAML file."""
    (tmp_path / "VOCshapes").symlink_to(small_shapes / "shapes")
    dataset = tmp_path / "mine.yaml"
    dataset.write_text("format: voc\nroot: VOCshapes\nclasses: [circle, square, triangle, star, hexagon]\n" + splits)
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {min_size: 96, max_size: 128, rpn_post_nms_top_n_test: 30, box_representation_size: 32,"
                      " box_score_thresh: 0.0}\nsolver: {ims_per_batch: 2, base_lr: 0.001, warmup_iters: 1}\n")
    out = tmp_path / "run"
    _tool("train_det", "--backbone", "resnet18", "--dataset", dataset, "--config", config, "--max-iter", 2,
          "--pretrained", "none", "--output", out, monkeypatch=monkeypatch)
    return out


@pytest.mark.slow
def test_train_and_evaluate_on_a_users_voc_folder_from_yaml(small_shapes, tmp_path, monkeypatch, capsys):
    out = _train_on_voc_yaml(small_shapes, tmp_path, monkeypatch, "train: {split: train}\nval: {split: val}\n")
    assert "on mine_train (24 images, 5 classes)" in capsys.readouterr().out
    _tool("eval_voc", "--checkpoint", out / "model_final.pth", monkeypatch=monkeypatch)
    result = json.loads((out / "model_final.mine_val.eval_voc.json").read_text())
    assert result["images"] == 8 and set(result["per_class"]) == {"circle", "square", "triangle", "star", "hexagon"}
    _tool("eval_coco", "--checkpoint", out / "model_final.pth", monkeypatch=monkeypatch)
    assert set(json.loads((out / "model_final.mine_val.eval_coco.json").read_text())) >= {"bbox"}


@pytest.mark.slow
def test_devkit_results_files_round_trip_through_eval_voc(small_shapes, tmp_path, monkeypatch, capsys):
    out = _train_on_voc_yaml(small_shapes, tmp_path, monkeypatch, "split: val\n")
    _tool("eval_voc", "--checkpoint", out / "model_final.pth", monkeypatch=monkeypatch)
    first = json.loads((out / "model_final.mine_val.eval_voc.json").read_text())
    folder = out / "model_final.mine_val.voc_results"
    assert (folder / "comp4_det_val_circle.txt").is_file()
    assert (out / "model_final.mine_val.pr_voc.png").stat().st_size > 1000
    _tool("eval_voc", "--voc-root", tmp_path / "VOCshapes", "--split", "val", "--predictions", folder,
          "--classes", "circle", "square", "triangle", "star", "hexagon",
          "--output-json", tmp_path / "devkit.json", monkeypatch=monkeypatch)
    again = json.loads((tmp_path / "devkit.json").read_text())
    for name, ap in first["per_class"].items():  # boxes printed to 0.01 px: APs agree closely
        assert again["per_class"][name] == pytest.approx(ap, abs=0.02)
    with pytest.raises(SystemExit):
        _tool("eval_voc", "--voc-root", tmp_path / "VOCshapes", "--predictions", folder, monkeypatch=monkeypatch)
    assert "--voc-root needs --split" in capsys.readouterr().err


def test_eval_coco_on_a_ground_truth_file_and_bad_results(small_shapes, tmp_path, monkeypatch, capsys):
    gt = small_shapes / "shapes" / "instances_val.json"
    anns = json.loads(gt.read_text())["annotations"]
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in anns]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(perfect))
    for backend in ("pycocotools", "faster-coco-eval"):
        _tool("eval_coco", "--annotations", gt, "--predictions", results, "--backend", backend,
              "--output-json", tmp_path / f"{backend}.json", monkeypatch=monkeypatch)
        numbers = json.loads((tmp_path / f"{backend}.json").read_text())["bbox"]
        assert numbers["AP"] == pytest.approx(1.0) and numbers["AR100"] == pytest.approx(1.0)
    assert (tmp_path / "pycocotools.pr_bbox.png").stat().st_size > 1000
    for bad in ([1, 2, float("nan"), 4], [1, 2, -3, 4], "1 2 3 4", [1, 2, 3]):
        perfect[3]["bbox"] = bad
        results.write_text(json.dumps(perfect))
        with pytest.raises(SystemExit):
            _tool("eval_coco", "--annotations", gt, "--predictions", results, monkeypatch=monkeypatch)
        assert "results.json: entry 3 has a bad box or score" in capsys.readouterr().err


def test_overrides_after_the_flags_win():
    args = train_det.parse_args(["--config", "configs/shapes_demo.yaml", "--max-iter", "7", "solver.base_lr=0.5",
                                 "model.anchor_sizes=[8, 16, 32, 64, 128]"])
    cfg = resolve_config(args.config, train_det.flags(args), args.overrides)
    assert (cfg.solver.base_lr, cfg.solver.max_iter, cfg.model.anchor_sizes) == (0.5, 7, (8, 16, 32, 64, 128))
    assert cfg.solver.ims_per_batch == 4  # from the YAML



def test_max_iter_zero_is_passed_on_not_read_as_unset():
    assert train_det.flags(train_det.parse_args(["--max-iter", "0"]))["solver"]["max_iter"] == 0
    assert train_det.flags(train_det.parse_args([]))["solver"]["max_iter"] is None


@pytest.mark.parametrize("program, argv, message", [
    ("train_det", ["--dataset", "shapes", "--max-iter", "0"], "error: command line: solver.max_iter=0: must be >= 1"),
    ("train_det", ["--dataset", "shapes", "--max-iter", "-5"], "error: command line: solver.max_iter=-5: must be >= 1"),
    ("train_det", ["--dataset", "shapes", "--num-workers", "-1"], "error: command line: data.num_workers=-1: must be >= 0"),
    ("train_det", ["--config", "configs/shapes_demo.yaml", "solver.base_lr=-1"],
     "error: command line: solver.base_lr=-1: must be > 0"),
    ("pretrain_cls", ["--dataset", "shapes", "--epochs", "0", "--output", "w.pth"], "solver.epochs=0: must be >= 1"),
    ("pretrain_cls", ["--dataset", "shapes", "--lr", "-0.1", "--output", "w.pth"], "solver.base_lr=-0.1: must be > 0"),
    ("pretrain_cls", ["--dataset", "shapes", "--workers", "-2", "--output", "w.pth"],
     "data.num_workers=-2: must be >= 0"),
    ("visualize", ["--checkpoint", "missing.pth", "--num-images", "0"], "error: --num-images 0: must be >= 1"),
    ("visualize", ["--checkpoint", "missing.pth", "--num-images", "-1"], "error: --num-images -1: must be >= 1"),
    ("visualize", ["--checkpoint", "missing.pth", "--score-threshold", "1.5"],
     "error: --score-threshold 1.5: must be in [0, 1]"),
    ("analyze_backbones", ["--size", "0"], "error: --size 0: must be >= 32"),
])
def test_out_of_range_numbers_are_refused_before_any_data_is_read(program, argv, message, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path / "datasets"))
    with pytest.raises(SystemExit) as exit_:
        _tool(program, *argv, *(["--output", tmp_path / "run"] if program == "train_det" else []),
              monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "run").exists()  # nothing generated or written



def test_tiling_no_images_is_refused_with_a_named_error_not_a_cv2_one():
    from detection.visualize import tile
    with pytest.raises(ValueError, match="tile needs at least one image"):
        tile([])
    assert tile([np.zeros((10, 20, 3), np.uint8)], cell=8).shape == (8, 32, 3)


TINY_RUN = ("model: {backbone: resnet18, pretrained: none, min_size: 96, max_size: 96, fpn_channels: 32,\n"
            "        box_representation_size: 32, rpn_post_nms_top_n_train: 100, box_batch_size_per_image: 32}\n"
            "solver: {ims_per_batch: 2, base_lr: 0.005, warmup_iters: 1, steps: [100], log_period: 1,\n"
            "         checkpoint_period: 100}\n"
            "data: {train: shapes, num_workers: 0}\n")


def test_resume_from_the_command_line(small_shapes, tmp_path, monkeypatch, capsys):
    config, out = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_RUN)
    _tool("train_det", "--config", config, "--max-iter", 3, "--output", out, monkeypatch=monkeypatch)
    # the saved config is used; an override extends the schedule
    _tool("train_det", "--output", out, "--resume", "solver.max_iter=5", monkeypatch=monkeypatch)
    printed = capsys.readouterr().out
    assert f"resuming from {out / 'model_final.pth'} at iteration 3" in printed
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 5
    assert yaml.safe_load((out / "config.yaml").read_text())["solver"]["max_iter"] == 5

    other = tmp_path / "other.yaml"
    other.write_text(TINY_RUN.replace("resnet18", "resnet34"))
    for argv, message in [
        (["--config", other, "--resume"], "differs from the run's"),
        (["--config", other, "--resume"], "model.backbone: 'resnet18' -> 'resnet34'"),
        (["--config", config, "--resume", "--overwrite"], "pass --resume (continue the run) or --overwrite"),
        (["--config", config], "already holds a run; pass --resume to continue it"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            _tool("train_det", *argv, "--output", out, monkeypatch=monkeypatch)
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    # --resume on an empty folder starts the run (a preemptible job can always pass it)
    _tool("train_det", "--config", config, "--max-iter", 1, "--output", tmp_path / "new", "--resume",
          monkeypatch=monkeypatch)
    assert torch.load(tmp_path / "new" / "model_final.pth", weights_only=True)["iteration"] == 1


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_saves_and_the_printed_command_resumes(small_shapes, tmp_path):
    import os
    import signal
    import time
    config, out = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_RUN)
    env = {**os.environ, "DETECTION_DATASETS": str(small_shapes), "OMP_NUM_THREADS": "1"}
    # the small shapes tree under DETECTION_DATASETS is read as the default-sized set unless told otherwise
    data = tmp_path / "shapes.yaml"
    data.write_text(f"format: coco\nimages: {small_shapes}/shapes/JPEGImages\n"
                    f"annotations: {small_shapes}/shapes/instances_train.json\n")
    argv = ["tools/train_det.py", "--config", str(config), "--dataset", str(data), "--max-iter", "1000",
            "--output", str(out)]
    process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "stopped by SIGINT after iteration" in stdout and "Traceback" not in stderr
    command = stdout.split("resume with: ")[1].strip()
    assert command.startswith("python tools/train_det.py") and command.endswith("--resume")
    stopped_at = int(stdout.split("stopped by SIGINT after iteration ")[1].split(";")[0])
    assert (out / "last_checkpoint").read_text().strip() == f"model_{stopped_at:07d}.pth"

    resumed = subprocess.run([sys.executable, *command.split()[1:], "solver.max_iter=" + str(stopped_at + 2)],
                             cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at iteration {stopped_at}" in resumed.stdout
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == stopped_at + 2
