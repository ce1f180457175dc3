"""tools/reproduce.py: suites of experiments, what each needs, isolation of failures, the report."""
import contextlib
import dataclasses
import io
import json
import importlib
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backbones.errors import UserError
from pycocotools.cocoeval import COCOeval
from detection.evaluation.voc_reference import ref_evaluate
from detection.data.catalog import load_dataset
from detection.data.dataset import DetectionDataset
from detection.cli import reproduce
from detection.reproduction import runner
from detection.reproduction.claims import CLAIMS, Claim, Comparison, claims_section, compare
from detection.reproduction.pretraining_curves import pretraining_table
from detection.reproduction.experiments import Experiment, select, suite
from detection.reproduction.report import _gain, problems, results_table, write_report
from detection.reproduction.runner import Outcome, recorded_outcomes, run_suite

ROOT = Path(__file__).resolve().parents[1]


def _reproduce(*args, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["reproduce", *map(str, args)])
    reproduce.main([str(a) for a in args])


def test_gains_match_the_papers_own_arithmetic():
    # Table 8: COCO mAP@[.5,.95] 21.2 -> 27.2 is the paper's "28% relative improvement"
    assert _gain(27.2, 21.2) == "+6.0 (+28%)"
    assert _gain(76.4, 73.2) == "+3.2 (+4%)"
    assert _gain(None, 21.2) == "—" and _gain(27.2, None) == "—"


def test_paper_suite_holds_tables_7_and_8():
    paper = {e.name: e for e in suite("paper")}
    assert paper["vgg16_C4_voc07"].paper == {"voc07_map50": 73.2}
    assert paper["R101_C4_voc07"].paper == {"voc07_map50": 76.4}
    assert paper["R101_C4_voc12"].paper == {"voc_map50": 73.8} and paper["R101_C4_voc12"].scored_by_server
    assert paper["R101_C4_coco"].paper == {"coco_ap50": 48.4, "coco_ap": 27.2}
    assert paper["R101_C4_coco"].baseline == "vgg16_C4_coco"
    assert {f"{k}_R{d}_FPN_3x" for k in ("faster_rcnn", "mask_rcnn") for d in (50, 101, 152)} <= set(paper)
    for e in paper.values():
        assert (ROOT / e.config).is_file(), e.config


def test_paper_suite_holds_table_9_cumulative_on_the_table_8_model():
    paper = {e.name: e for e in suite("paper")}
    refine, context, ms = (paper[f"R101_C4_coco_{n}"] for n in ("refine", "context", "context_ms"))
    assert [e.paper for e in (refine, context, ms)] == [{"coco_ap50": 49.9, "coco_ap": 29.9},
                                                         {"coco_ap50": 51.1, "coco_ap": 30.0},
                                                         {"coco_ap50": 53.8, "coco_ap": 32.5}]
    assert [e.baseline for e in (refine, context, ms)] == ["R101_C4_coco", "R101_C4_coco_refine",
                                                           "R101_C4_coco_context"]
    # refinement and multi-scale testing are test-time only: they evaluate a trained row's checkpoint
    assert (refine.checkpoint_from, context.checkpoint_from, ms.checkpoint_from) == (
        "R101_C4_coco", None, "R101_C4_coco_context")
    assert refine.box_refinement and context.box_refinement and ms.box_refinement
    assert ms.tta == {"scales": [400, 600, 800, 1000], "flip": False, "merge": "vote"} and refine.tta is None
    cfg = runner.training_config(context)
    assert cfg.model.global_context and cfg.model.box_refinement and cfg.model.neck == "c4"
    assert cfg.model.backbone == "resnet101"


def test_shapes_suite_pretrains_every_backbone_and_adds_appendix_b_on_resnet18():
    shapes = {e.name: e for e in suite("shapes")}
    assert list(shapes) == ["resnet18_scratch", "plain18_pretrained", "resnet18_pretrained", "plain34_pretrained",
                            "resnet34_pretrained", "resnet50_pretrained", "resnet18_refine", "resnet18_multiscale",
                            "resnet18_context", "resnet18_34_50_ensemble"]
    for depth in (18, 34):  # a residual net's gain is over the plain net of its depth
        assert shapes[f"resnet{depth}_pretrained"].baseline == f"plain{depth}_pretrained"
    assert shapes["resnet50_pretrained"].baseline == "resnet34_pretrained"
    assert all((e.pretrain is not None) == (e.name.endswith("pretrained") or e.name == "resnet18_context")
               for e in shapes.values())
    options = [e for e in shapes.values() if e.table == shapes["resnet18_refine"].table]
    assert len(options) == 4 and all(e.baseline == "resnet18_pretrained" for e in options)
    assert shapes["resnet18_refine"].checkpoint_from == shapes["resnet18_multiscale"].checkpoint_from == \
        "resnet18_pretrained" and shapes["resnet18_refine"].box_refinement
    assert runner.training_config(shapes["resnet18_context"]).model.global_context
    assert [e.trains for e in options] == [False, False, True, False]
    assert set(shapes["resnet18_34_50_ensemble"].ensemble_of) <= set(shapes)
    # every comparison a claim makes names a row of the suite or a backbone it pretrains
    names = set(shapes) | {e.backbone for e in shapes.values() if e.uses_pretraining}
    assert all({c.better, c.worse} <= names for claim in CLAIMS["shapes"] for c in claim.comparisons)


def test_a_comparison_is_judged_seed_by_seed():
    outcome = lambda name, seed, value: Outcome(name, "measured", {"voc_map50": value}, seed=seed)  # noqa: E731
    better_each = [outcome("a", 0, 30.0), outcome("a", 1, 31.0), outcome("b", 0, 20.0), outcome("b", 1, 30.5)]
    assert compare(Comparison("a", "b", "voc_map50"), better_each, None, 2) == ((10.0, 0.5), "holds")
    mixed = better_each[:3] + [outcome("b", 1, 32.0)]
    assert compare(Comparison("a", "b", "voc_map50"), mixed, None, 2) == ((10.0, -1.0), "mixed")
    assert compare(Comparison("b", "a", "voc_map50"), mixed, None, 2) == ((-10.0, 1.0), "fails")
    assert compare(Comparison("a", "c", "voc_map50"), mixed, None, 2) == ((), "not measured")
    lines = claims_section([Claim("a beats b", (Comparison("a", "b", "voc_map50"),))], mixed, None, 2)
    assert lines[0] == "- a beats b: **partly supported**"
    assert lines[1] == ("  - a vs b, VOC mAP@0.5 (area): 30.5 ± 0.7 vs 26.0 ± 8.5; 4.5 ± 7.8 points higher "
                        "(1 of 2 seeds): **mixed**")


def test_pretraining_errors_are_compared_lower_is_better(tmp_path):
    def pretrained(seed, backbone, top1):
        folder = (tmp_path if seed == 0 else tmp_path / f"seed{seed}") / "pretrain"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{backbone}.metrics.json").write_text(json.dumps(
            {"epochs": [{"epoch": 1, "top1": top1, "train_top1": top1 - 0.1}], "final": {"top1": top1}}))
    for seed, (deep, shallow) in enumerate(((0.9, 0.8), (0.85, 0.8))):
        pretrained(seed, "resnet34", deep)
        pretrained(seed, "resnet18", shallow)
    diffs, verdict = compare(Comparison("resnet34", "resnet18", "val_error"), [], tmp_path, 2)
    assert verdict == "holds" and diffs == pytest.approx((10.0, 5.0))
    diffs, verdict = compare(Comparison("resnet18", "resnet34", "train_error"), [], tmp_path, 2)
    assert verdict == "fails" and diffs == pytest.approx((-10.0, -5.0))
    table = pretraining_table(tmp_path, 2, ["resnet18", "resnet34"])
    assert table[2] == "| resnet18 | 20.0 ± 0.0 | 30.0 ± 0.0 | 20.0, 20.0 | — |"
    assert table[3] == "| resnet34 | 12.5 ± 3.5 | 22.5 ± 3.5 | 10.0, 15.0 | — |"


def test_unknown_suite_and_experiment_names_suggest_the_right_one():
    with pytest.raises(UserError, match="Did you mean 'shapes'"):
        suite("shape")
    with pytest.raises(UserError, match="Did you mean 'R101_C4_voc07'"):
        select(suite("paper"), ["R101_C4_voc7"])


def test_paper_eval_only_over_an_empty_folder_lists_what_each_experiment_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path / "no-data"))
    report_dir = tmp_path / "report"
    _reproduce("--suite", "paper", "--eval-only", "--runs", tmp_path / "runs", "--report", report_dir,
               monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    report = (report_dir / "report.md").read_text()
    for e in suite("paper"):
        assert f"{e.name}: missing" in out
        trained_by = e.checkpoint_from or e.name  # a test-time row needs the checkpoint of the row it names
        checkpoint = tmp_path / "runs" / trained_by / "model_final.pth"
        assert f"checkpoint {checkpoint}: MISSING" in report
        assert f"--suite paper --only {trained_by}" in report
    # the data each would be scored on, with where it must be
    assert f"dataset voc_2007_test: MISSING ({tmp_path / 'no-data' / 'VOCdevkit' / 'VOC2007'}" in report
    assert f"dataset coco_2017_val: MISSING ({tmp_path / 'no-data' / 'coco' / 'annotations'}" in report
    assert "| R101_C4_coco | resnet101 | COCO AP@[.5,.95] | — (missing) | — | 27.2 | +6.0 (+28%) |" in report


def test_paper_training_without_data_or_gpu_says_so_per_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DETECTION_DATASETS", str(tmp_path / "no-data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    _reproduce("--suite", "paper", "--list", "--only", "R101_C4_voc07", "vgg16_C4_coco", "--runs", tmp_path,
               monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert "R101_C4_voc07: configs/paper/faster_rcnn_R101_C4_voc07.yaml" in out
    assert "dataset voc_0712_trainval: MISSING" in out
    assert "a CUDA GPU: MISSING" in out or "a CUDA GPU: ok" in out
    assert "resnet101 weights 'torchvision': on first use (downloaded from https://" in out
    assert str(tmp_path / "torch-home") in out


def _tiny_experiments(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model: {backbone: resnet18, neck: fpn, norm: bn, freeze_at: 0, pretrained: none, min_size: 96,\n"
        "        max_size: 96, rpn_post_nms_top_n_train: 50, rpn_post_nms_top_n_test: 30,\n"
        "        box_batch_size_per_image: 16, box_representation_size: 32}\n"
        "solver: {ims_per_batch: 2, base_lr: 0.005, max_iter: 4, warmup_iters: 1, steps: [3], log_period: 1,\n"
        "         checkpoint_period: 4}\n"
        "data: {train: shapes, num_workers: 0}\n")
    pretrain = tmp_path / "pretrain.yaml"
    pretrain.write_text(f"_base_: {ROOT / 'configs/pretrain/shapes_crops.yaml'}\n"
                        "solver: {epochs: 1, batch_size: 16}\ndata: {crop_size: 32}\neval: {period: 0}\n")
    metrics = ("voc_map50", "coco_ap", "coco_ap50")
    return [
        Experiment("broken", str(tmp_path / "missing.yaml"), "resnet18", "tiny", metrics),
        Experiment("r18_scratch", str(config), "resnet18", "tiny", metrics),
        Experiment("r18_pretrained", str(config), "resnet18", "tiny", metrics, baseline="r18_scratch",
                   pretrain=str(pretrain), overrides=("solver.seed=1",)),
    ]


def _in_process_tools(monkeypatch):
    """Run the child programs in this process, so the small shapes fixture applies to them."""
    commands = []

    def run_program(name, args, log=print):
        commands.append([name] + [str(a) for a in args])
        monkeypatch.setattr(sys, "argv", [name] + [str(a) for a in args])
        try:
            importlib.import_module(f"detection.cli.{name}").main([str(a) for a in args])
        except SystemExit as stop:
            if stop.code:
                raise UserError(f"{name} exited with status {stop.code}") from None
    monkeypatch.setattr(runner, "run_program", run_program)
    return commands


@pytest.mark.slow
def _voc_box(bbox):
    """COCO [x, y, w, h] (continuous, 0-based) -> VOC 1-based pixel [x1, y1, x2, y2]."""
    x, y, w, h = bbox
    return [x + 1.0, y + 1.0, x + w, y + h]


def _devkit_map50(coco_gt, predictions_json):
    """VOC area mAP at IoU >= 0.5 (the runner's default) by the devkit's loop reference, inputs read from the
    COCO ground truth and the results file themselves; crowd objects count as difficult."""
    cat_ids = sorted(coco_gt.cats)
    label = {c: k + 1 for k, c in enumerate(cat_ids)}
    gts = {}
    for image_id in sorted(coco_gt.imgs):
        anns = coco_gt.imgToAnns[image_id]
        gts[image_id] = {"boxes": np.array([_voc_box(a["bbox"]) for a in anns]).reshape(-1, 4),
                         "labels": [label[a["category_id"]] for a in anns],
                         "difficult": [bool(a.get("iscrowd", 0)) for a in anns]}
    dets = {}
    for r in json.loads(Path(predictions_json).read_text()):
        d = dets.setdefault(r["image_id"], {"boxes": [], "scores": [], "labels": []})
        d["boxes"].append(_voc_box(r["bbox"]))
        d["scores"].append(r["score"])
        d["labels"].append(label[r["category_id"]])
    return ref_evaluate(dets, gts, [coco_gt.cats[c]["name"] for c in cat_ids], 0.5, "area", True)[1]


def _cocoeval_box_ap(coco_gt, predictions_json):
    """COCO box AP@[.5:.95] by pycocotools' COCOeval on the results file (0 for an empty file)."""
    if not json.loads(Path(predictions_json).read_text()):
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(str(predictions_json)), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return float(coco_eval.stats[0])


def test_a_suite_trains_evaluates_reports_and_survives_a_broken_experiment(small_shapes, tmp_path, monkeypatch):
    commands = _in_process_tools(monkeypatch)
    tiny = _tiny_experiments(tmp_path)
    runs = tmp_path / "runs"
    outcomes = run_suite(tiny, runs)
    by_name = {o.name: o for o in outcomes}
    assert by_name["broken"].status == "failed" and "missing.yaml does not exist" in by_name["broken"].message
    assert by_name["r18_scratch"].status == by_name["r18_pretrained"].status == "measured"
    # the pretrained run got the pretraining tool's backbone
    assert [c[0] for c in commands] == ["train_det", "pretrain_cls", "train_det"]
    assert f"model.pretrained={runs / 'pretrain' / 'resnet18.pth'}" in commands[-1]
    assert "model.pretrained" not in " ".join(commands[0])
    assert 0 <= by_name["r18_pretrained"].details["pretrain_top1"] <= 100

    # the recorded numbers are those of an independent evaluation of the saved predictions: the VOC devkit's
    # loop reference and pycocotools' COCOeval run directly, neither through the runner's evaluation code
    coco_gt = DetectionDataset(load_dataset("shapes_val", "test")).data.coco
    for name in ("r18_scratch", "r18_pretrained"):
        predictions = runs / name / "model_final.shapes_val.predictions.json"
        recorded = json.loads((runs / name / "result.json").read_text())
        assert recorded["metrics"]["voc_map50"] == pytest.approx(100 * _devkit_map50(coco_gt, predictions), abs=1e-3)
        assert recorded["metrics"]["coco_ap"] == pytest.approx(100 * _cocoeval_box_ap(coco_gt, predictions), abs=1e-3)
        assert np.isfinite(recorded["details"]["final_loss"]) and recorded["details"]["iterations"] == 4

    report = write_report("tiny", tiny, outcomes, runs, tmp_path / "report", "python tools/reproduce.py --suite tiny")
    text = report.read_text()
    assert "**broken** (failed)" in text and "missing.yaml does not exist" in text
    scratch, pretrained = by_name["r18_scratch"].metrics, by_name["r18_pretrained"].metrics
    gain = pretrained["voc_map50"] - scratch["voc_map50"]
    assert f"| r18_pretrained | resnet18 | VOC mAP@0.5 (area) | {pretrained['voc_map50']:.1f} | {gain:+.1f}" in text
    for png in ("voc_map50.png", "coco_ap.png", "training_loss.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000 and f"]({png})" in text

    # a second pass reuses the checkpoints: nothing is trained again
    before = len(commands)
    again = run_suite(tiny[1:], runs)
    assert len(commands) == before
    assert [o.metrics for o in again] == [by_name["r18_scratch"].metrics, by_name["r18_pretrained"].metrics]


def test_a_test_time_row_evaluates_the_checkpoint_it_names_without_training(small_shapes, tmp_path,
                                                                             monkeypatch):
    commands = _in_process_tools(monkeypatch)
    trained = _tiny_experiments(tmp_path)[1]
    metrics = trained.metrics
    refined = Experiment("r18_refined", trained.config, "resnet18", "tiny", metrics, baseline=trained.name,
                         checkpoint_from=trained.name, box_refinement=True)
    multi = Experiment("r18_ms", trained.config, "resnet18", "tiny", metrics, baseline=trained.name,
                       checkpoint_from=trained.name, tta_scales=(80, 96))
    runs = tmp_path / "runs"
    missing = run_suite([refined], runs)[0]
    assert missing.status == "missing" and f"checkpoint {runs / trained.name / 'model_final.pth'}: MISSING" in \
        missing.message and "--only r18_scratch" in missing.message
    outcomes = run_suite([trained, refined, multi], runs)
    assert [c[0] for c in commands] == ["train_det"]  # one training: the test-time rows reuse it
    assert [o.status for o in outcomes] == ["measured"] * 3
    predictions = [json.loads((runs / n / "model_final.shapes_val.predictions.json").read_text())
                   for n in ("r18_scratch", "r18_refined", "r18_ms")]
    assert predictions[0] != predictions[1] and predictions[0] != predictions[2]
    assert outcomes[1].details["iterations"] == outcomes[0].details["iterations"] == 4  # the trained run's
    assert not (runs / "r18_refined" / "model_final.pth").exists()


def test_results_table_marks_what_was_not_measured():
    e = [Experiment("a", "x.yaml", "vgg16", "T", ("coco_ap",), {"coco_ap": 21.2}),
         Experiment("b", "x.yaml", "resnet101", "T", ("coco_ap",), {"coco_ap": 27.2}, baseline="a")]
    lines = results_table(e, [Outcome("a", "measured", {"coco_ap": 20.0}), Outcome("b", "failed")])
    assert "| a | vgg16 | COCO AP@[.5,.95] | 20.0 | — | 21.2 | — |" in lines
    assert "| b | resnet101 | COCO AP@[.5,.95] | — (failed) | — | 27.2 | +6.0 (+28%) |" in lines


def test_ctrl_c_in_a_child_tool_stops_the_suite(small_shapes, tmp_path, monkeypatch):
    import subprocess
    calls = []

    def interrupted(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 130)  # what train_det.py exits with after saving
    monkeypatch.setattr(runner.subprocess, "run", interrupted)
    tiny = _tiny_experiments(tmp_path)[1:]
    with pytest.raises(KeyboardInterrupt, match="run the same command again to go on"):
        run_suite(tiny, tmp_path / "runs")
    assert len(calls) == 1 and calls[0][1:3] == ["-m", "detection.cli.train_det"]  # the second never started


def test_seeds_run_in_their_own_folders_and_report_mean_std_curves_and_claims(small_shapes, tmp_path,
                                                                             monkeypatch):
    commands = _in_process_tools(monkeypatch)
    _, scratch, pretrained = _tiny_experiments(tmp_path)
    pretrain = tmp_path / "pretrain_curves.yaml"  # two epochs, validated each: the Fig. 4 curves
    pretrain.write_text(f"_base_: {pretrained.pretrain}\nsolver: {{epochs: 2}}\neval: {{period: 1}}\n")
    pretrained = dataclasses.replace(pretrained, pretrain=str(pretrain), overrides=())
    context = Experiment("r18_context", scratch.config, "resnet18", "options", scratch.metrics,
                         baseline="r18_pretrained", pretrain=str(pretrain),
                         overrides=("model.global_context=true",))
    ensemble = Experiment("r18_ensemble", scratch.config, "resnet18", "options", scratch.metrics,
                          baseline="r18_pretrained", ensemble_of=("r18_scratch", "r18_pretrained"))
    tiny = [scratch, pretrained, context, ensemble]
    runs = tmp_path / "runs"
    outcomes = run_suite(tiny, runs, seeds=2)
    assert [(o.name, o.seed, o.status) for o in outcomes] == [
        (e.name, seed, "measured") for seed in (0, 1) for e in tiny]
    # seed 0 is the config as written in the runs folder; seed 1 sets solver.seed=1 in its own folder
    trained = [c for c in commands if c[0] == "train_det"]
    assert [c[c.index("--output") + 1] for c in trained] == [
        str(runs / "r18_scratch"), str(runs / "r18_pretrained"), str(runs / "r18_context"),
        str(runs / "seed1" / "r18_scratch"), str(runs / "seed1" / "r18_pretrained"),
        str(runs / "seed1" / "r18_context")]
    assert all("solver.seed=1" in c for c in trained[3:]) and not any("solver.seed=1" in c for c in trained[:3])
    pretrained_with = [c for c in commands if c[0] == "pretrain_cls"]
    assert len(pretrained_with) == 2 and "solver.seed=1" in pretrained_with[1]  # once a seed, shared by two rows
    assert f"model.pretrained={runs / 'seed1' / 'pretrain' / 'resnet18.pth'}" in trained[4]
    weights = [torch.load(runs / f / "pretrain" / "resnet18.pth", weights_only=True)["conv1.weight"]
               for f in (".", "seed1")]
    assert not torch.equal(*weights)  # the seeds differ

    # the ensemble scores the merged predictions of its members, of its own seed
    for seed, folder in ((0, runs), (1, runs / "seed1")):
        coco_gt = DetectionDataset(load_dataset("shapes_val", "test")).data.coco
        merged = folder / "r18_ensemble" / "model_final.shapes_val.predictions.json"
        recorded = next(o for o in outcomes if o.name == "r18_ensemble" and o.seed == seed).metrics
        assert recorded["coco_ap"] == pytest.approx(100 * _cocoeval_box_ap(coco_gt, merged), abs=1e-3)

    claims = (Claim("pretraining helps", (Comparison("r18_pretrained", "r18_scratch", "voc_map50"),)),
              Claim("resnet18 learns", (Comparison("resnet18", "resnet18", "val_error"),)))
    report = write_report("tiny", tiny, outcomes, runs, tmp_path / "report", "reproduce", seeds=2, claims=claims)
    text = report.read_text()
    values = [o.metrics["voc_map50"] for o in outcomes if o.name == "r18_pretrained"]
    spread = f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"
    assert f"| r18_pretrained | resnet18 | VOC mAP@0.5 (area) | {spread} |" in text
    assert f"| {values[0]:.1f}, {values[1]:.1f} |" in text  # each seed's value
    assert "- seeds: 2 (0..1); numbers are mean ± sample standard deviation" in text
    diffs = [p - s for p, s in zip(values, [o.metrics["voc_map50"] for o in outcomes if o.name == "r18_scratch"])]
    verdict = "holds" if all(d > 0 for d in diffs) else ("fails" if sum(diffs) <= 0 else "mixed")
    assert f"({sum(d > 0 for d in diffs)} of 2 seeds): **{verdict}**" in text
    assert "- resnet18 learns: **contradicted**" in text  # a net is never better than itself
    assert "| resnet18 | " in text.split("## Pretraining")[1]  # the pretraining table
    assert (tmp_path / "report" / "pretraining_error.png").stat().st_size > 1000
    assert "](pretraining_error.png)" in text


def test_pretraining_records_training_accuracy_per_epoch(small_shapes, tmp_path, monkeypatch):
    commands = _in_process_tools(monkeypatch)
    _, _, pretrained = _tiny_experiments(tmp_path)
    path = runner.pretrain(pretrained, tmp_path / "runs", overrides=("eval.period=1",))
    body = json.loads(path.with_suffix(".metrics.json").read_text())
    assert commands[0][-1] == "eval.period=1"
    assert 0 <= body["epochs"][0]["train_top1"] <= 1 and 0 <= body["epochs"][0]["top1"] <= 1
    assert body["seconds"] > 0


def test_seeds_must_be_positive(capsys):
    from detection.cli.reproduce import main
    with pytest.raises(SystemExit):
        main(["--suite", "shapes", "--seeds", "0"])
    assert "--seeds 0: give 1 or more seeds" in capsys.readouterr().err


def test_report_only_rewrites_the_report_from_the_recorded_results(small_shapes, tmp_path, monkeypatch):
    commands = _in_process_tools(monkeypatch)
    _, scratch, _ = _tiny_experiments(tmp_path)
    runs = tmp_path / "runs"
    measured = run_suite([scratch], runs)
    assert len(commands) == 1
    again = recorded_outcomes([scratch], runs, seeds=2)
    assert len(commands) == 1  # nothing trained or evaluated
    assert (again[0].status, again[0].metrics, again[0].details) == \
        (measured[0].status, measured[0].metrics, measured[0].details)
    assert again[1].status == "missing" and f"{runs / 'seed1' / 'r18_scratch' / 'result.json'} does not exist" \
        in again[1].message


def test_a_row_measured_in_fewer_seeds_says_so():
    e = [Experiment("a", "x.yaml", "resnet18", "T", ("coco_ap",)),
         Experiment("b", "x.yaml", "resnet34", "T", ("coco_ap",), baseline="a")]
    outcomes = [Outcome("a", "measured", {"coco_ap": 20.0}), Outcome("b", "measured", {"coco_ap": 24.0}),
                Outcome("a", "measured", {"coco_ap": 22.0}, seed=1), Outcome("b", "missing", seed=1)]
    lines = results_table(e, outcomes)
    assert "| a | resnet18 | COCO AP@[.5,.95] | 21.0 ± 1.4 | — | 20.0, 22.0 |" in lines
    # b's gain is over a's value of the same seed, not over a's mean of two seeds
    assert "| b | resnet34 | COCO AP@[.5,.95] | 24.0 (1 seed) | +4.0 (+20%) vs a (seed 0) | 24.0 |" in lines
    assert "- **b** (seed 1) (not run: something is missing):" in problems(outcomes)
