"""A suite repeated over seeds: where each seed's runs live, and each number summarised over the seeds.

Seed 0 is the configs as written, in the runs folder itself, so a one-seed suite is laid out as before and
``--seeds 3`` reuses its runs; seed k > 0 lives in ``<runs>/seed<k>`` and sets ``solver.seed=k`` for
pretraining (initial weights, crop order and jitter) and training (initial heads, image order and
augmentation) alike.
"""
import math
import statistics
from dataclasses import dataclass
from pathlib import Path


def seed_folder(runs_root: Path, seed: int) -> Path:
    return Path(runs_root) if seed == 0 else Path(runs_root) / f"seed{seed}"


def seed_overrides(seed: int) -> tuple:
    """The overrides of seed ``seed``, for both the pretraining and the training config."""
    return () if seed == 0 else (f"solver.seed={seed}",)


@dataclass(frozen=True)
class Spread:
    """One number measured once per seed."""
    values: tuple

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """The sample standard deviation (n - 1); 0 for a single seed."""
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    def text(self, digits=1) -> str:
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def seeds_text(self, digits=1) -> str:
        return ", ".join(f"{v:.{digits}f}" for v in self.values)


def by_seed(outcomes) -> dict:
    """``{(experiment, metric): {seed: value}}`` over the measured outcomes, seeds in order."""
    table = {}
    for o in sorted(outcomes, key=lambda o: o.seed):
        if o.status != "measured":
            continue
        for metric, value in o.metrics.items():
            if value is not None and math.isfinite(value):
                table.setdefault((o.name, metric), {})[o.seed] = value
    return table


def spreads(outcomes, seeded=None) -> dict:
    """``{experiment: {metric: Spread}}`` over the measured outcomes (``seeded``: their :func:`by_seed`)."""
    table = {}
    for (name, metric), values in (by_seed(outcomes) if seeded is None else seeded).items():
        table.setdefault(name, {})[metric] = Spread(tuple(values.values()))
    return table
