"""Where a training run's time goes: data wait, the model's step, evaluation, and the loop's own bookkeeping.

``step`` is forward, loss sum, backward and optimizer step; ``data`` the wait
for the next batch and its copy to the device; ``eval`` periodic evaluation
(a separate, deliberate activity, not loop overhead); ``other`` everything
else (non-finite check, LR schedule, logging and metric reduction, progress
bar, checkpoints, stop checks). Times are host wall-clock seconds. On a GPU
the host runs ahead of the device, so work the device is still doing when the
host moves on is charged to whatever the host does next: the loop synchronizes
the device inside ``step`` at the iterations where it reads values back
anyway (logging and checkpoint steps), so that reading is not charged to
``other``; in between, ``data`` and ``other`` can include time the device
spent on the previous step, so the overhead read from them is an upper bound.
"""
import time
from contextlib import contextmanager

import torch

BUCKETS = ("data", "step", "eval")


class LoopTimes:
    def __init__(self, device):
        self.device = torch.device(device)
        self.seconds = dict.fromkeys(BUCKETS, 0.0)
        self.iterations = 0
        self.started = None
        self.ended = None

    def start(self):
        self.started = time.perf_counter()

    def stop(self):
        self.ended = time.perf_counter()

    def add(self, bucket, seconds):
        self.seconds[bucket] += seconds

    @contextmanager
    def measure(self, bucket):
        tick = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[bucket] += time.perf_counter() - tick

    def synchronize(self):
        """Wait for the device's queued work (charged to the bucket being measured)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def summary(self) -> dict:
        """Seconds per bucket, ``other`` (the rest of the wall time), and ``overhead``: the fraction of the
        training time (wall time less evaluation) spent outside ``step``."""
        end = self.ended if self.ended is not None else time.perf_counter()
        wall = end - self.started if self.started is not None else 0.0
        out = {"iterations": self.iterations, "seconds": wall, **self.seconds}
        out["other"] = max(0.0, wall - sum(self.seconds.values()))
        training = wall - self.seconds["eval"]
        out["overhead"] = (out["data"] + out["other"]) / training if training > 0 else 0.0
        return out
