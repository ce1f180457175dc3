"""The PNG drawn at the end of training: losses, learning rate and evaluation metrics against iterations."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from backbones.atomic_files import write_atomically  # noqa: E402

from .metrics_log import read_metrics  # noqa: E402
from .run_folder import record  # noqa: E402


def _series(records, key):
    points = [(r["iteration"], r[key]) for r in records if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def plot_training_curves(metrics_path, png_path):
    """Draw ``metrics.jsonl`` into ``png_path``; returns the path, or None if nothing was logged."""
    records = read_metrics(metrics_path)
    if not records:
        return None
    keys = sorted({k for r in records for k in r})
    losses = ["total_loss"] + [k for k in keys if k.startswith("loss")]
    metrics = [k for k in keys if k.startswith("eval/")]
    panels = [("losses", losses, "log"), ("learning rate", ["lr"], "linear")]
    if metrics:
        panels.append(("evaluation", metrics, "linear"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, names, scale) in zip(axes[0], panels):
        for name in names:
            x, y = _series(records, name)
            if x:
                ax.plot(x, y, marker="o" if title == "evaluation" else None, markersize=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_yscale(scale)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        return write_atomically(record(png_path), lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
