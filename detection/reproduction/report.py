"""report.md for a suite: measured vs paper numbers, gains over each baseline, plots, what is missing."""
import math
import os
import platform
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..engine.metrics_log import read_metrics  # noqa: E402
from .experiments import METRICS  # noqa: E402

STATUS_TEXT = {"measured": "measured", "submitted": "results written for the evaluation server",
               "missing": "not run: something is missing", "failed": "failed"}


def machine() -> str:
    if torch.cuda.is_available():
        device = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    else:
        device = "no GPU"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.processor() or platform.machine()}, {cpus} CPU cores, {device}; Python "
            f"{platform.python_version()}, torch {torch.__version__}")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2], timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parents[2], timeout=10).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "") if out.returncode == 0 else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _number(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _gain(value, base) -> str:
    if value is None or base is None:
        return "—"
    relative = f" ({100 * (value - base) / base:+.0f}%)" if base > 0 else ""
    return f"{value - base:+.1f}{relative}"


def results_table(experiments, outcomes) -> list:
    """Markdown lines: one row per experiment and metric."""
    by_name = {o.name: o for o in outcomes}
    lines = []
    for table in dict.fromkeys(e.table for e in experiments):
        rows = [e for e in experiments if e.table == table]
        has_paper = any(e.paper for e in rows)
        lines += [f"### {table}", ""]
        header = ["experiment", "backbone", "metric", "measured", "gain over baseline"]
        if has_paper:
            header += ["paper", "paper's gain"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e in rows:
            outcome = by_name.get(e.name)
            base = by_name.get(e.baseline)
            base_exp = next((x for x in experiments if x.name == e.baseline), None)
            for metric in e.metrics:
                value = outcome.metrics.get(metric) if outcome else None
                base_value = base.metrics.get(metric) if base else None
                gain = _gain(value, base_value) + (f" vs {e.baseline}" if e.baseline and value is not None
                                                   and base_value is not None else "")
                cells = [e.name, e.backbone, METRICS[metric], _number(value) if value is not None else
                         f"— ({outcome.status if outcome else 'not run'})", gain]
                if has_paper:
                    paper = e.paper.get(metric)
                    paper_base = base_exp.paper.get(metric) if base_exp else None
                    cells += [_number(paper), _gain(paper, paper_base)]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def details_table(experiments, outcomes) -> list:
    by_name = {o.name: o for o in outcomes}
    rows = [(e, by_name[e.name]) for e in experiments if e.name in by_name and by_name[e.name].details]
    if not rows:
        return []
    lines = ["| experiment | final training loss | iterations | training time | pretrained backbone top-1 |",
             "|---|---|---|---|---|"]
    for e, o in rows:
        d = o.details
        top1 = f"{d['pretrain_top1']:.1f}%" if "pretrain_top1" in d else ("—" if e.uses_pretraining else
                                                                          "— (from scratch)")
        minutes = f"{d['train_seconds'] / 60:.1f} min" if "train_seconds" in d else "—"
        lines.append(f"| {e.name} | {d.get('final_loss', float('nan')):.3f} | {d.get('iterations', '—')} | {minutes} | "
                     f"{top1} |")
    return lines + [""]


def problems(outcomes) -> list:
    lines = []
    for o in outcomes:
        if o.status in ("missing", "failed"):
            lines.append(f"- **{o.name}** ({STATUS_TEXT[o.status]}):")
            if o.needs:
                lines += [f"  - {n.line()}" for n in o.needs]
            else:
                lines.append(f"  - {o.message}")
        elif o.status == "submitted":
            lines.append(f"- **{o.name}**: {o.message}")
    return lines


def plot_metric_bars(experiments, outcomes, path, metric):
    """One bar per experiment (measured; the paper's beside it where there is one)."""
    by_name = {o.name: o for o in outcomes}
    rows = [e for e in experiments if metric in e.metrics]
    if not rows:
        return None
    measured = [by_name[e.name].metrics.get(metric, 0) if e.name in by_name else 0 for e in rows]
    paper = [e.paper.get(metric, 0) for e in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4))
    width = 0.4 if any(paper) else 0.7
    ax.bar([i - (width / 2 if any(paper) else 0) for i in x], measured, width, label="measured", color="tab:blue")
    if any(paper):
        ax.bar([i + width / 2 for i in x], paper, width, label="paper", color="tab:gray")
    for i, value in zip(x, measured):
        if value:
            ax.text(i - (width / 2 if any(paper) else 0), value, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(x))
    ax.set_xticklabels([e.name for e in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(METRICS[metric])
    ax.set_title(f"{METRICS[metric]} per experiment (0: not measured)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_loss_curves(experiments, runs_root: Path, path, window=10):
    """Total training loss per iteration (moving average over ``window`` log points) of every run."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for e in experiments:
        records = [r for r in read_metrics(runs_root / e.name / "metrics.jsonl") if "total_loss" in r]
        if not records:
            continue
        its = [r["iteration"] for r in records]
        loss = [r["total_loss"] for r in records]
        smooth = [sum(loss[max(0, i - window + 1):i + 1]) / len(loss[max(0, i - window + 1):i + 1])
                  for i in range(len(loss))]
        ax.plot(its, smooth, label=e.name, linestyle="--" if "scratch" in e.name else "-")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"total loss (moving average of {window} logs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(suite_name, experiments, outcomes, runs_root: Path, report_dir: Path, command: str,
                 preamble="", seconds=None) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for metric in dict.fromkeys(m for e in experiments for m in e.metrics):
        if any(metric in o.metrics for o in outcomes):
            png = plot_metric_bars(experiments, outcomes, report_dir / f"{metric}.png", metric)
            plots.append((METRICS[metric], png))
    curves = plot_loss_curves(experiments, runs_root, report_dir / "training_loss.png")
    if curves:
        plots.append(("training loss", curves))
    counts = {s: sum(o.status == s for o in outcomes) for s in STATUS_TEXT}
    lines = [f"# Reproduction report: `{suite_name}` suite", "",
             f"Generated by `{command}`", "",
             f"- machine: {machine()}",
             f"- commit: {git_commit()}",
             f"- runs folder: `{runs_root}`",
             "- experiments: " + ", ".join(f"{n} {STATUS_TEXT[s]}" for s, n in counts.items() if n)]
    if seconds is not None:
        lines.append(f"- wall time of this invocation: {seconds / 60:.1f} min")
    lines.append("")
    if preamble:
        lines += [preamble.strip(), ""]
    lines += ["## Results", ""] + results_table(experiments, outcomes)
    details = details_table(experiments, outcomes)
    if details:
        lines += ["## Training", ""] + details
    if plots:
        lines += ["## Plots", ""] + [f"![{title}]({Path(png).name})" for title, png in plots] + [""]
    trouble = problems(outcomes)
    if trouble:
        lines += ["## Not measured", ""] + trouble + [""]
    notes = [f"- {e.name}: {e.note}" for e in experiments if e.note]
    if notes:
        lines += ["## Notes", ""] + list(dict.fromkeys(notes)) + [""]
    path = report_dir / "report.md"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    return path
