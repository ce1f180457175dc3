"""Run one experiment of a suite: pretrain its backbone if asked, train, evaluate, record.

Pretraining and training run the library's command-line programs
(``python -m detection.cli.pretrain_cls`` / ``train_det``) as child processes,
each command printed first, so one experiment's crash or out-of-memory cannot
take the suite down and each run folder is an ordinary training run that
``--resume`` continues. Evaluation runs here,
on the run's ``model_final.pth``; its numbers go back to the caller (the report)
and, as a record, to ``result.json`` in the run folder.
"""
import json
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from backbones.errors import UserError
from pretraining.run import run_paths

from ..data.catalog import load_dataset
from ..data.dataset import DetectionDataset
from ..engine.inference import predict
from ..ensemble import ensemble_predictions
from ..engine.metrics_log import read_metrics
from ..evaluation.results_file import load_results, save_results, write_json
from ..run.evaluate import checkpoint_and_dataset
from ..evaluation.dataset_eval import coco_metrics, voc_metrics
from ..evaluation.voc_results import write_voc_results
from .requirements import checkpoint_path, needs, training_config, unmet
from .seeds import seed_folder, seed_overrides

RESULT_FILE = "result.json"
PRETRAIN_FOLDER = "pretrain"


@dataclass
class Outcome:
    """What became of one experiment: ``measured``, ``submitted`` (results files for a server),
    ``missing`` (a need unmet) or ``failed``."""
    name: str
    status: str
    metrics: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    message: str = ""
    needs: list = field(default_factory=list)
    seed: int = 0


def run_program(name, args, log=print):
    """Run ``python -m detection.cli.<name>`` with this interpreter; a non-zero exit becomes a UserError."""
    command = [sys.executable, "-m", f"detection.cli.{name}"] + [str(a) for a in args]
    log("$ " + " ".join(shlex.quote(c) for c in command))
    code = subprocess.run(command).returncode
    if code in (130, 143) or code < 0:  # Ctrl-C / SIGTERM (the program saved a checkpoint): stop the suite
        raise KeyboardInterrupt(f"{name} was interrupted; run the same command again to go on: "
                                f"finished runs are reused and interrupted ones resume")
    if code != 0:
        raise UserError(f"{name} exited with status {code} (its message is printed above)")


def pretrained_backbone_path(runs_root: Path, backbone: str) -> Path:
    return runs_root / PRETRAIN_FOLDER / f"{backbone}.pth"


def pretrain(experiment, runs_root: Path, retrain=False, log=print, overrides=()) -> Path:
    """The backbone pretrained with the experiment's pretraining config (shared by the experiments
    that use the same backbone; reused when already there); ``overrides``: of the pretraining config."""
    path = pretrained_backbone_path(runs_root, experiment.backbone)
    if path.is_file() and not retrain:
        log(f"reusing pretrained {experiment.backbone}: {path}")
        return path
    unfinished = path.with_suffix(".checkpoint.pth").is_file() and not retrain  # written after every epoch
    run_program("pretrain_cls", ["--config", experiment.pretrain, "--backbone", experiment.backbone,
                                "--output", path, "--resume" if unfinished else "--overwrite", *overrides], log)
    return path


def train(experiment, run_dir: Path, pretrained: Optional[Path], retrain=False, log=print, overrides=()):
    """Train the experiment (detection.cli.train_det), unless its model_final.pth is already there;
    ``overrides`` follow the experiment's own."""
    if (run_dir / "model_final.pth").is_file() and not retrain:
        log(f"reusing {run_dir / 'model_final.pth'} (pass --retrain to train again)")
        return
    overrides = list(experiment.overrides) + list(overrides)
    if pretrained is not None:
        overrides.append(f"model.pretrained={pretrained}")
    resume = (run_dir / "last_checkpoint").is_file() and not retrain
    run_program("train_det", ["--config", experiment.config, "--output", run_dir,
                             "--resume" if resume else "--overwrite"] + overrides, log)


def score(experiment, dataset, predictions) -> dict:
    """The experiment's metrics in percent."""
    result = {}
    if "voc07_map50" in experiment.metrics:  # VOC 2007's own rule, as the paper's numbers use
        result["voc07_map50"] = 100 * voc_metrics(dataset, predictions, metric="11point")["mAP"]
    if "voc_map50" in experiment.metrics:
        result["voc_map50"] = 100 * voc_metrics(dataset, predictions)["mAP"]
    coco_keys = [k for k in experiment.metrics if k.startswith("coco_")]
    if coco_keys:
        iou_types = ("bbox", "segm") if "coco_mask_ap" in coco_keys else ("bbox",)
        coco = coco_metrics(dataset, predictions, iou_types=iou_types)
        names = {"coco_ap": ("bbox", "AP"), "coco_ap50": ("bbox", "AP50"), "coco_mask_ap": ("segm", "AP")}
        result.update({k: 100 * coco[names[k][0]][names[k][1]] for k in coco_keys})
    return result


def training_summary(run_dir: Path, tail=20) -> dict:
    """Final training loss (mean of the last ``tail`` logged values) and the run's length."""
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if "total_loss" in r]
    if not records:
        return {}
    last = records[-tail:]
    # each record's "time" is the mean seconds per iteration since the previous record
    steps = [r["iteration"] - p["iteration"] for p, r in zip([{"iteration": 0}] + records, records)]
    seconds = sum(n * r.get("time", 0.0) for n, r in zip(steps, records))
    return {"final_loss": sum(r["total_loss"] for r in last) / len(last), "iterations": records[-1]["iteration"],
            "train_seconds": seconds}


def predictions_path(run_dir: Path, dataset_name: str) -> Path:
    return run_dir / f"model_final.{dataset_name}.predictions.json"


def evaluate_ensemble(experiment, run_dir: Path, log=print) -> Outcome:
    """Merge the member experiments' saved predictions (per-class NMS + box voting) and score the union."""
    dataset = DetectionDataset(load_dataset(training_config(experiment).data.test, "test"))
    members = [predictions_path(run_dir.parent / name, dataset.name) for name in experiment.ensemble_of]
    log(f"merging the predictions of {', '.join(experiment.ensemble_of)} on {dataset.name}")
    predictions = ensemble_predictions([load_results(p, dataset) for p in members])
    save_results(predictions_path(run_dir, dataset.name), dataset, predictions)
    return Outcome(experiment.name, "measured", score(experiment, dataset, predictions))


def evaluate(experiment, run_dir: Path, device=None, log=print) -> Outcome:
    run_dir.mkdir(parents=True, exist_ok=True)  # a test-time row's own folder: its predictions and result
    if experiment.ensemble_of:
        return evaluate_ensemble(experiment, run_dir, log)
    checkpoint = checkpoint_path(experiment, run_dir)
    model, dataset = checkpoint_and_dataset(checkpoint, training_config(experiment).data.test, device,
                                            tta=experiment.tta, refine=experiment.box_refinement)
    log(f"evaluating {checkpoint} on {dataset.name} ({len(dataset)} images)"
        + (" with box refinement" if experiment.box_refinement else "")
        + (f" at shorter sides {list(experiment.tta_scales)}" if experiment.tta_scales else ""))
    predictions = predict(model, dataset)
    save_results(predictions_path(run_dir, dataset.name), dataset, predictions)
    details = training_summary(checkpoint.parent)
    if experiment.scored_by_server:
        folder = run_dir / f"voc_results_{dataset.name}"
        write_voc_results(folder, predictions, dataset.class_names, dataset.data.split or "test")
        return Outcome(experiment.name, "submitted", {}, details,
                       f"results files in {folder}: submit them to the PASCAL VOC evaluation server")
    return Outcome(experiment.name, "measured", score(experiment, dataset, predictions), details)


def run_experiment(experiment, runs_root: Path, eval_only=False, retrain=False, device=None, log=print,
                   suite_name="SUITE", seed=0) -> Outcome:
    """Everything for one experiment and seed; problems become an Outcome, never an exception.
    ``runs_root``: the suite's runs folder (seed k > 0 runs in its ``seed<k>`` folder)."""
    runs_root = seed_folder(runs_root, seed)
    run_dir = runs_root / experiment.name
    started = time.perf_counter()
    try:
        need_list = needs(experiment, run_dir, eval_only, suite_name)
        if unmet(need_list):
            return Outcome(experiment.name, "missing", needs=need_list, seed=seed,
                           message="; ".join(n.line() for n in unmet(need_list)))
        if not eval_only and experiment.trains:
            overrides = seed_overrides(seed)
            pretrained = (pretrain(experiment, runs_root, retrain, log, overrides)
                          if experiment.uses_pretraining else None)
            train(experiment, run_dir, pretrained, retrain, log, overrides)
        outcome = evaluate(experiment, run_dir, device, log)
        outcome.needs, outcome.seed = need_list, seed
    except UserError as err:
        return Outcome(experiment.name, "failed", message=str(err), seed=seed)
    except Exception as err:  # noqa: BLE001 - one experiment's bug must not cost the others their runs
        traceback.print_exc()
        return Outcome(experiment.name, "failed", message=f"{type(err).__name__}: {err} (traceback above)",
                       seed=seed)
    outcome.details["seconds"] = time.perf_counter() - started  # this invocation: training only if it trained
    if experiment.uses_pretraining:
        outcome.details.update(pretraining_summary(pretrained_backbone_path(runs_root, experiment.backbone)))
    write_json(run_dir / RESULT_FILE, {"status": outcome.status, "metrics": outcome.metrics,
                                       "details": outcome.details, "message": outcome.message})
    return outcome


def pretraining_summary(path: Path) -> dict:
    """Top-1 of the pretrained backbone and the pretraining's time, from the metrics JSON written beside it."""
    metrics = run_paths(path)["metrics"]
    if not metrics.is_file():
        return {}
    body = json.loads(metrics.read_text())
    final = body.get("final", {})
    summary = {"pretrain_top1": 100 * final["top1"]} if "top1" in final else {}  # the file holds fractions
    if "seconds" in body:
        summary["pretrain_seconds"] = body["seconds"]
    return summary


def recorded_outcomes(experiments, runs_root: Path, seeds=1) -> list:
    """The outcomes the runs folder holds (each run's result.json), evaluating nothing: the report rewritten
    from an earlier invocation's numbers."""
    outcomes = []
    for seed in range(seeds):
        for experiment in experiments:
            path = seed_folder(runs_root, seed) / experiment.name / RESULT_FILE
            if not path.is_file():
                outcomes.append(Outcome(experiment.name, "missing", seed=seed,
                                        message=f"{path} does not exist: run the suite without --report-only"))
                continue
            body = json.loads(path.read_text())
            outcomes.append(Outcome(experiment.name, body["status"], body.get("metrics", {}),
                                    body.get("details", {}), body.get("message", ""), seed=seed))
    return outcomes


def run_suite(experiments, runs_root: Path, eval_only=False, retrain=False, device=None, log=print,
              suite_name="SUITE", seeds=1) -> list:
    """Each experiment in turn, seed by seed (all of seed 0 first); one status line per experiment as it ends."""
    outcomes = []
    for seed in range(seeds):
        for number, experiment in enumerate(experiments, 1):
            tag = f"[{number}/{len(experiments)}]" + (f"[seed {seed}]" if seeds > 1 else "")
            log(f"{tag} {experiment.name}")
            outcome = run_experiment(experiment, runs_root, eval_only, retrain, device, log, suite_name, seed)
            shown = ", ".join(f"{k} {v:.1f}" for k, v in outcome.metrics.items())
            log(f"{tag} {experiment.name}: {outcome.status}"
                + (f": {shown}" if shown else "") + (f": {outcome.message}" if outcome.message else ""))
            outcomes.append(outcome)
    return outcomes
