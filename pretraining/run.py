"""A whole pretraining run from a :class:`~pretraining.config.PretrainConfig`: data sets in, weights out.

The run layer (``detection.run.pretrain``) resolves the config and the data
(an ImageFolder tree, :func:`folder_sets`, or a detection dataset's object
crops); :func:`run_pretraining` builds the backbone, trains it with
:func:`~pretraining.trainer.fit_classifier`, evaluates it and writes the
weights, the resumable checkpoint and the metrics JSON.
"""
import json
import time
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm import tqdm

import backbones
from backbones.atomic_files import write_text
from backbones.errors import UserError

from .config import PretrainConfig
from .data import ImageFolderSet, eval_transform, train_transform
from .trainer import evaluate, fit_classifier, read_pretrain_checkpoint, save_backbone


class PretrainSets(NamedTuple):
    """The data of a run: training, per-epoch validation and final evaluation sets, and how to name them."""
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    final: torch.utils.data.Dataset     # ``val`` itself, or its 10-crop version
    train_what: str                     # e.g. "1,281,167 images of /data/imagenet/train"
    val_what: str
    eval_crops: bool = True             # images evaluated by crops (ImageFolder); False: object crops as they are


def folder_sets(cfg: PretrainConfig, root) -> PretrainSets:
    """The sets of an ImageFolder tree at ``root`` (``root/<train_split>/<class>/*.jpg``, likewise val)."""
    d, e = cfg.data, cfg.eval
    root = Path(root)
    train = ImageFolderSet(root, d.train_split, train_transform(d.crop_size, d.scale_min, d.scale_max, d.hflip,
                                                                d.pca_lighting_std), seed=cfg.solver.seed)
    val = ImageFolderSet(root, d.val_split, eval_transform(e.resize, cfg.eval_crop_size, "center"),
                         classes=train.class_names)
    final = val if e.final == "center" else ImageFolderSet(
        root, d.val_split, eval_transform(e.resize, cfg.eval_crop_size, "10crop"), classes=train.class_names)
    what = (f"{len(train)} images of {root / d.train_split}", f"{len(val)} images of {root / d.val_split}")
    return PretrainSets(train, val, final, *what)


def run_paths(output) -> dict:
    """The files of a run writing the backbone to ``output``: the checkpoint, the metrics JSON and the lock
    held while it runs, beside it."""
    output = Path(output)
    stem = output.name[:-len(".pth")] if output.name.endswith(".pth") else output.name
    return {"output": output, "checkpoint": output.with_name(stem + ".checkpoint.pth"),
            "metrics": output.with_name(stem + ".metrics.json"), "lock": output.with_name(stem + ".lock")}


def _pct(x):
    return f"{100 * x:.1f}%"


def _epoch_line(record, epochs):
    line = f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, lr {record['lr']:.3g}"
    if "train_top1" in record:
        line += f", train top-1 {_pct(record['train_top1'])}"
    if "top1" in record:
        line += f", val top-1 {_pct(record['top1'])}"
        line += f", top-5 {_pct(record['top5'])}" if "top5" in record else ""
    return line


def run_pretraining(cfg: PretrainConfig, sets: PretrainSets, output, device="cpu", resume=False, overwrite=False,
                    progress=True, log=tqdm.write, on_epoch_end=None) -> dict:
    """Train ``cfg.model.backbone`` on ``sets`` as ``cfg`` says and write its weights to ``output`` (a .pth
    state dict). ``cfg`` and ``sets`` come resolved from the run layer (``detection.run.pretrain``).

    Beside ``output``: ``<stem>.checkpoint.pth`` (rewritten after every epoch; ``resume=True`` continues
    from it) and ``<stem>.metrics.json`` ({"epochs": [{"epoch", "loss", "lr", "top1", "top5"}, ...],
    "final": {"top1", "top5", "eval": "10crop" | "center", "samples"}, "seconds", ...}; accuracies are
    fractions; ``seconds``: training and evaluation in this call).
    Returns that JSON's content.
    """
    paths = run_paths(output)
    checkpoint = paths["checkpoint"]
    if overwrite:
        for key in ("checkpoint", "metrics"):
            paths[key].unlink(missing_ok=True)
    elif not resume and checkpoint.is_file():
        state = read_pretrain_checkpoint(checkpoint)
        if state["epoch"] < state["epochs"]:
            raise UserError(f"{checkpoint} holds an unfinished run (epoch {state['epoch']} of {state['epochs']}); "
                            f"pass --resume to continue it or --overwrite to start over")
    m, s, d = cfg.model, cfg.solver, cfg.data
    train_set, val_set, final_set = sets.train, sets.val, sets.final
    classes = list(train_set.class_names)
    torch.manual_seed(s.seed)  # initial weights; the data order is seeded in fit_classifier
    options = {"shortcut": m.shortcut} if m.shortcut is not None else {}
    if m.zero_init_residual:
        options["zero_init_residual"] = True
    model = backbones.build(m.backbone, norm=m.norm, num_classes=len(classes), **options)
    log(f"pretraining {m.backbone} on {sets.train_what} ({len(classes)} classes), {s.epochs} epochs, "
        f"{s.optimizer} lr {s.base_lr:g}, batch {s.batch_size}, {s.schedule} schedule, on {device}")
    report = {"backbone": m.backbone, "dataset": d.dataset, "num_classes": len(classes),
              "output": str(paths["output"]), "config": cfg.to_dict(), "epochs": []}

    def write_metrics(final=None):
        body = dict(report, **({"final": final} if final else {}))
        write_text(paths["metrics"], json.dumps(body, indent=1) + "\n")

    def epoch_done(records):
        report["epochs"] = list(records)
        log(_epoch_line(records[-1], s.epochs))
        write_metrics()
        if on_epoch_end is not None:
            on_epoch_end(records)

    eval_batch = cfg.eval.batch_size or s.batch_size
    started = time.perf_counter()
    try:
        records = fit_classifier(
            model, train_set, epochs=s.epochs, batch_size=s.batch_size, base_lr=s.base_lr,
            weight_decay=s.weight_decay, optimizer=s.optimizer, warmup_fraction=s.warmup_fraction, seed=s.seed,
            num_workers=d.num_workers, progress=progress, momentum=s.momentum, schedule=s.schedule,
            gamma=s.gamma, steps=s.steps, plateau_patience=s.plateau_patience,
            plateau_threshold=s.plateau_threshold, min_lr=s.min_lr,
            val_set=val_set if cfg.eval.period else None, eval_period=cfg.eval.period,
            eval_batch_size=eval_batch, device=device, checkpoint=checkpoint, resume=resume,
            checkpoint_extra={"config": cfg.to_dict(), "class_names": classes}, on_epoch_end=epoch_done)
    except KeyboardInterrupt:
        if checkpoint.is_file():
            log(f"stopped; {checkpoint} holds the last finished epoch: run the same command with --resume "
                f"to continue")
        raise
    report["epochs"] = records
    mode = cfg.eval.final
    if final_set is val_set and records and "top1" in records[-1]:  # the last epoch's validation is it
        final = {k: records[-1][k] for k in ("top1", "top5") if k in records[-1]}
    else:
        final = evaluate(model, final_set, batch_size=max(1, eval_batch // 10) if mode == "10crop" else eval_batch,
                         device=device, num_workers=d.num_workers)
    final = {**final, "eval": mode, "samples": len(final_set)}
    how = "" if not sets.eval_crops else (", 10-crop" if mode == "10crop" else ", centre crop")
    log(f"top-1 accuracy on {sets.val_what}{how}: {_pct(final['top1'])}"
        + (f", top-5 {_pct(final['top5'])}" if "top5" in final else ""))
    log(f"wrote {save_backbone(model, paths['output'])}")
    report["seconds"] = time.perf_counter() - started  # this invocation's (a resumed run: its remaining epochs)
    write_metrics(final)
    log(f"wrote {paths['metrics']} (per-epoch metrics; resume checkpoint {checkpoint})")
    return dict(report, final=final)
