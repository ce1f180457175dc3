"""Per-class precision-recall curves as a PNG."""
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from backbones.atomic_files import write_atomically  # noqa: E402

from ..engine.run_folder import record_if_run_folder  # noqa: E402


def plot_precision_recall(curves, aps, path, title):
    """``curves``: class -> (recall, precision) arrays; ``aps``: class -> AP, shown in the legend."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    for name, (recall, precision) in curves.items():
        if len(recall) and not math.isnan(aps.get(name, math.nan)):
            ax.plot(recall, precision, label=f"{name} ({100 * aps[name]:.1f})", linewidth=1.2)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:  # nothing detected: an empty legend only makes matplotlib warn
        ax.legend(fontsize=7, loc="lower left", ncol=2 if len(curves) > 10 else 1)
    fig.tight_layout()
    try:
        return write_atomically(record_if_run_folder(path), lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
