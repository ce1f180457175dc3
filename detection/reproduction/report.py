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
from .claims import claims_section  # noqa: E402
from .pretraining_curves import plot_fig4, pretraining_table  # noqa: E402
from .seeds import Spread, by_seed, spreads  # noqa: E402

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
    """Markdown lines: one row per experiment and metric. Over several seeds: mean ± std (sample), the
    seeds' values beside it, and gains between the means over the seeds both rows have (named when
    that is not all of them)."""
    by_name = {}
    for o in outcomes:
        by_name.setdefault(o.name, o)  # the first seed's status stands for an experiment measured in none
    seeded = by_seed(outcomes)
    measured = spreads(outcomes, seeded)
    several = any(sp.n > 1 for metrics in measured.values() for sp in metrics.values())
    lines = []
    for table in dict.fromkeys(e.table for e in experiments):
        rows = [e for e in experiments if e.table == table]
        has_paper = any(e.paper for e in rows)
        lines += [f"### {table}", ""]
        header = ["experiment", "backbone", "metric", "measured" + (" (mean ± std)" if several else ""),
                  "gain over baseline"] + (["per seed"] if several else [])
        if has_paper:
            header += ["paper", "paper's gain"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e in rows:
            outcome = by_name.get(e.name)
            base_exp = next((x for x in experiments if x.name == e.baseline), None)
            for metric in e.metrics:
                spread = measured.get(e.name, {}).get(metric)
                gain = _paired_gain(seeded.get((e.name, metric), {}), seeded.get((e.baseline, metric), {}),
                                    e.baseline, several)
                shown = spread.text() + (" (1 seed)" if several and spread.n == 1 else "") if spread else \
                    f"— ({outcome.status if outcome else 'not run'})"
                cells = [e.name, e.backbone, METRICS[metric], shown, gain]
                if several:
                    cells.append(spread.seeds_text() if spread else "—")
                if has_paper:
                    paper = e.paper.get(metric)
                    paper_base = base_exp.paper.get(metric) if base_exp else None
                    cells += [_number(paper), _gain(paper, paper_base)]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _paired_gain(mine: dict, theirs: dict, baseline, several) -> str:
    """The gain of the mean over the seeds both rows were measured in ({seed: value} each)."""
    common = sorted(set(mine) & set(theirs))
    if not baseline or not common:
        return "—"
    value = sum(mine[s] for s in common) / len(common)
    base = sum(theirs[s] for s in common) / len(common)
    which = ""
    if several and (set(mine) != set(common) or set(theirs) != set(common)):
        which = f" (seed{'s' if len(common) > 1 else ''} {', '.join(map(str, common))})"
    return f"{_gain(value, base)} vs {baseline}{which}"


def _detail(outcomes, key, scale=1.0):
    values = tuple(scale * o.details[key] for o in outcomes if key in o.details)
    return Spread(values) if values else None


def details_table(experiments, outcomes) -> list:
    """One row per trained experiment: its training (and its backbone's pretraining), mean over seeds."""
    lines = []
    for e in experiments:
        done = [o for o in outcomes if o.name == e.name and o.details]
        if not done or not e.trains:
            continue
        loss, top1 = _detail(done, "final_loss"), _detail(done, "pretrain_top1")
        minutes = _detail(done, "train_seconds", 1 / 60)
        top1_text = f"{top1.text()}%" if top1 else ("—" if e.uses_pretraining else "— (from scratch)")
        iterations = max((o.details.get("iterations", 0) for o in done), default=0)
        lines.append(f"| {e.name} | {loss.text(3) if loss else '—'} | {iterations or '—'} | "
                     f"{minutes.text() + ' min' if minutes else '—'} | {top1_text} |")
    if not lines:
        return []
    several = len({o.seed for o in outcomes}) > 1
    return [f"| experiment | final training loss{' (mean ± std)' if several else ''} | iterations | "
            f"training time | pretrained backbone top-1 |", "|---|---|---|---|---|"] + lines + [""]


def compute_minutes(experiments, outcomes) -> float:
    """The training and pretraining time the runs recorded (reused runs included; each backbone's pretraining
    counted once a seed; rows that reuse another's checkpoint or predictions add nothing)."""
    by_name = {e.name: e for e in experiments}
    seconds, pretrained = 0.0, {}
    for o in outcomes:
        e = by_name.get(o.name)
        if e is None or not e.trains:
            continue
        seconds += o.details.get("train_seconds", 0.0)
        if "pretrain_seconds" in o.details:
            pretrained[(o.seed, e.backbone)] = o.details["pretrain_seconds"]
    return (seconds + sum(pretrained.values())) / 60


def problems(outcomes) -> list:
    lines = []
    several = len({o.seed for o in outcomes}) > 1
    for o in outcomes:
        if o.status in ("missing", "failed"):
            lines.append(f"- **{o.name}**{f' (seed {o.seed})' if several else ''} ({STATUS_TEXT[o.status]}):")
            if o.needs:
                lines += [f"  - {n.line()}" for n in o.needs]
            else:
                lines.append(f"  - {o.message}")
        elif o.status == "submitted":
            lines.append(f"- **{o.name}**: {o.message}")
    return lines


def plot_metric_bars(experiments, outcomes, path, metric):
    """One bar per experiment (measured, the mean over seeds with ± std error bars and each seed's dot; the
    paper's beside it where there is one)."""
    table = spreads(outcomes)
    rows = [e for e in experiments if metric in e.metrics]
    if not rows:
        return None
    found = [table.get(e.name, {}).get(metric) for e in rows]
    measured = [sp.mean if sp else 0 for sp in found]
    paper = [e.paper.get(metric, 0) for e in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4))
    width = 0.4 if any(paper) else 0.7
    centres = [i - (width / 2 if any(paper) else 0) for i in x]
    several = any(sp and sp.n > 1 for sp in found)
    ax.bar(centres, measured, width, label="measured" + (" (mean ± std over seeds)" if several else ""),
           color="tab:blue", yerr=[sp.std if sp else 0 for sp in found] if several else None, capsize=3)
    if several:
        for c, sp in zip(centres, found):
            if sp:
                ax.scatter([c] * sp.n, sp.values, s=8, color="black", zorder=3)
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
                 preamble="", seconds=None, seeds=1, claims=()) -> Path:
    """``seeds``: how many seeds the outcomes hold (numbers become mean ± std); ``claims``: the paper's
    claims to judge (:mod:`.claims`)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    pretrained = list(dict.fromkeys(e.backbone for e in experiments if e.uses_pretraining))
    plots = []
    for metric in dict.fromkeys(m for e in experiments for m in e.metrics):
        if any(metric in o.metrics for o in outcomes):
            png = plot_metric_bars(experiments, outcomes, report_dir / f"{metric}.png", metric)
            plots.append((METRICS[metric], png))
    curves = plot_loss_curves(experiments, runs_root, report_dir / "training_loss.png")
    if curves:
        plots.append(("training loss" + (" (seed 0)" if seeds > 1 else ""), curves))
    fig4 = plot_fig4(runs_root, seeds, report_dir / "pretraining_error.png") if pretrained else None
    if fig4:
        plots.insert(0, ("pretraining error, like the paper's Fig. 4", fig4))
    counts = {s: sum(o.status == s for o in outcomes) for s in STATUS_TEXT}
    lines = [f"# Reproduction report: `{suite_name}` suite", "",
             f"Generated by `{command}`", "",
             f"- machine: {machine()}",
             f"- commit: {git_commit()}",
             f"- runs folder: `{runs_root}`",
             "- experiments: " + ", ".join(f"{n} {STATUS_TEXT[s]}" for s, n in counts.items() if n)]
    if seeds > 1:
        lines.append(f"- seeds: {seeds} (0..{seeds - 1}); numbers are mean ± sample standard deviation over them")
    if seconds is not None:
        lines.append(f"- wall time of this invocation: {seconds / 60:.1f} min")
    compute = compute_minutes(experiments, outcomes)
    if compute:
        lines.append(f"- pretraining and training time recorded by the runs (reused runs included): "
                     f"{compute:.1f} min")
    spent = sum(o.details.get("seconds", 0.0) for o in outcomes) / 60
    if spent and seconds is None:  # the report rewritten from result.json files
        lines.append(f"- time the experiments took in the invocation that last ran each (pretraining, training "
                     f"and evaluation; a reused checkpoint counts only its evaluation): {spent:.1f} min")
    lines.append("")
    if preamble:
        lines += [preamble.strip(), ""]
    if claims:
        lines += ["## The paper's claims at this scale", ""] + claims_section(claims, outcomes, runs_root, seeds)
    lines += ["## Results", ""] + results_table(experiments, outcomes)
    pretraining = pretraining_table(runs_root, seeds, pretrained)
    if pretraining:
        lines += ["## Pretraining", ""] + pretraining
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
