"""The pretraining stage of a suite, drawn like the paper's Fig. 4 and tabulated over seeds.

He et al. 2015, Fig. 4: "Training on ImageNet. Thin curves denote training error, and bold curves denote
validation error of the center crops. Left: plain networks of 18 and 34 layers. Right: ResNets of 18 and
34 layers." Here the error is top-1 on the object crops: training error on each epoch's augmented crops as
they were trained, validation error on shapes_val's crops; each curve is the mean over seeds (the band and
the error bars: ± one standard deviation).
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pretraining.run import run_paths  # noqa: E402

from .runner import pretrained_backbone_path  # noqa: E402
from .seeds import Spread, seed_folder  # noqa: E402

FIG4_PANELS = (("plain networks", ("plain18", "plain34")), ("ResNets", ("resnet18", "resnet34")))
COLOURS = {"18": "tab:orange", "34": "tab:red", "50": "tab:purple"}


def pretraining_runs(runs_root: Path, seeds: int, backbone: str) -> dict:
    """``{seed: metrics JSON}`` of the backbone's finished pretraining runs (``<seed folder>/pretrain``)."""
    runs = {}
    for seed in range(seeds):
        path = run_paths(pretrained_backbone_path(seed_folder(runs_root, seed), backbone))["metrics"]
        if path.is_file():
            body = json.loads(path.read_text())
            if body.get("final"):
                runs[seed] = body
    return runs


def final_errors(runs: dict) -> dict:
    """``{"val": {seed: %}, "train": {seed: %}}``: top-1 errors at the end of pretraining."""
    errors = {"val": {}, "train": {}}
    for seed, body in runs.items():
        errors["val"][seed] = 100 * (1 - body["final"]["top1"])
        last = body["epochs"][-1] if body.get("epochs") else {}
        if "train_top1" in last:
            errors["train"][seed] = 100 * (1 - last["train_top1"])
    return errors


def _curve(runs: dict, key: str):
    """Epochs and the per-epoch Spread of the error from ``key`` (epochs every seed has)."""
    per_seed = [{r["epoch"]: 100 * (1 - r[key]) for r in body["epochs"] if key in r} for body in runs.values()]
    epochs = sorted(set.intersection(*(set(c) for c in per_seed))) if per_seed else []
    return epochs, [Spread(tuple(c[e] for c in per_seed)) for e in epochs]


def plot_fig4(runs_root: Path, seeds: int, path: Path, panels=FIG4_PANELS):
    """Two panels, plain and residual; thin: training error, bold: validation error. None without data."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True)
    drawn = 0
    for ax, (title, names) in zip(axes, panels):
        for name in names:
            runs = pretraining_runs(runs_root, seeds, name)
            if not runs:
                continue
            colour = COLOURS.get(name[-2:], None)
            label = f"{name.replace('plain', 'plain-').replace('resnet', 'ResNet-')}"
            for key, width, kind in (("train_top1", 1.0, "train"), ("top1", 2.5, "val")):
                epochs, curve = _curve(runs, key)
                if not epochs:
                    continue
                means = [c.mean for c in curve]
                if kind == "train":
                    ax.plot(epochs, means, color=colour, linewidth=width, label=f"{label} train")
                    ax.fill_between(epochs, [c.mean - c.std for c in curve], [c.mean + c.std for c in curve],
                                    color=colour, alpha=0.12, linewidth=0)
                else:
                    ax.errorbar(epochs, means, yerr=[c.std for c in curve], color=colour, linewidth=width,
                                capsize=3, label=f"{label} val")
                drawn += 1
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_ylabel("top-1 error (%)")
    n = len({s for _, names in panels for name in names for s in pretraining_runs(runs_root, seeds, name)})
    fig.suptitle(f"Pretraining on the object crops (thin: training, bold: validation error; mean ± std, "
                 f"{n} seed{'s' if n != 1 else ''})", fontsize=10)
    fig.tight_layout()
    if not drawn:
        plt.close(fig)
        return None
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pretraining_table(runs_root: Path, seeds: int, backbones) -> list:
    """Markdown lines: each backbone's final validation and training error over seeds, and its time."""
    lines = []
    for name in backbones:
        runs = pretraining_runs(runs_root, seeds, name)
        if not runs:
            continue
        errors = final_errors(runs)
        val, train = Spread(tuple(errors["val"].values())), errors["train"]
        train_text = Spread(tuple(train.values())).text() if train else "—"
        minutes = [b["seconds"] / 60 for b in runs.values() if "seconds" in b]
        lines.append(f"| {name} | {val.text()} | {train_text} | {val.seeds_text()} | "
                     f"{Spread(tuple(minutes)).text() + ' min' if minutes else '—'} |")
    if not lines:
        return []
    return ["| backbone | validation top-1 error (%) | training top-1 error (%) | validation error per seed | "
            "time per run |", "|---|---|---|---|---|"] + lines + [""]
