"""Training metrics: one JSON line per logged iteration (``metrics.jsonl``) and TensorBoard events.

A resumed run drops lines and events past the iteration it resumes from (a
run can get further than its last checkpoint before it is stopped), so the
log reads as one uninterrupted run.
"""
import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

METRICS_FILE = "metrics.jsonl"


def read_metrics(path) -> list:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricsLog:
    """``enabled=False`` (ranks other than 0): writes nothing."""

    def __init__(self, output_dir, start_iteration=0, enabled=True):
        self.path, self.enabled = Path(output_dir) / METRICS_FILE, enabled
        if not enabled:
            return
        kept = [r for r in read_metrics(self.path) if r["iteration"] <= start_iteration] if start_iteration else []
        self.file = open(self.path, "w")
        for record in kept:
            self.file.write(json.dumps(record) + "\n")
        self.tensorboard = SummaryWriter(str(output_dir), purge_step=start_iteration or None)

    def write(self, iteration: int, scalars: dict):
        if not self.enabled:
            return
        self.file.write(json.dumps({"iteration": iteration, **scalars}) + "\n")
        self.file.flush()
        for name, value in scalars.items():
            self.tensorboard.add_scalar(name if "/" in name else f"train/{name}", value, iteration)
        self.tensorboard.flush()

    def close(self):
        if not self.enabled:
            return
        self.file.close()
        self.tensorboard.close()
