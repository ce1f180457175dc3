"""Ctrl-C (SIGINT) and cluster preemption (SIGTERM) ask training to stop cleanly.

The first signal only sets a flag: the loop finishes the iteration it is in,
saves a checkpoint and prints how to resume, so the saved state is always
consistent. A second Ctrl-C interrupts at once.
"""
import signal
import threading


class StopRequest:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


def ignore_in_loader_worker(worker_id):
    """DataLoader workers leave Ctrl-C to the training process, which stops them after saving."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
