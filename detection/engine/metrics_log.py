"""Training metrics: one JSON line per logged iteration (``metrics.jsonl``) and TensorBoard events.

A resumed run drops lines and events past the iteration it resumes from (a
run can get further than its last checkpoint before it is stopped), so the
log reads as one uninterrupted run. A crash can tear the last line in half:
that line is dropped (and the file truncated when the run resumes); anything
else unreadable is an error naming the file and the line.
"""
import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from backbones.atomic_files import write_failure, write_text
from backbones.errors import UserError

from .run_folder import record

METRICS_FILE = "metrics.jsonl"


def read_metrics(path) -> list:
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and isinstance(entry.get("iteration"), int):
            records.append(entry)
        elif number == len(lines) and not text.endswith("\n"):
            break  # the line a crash tore: never written whole, so never part of the run
        else:
            raise UserError(f"{path}, line {number}, is not a metrics record ({line[:60]!r}); fix or delete "
                            f"that line (each line is {{\"iteration\": N, ...}})")
    return records


class MetricsLog:
    """``enabled=False`` (ranks other than 0): writes nothing."""

    def __init__(self, output_dir, start_iteration=0, enabled=True):
        self.path, self.enabled = Path(output_dir) / METRICS_FILE, enabled
        if not enabled:
            return
        kept = [r for r in read_metrics(self.path) if r["iteration"] <= start_iteration] if start_iteration else []
        # rewritten whole before appending: a crash now cannot lose the history being kept
        write_text(record(self.path), "".join(json.dumps(r) + "\n" for r in kept))
        self.file = open(self.path, "a", encoding="utf-8")
        events = set(Path(output_dir).glob("events.out.tfevents.*"))
        self.tensorboard = SummaryWriter(str(output_dir), purge_step=start_iteration or None)
        for path in set(Path(output_dir).glob("events.out.tfevents.*")) - events:
            record(path)

    def write(self, iteration: int, scalars: dict):
        if not self.enabled:
            return
        try:
            self.file.write(json.dumps({"iteration": iteration, **scalars}) + "\n")
            self.file.flush()
        except OSError as err:
            raise write_failure(self.path, err) from err
        for name, value in scalars.items():
            self.tensorboard.add_scalar(name if "/" in name else f"train/{name}", value, iteration)
        self.tensorboard.flush()

    def close(self):
        if not self.enabled:
            return
        try:
            self.file.close()
        except OSError:  # the write that failed has been reported; closing cannot add to it
            pass
        self.tensorboard.close()
